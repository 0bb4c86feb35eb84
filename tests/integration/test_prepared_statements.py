"""Server-side prepared statements on PostgreSQL (control_plane.db.prepared), on a real server."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, event, text

from control_plane.db.prepared import PREPARE_THRESHOLD, Preparer
from control_plane.db.session import make_engine, make_session_factory
from tests.conftest import create_pg_database, drop_pg_database

pytestmark = pytest.mark.postgres


@pytest.fixture(name="engine")
def engine_fixture(postgres_admin_url: str) -> Iterator[Engine]:
    url = create_pg_database(postgres_admin_url, migrated=True)
    engine = make_engine(url, pool_size=2)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_pg_database(postgres_admin_url, url)


def _prepared(conn: Connection) -> list[str]:
    return [r[0] for r in conn.execute(text("SELECT statement FROM pg_prepared_statements"))]


def test_a_statement_is_prepared_at_the_threshold_and_answers_as_before(engine: Engine) -> None:
    statement = "SELECT CAST(:a AS bigint) + 1 AS n, :s = 'x' AS is_x"
    with engine.connect() as conn:
        preparer = Preparer(conn, threshold=3)
        answers = []
        for i in range(6):
            answers.append(tuple(preparer.execute(statement, {"a": i, "s": "x"}).one()))
            assert len(_prepared(conn)) == (1 if i >= 2 else 0)
        assert answers == [(i + 1, True) for i in range(6)]
        (prepared,) = _prepared(conn)
        assert "$1" in prepared
        assert "$2" in prepared


def test_the_engine_option_sets_the_threshold_and_zero_never_prepares(
    postgres_admin_url: str,
) -> None:
    url = create_pg_database(postgres_admin_url, migrated=True)
    engine = make_engine(url, pool_size=1, prepare_threshold=0)
    try:
        with engine.connect() as conn:
            assert conn.get_execution_options()[PREPARE_THRESHOLD] == 0
            preparer = Preparer(conn, conn.get_execution_options()[PREPARE_THRESHOLD])
            for i in range(10):
                assert preparer.execute("SELECT :a AS a", {"a": i}).scalar() == i
            assert _prepared(conn) == []
    finally:
        engine.dispose()
        drop_pg_database(postgres_admin_url, url)
    default = make_engine("postgresql+psycopg2://u@127.0.0.1:1/none")
    assert default.get_execution_options()[PREPARE_THRESHOLD] == 3
    default.dispose()


def test_a_statement_the_server_cannot_prepare_is_sent_as_text_and_the_transaction_survives(
    engine: Engine,
) -> None:
    # json_build_object gives its arguments no type: an untyped parameter cannot be prepared.
    statement = "SELECT json_build_object('k', :s)::text AS j"
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE kept (v int)"))
        conn.execute(text("INSERT INTO kept VALUES (1)"))
        preparer = Preparer(conn, threshold=1)
        for _ in range(3):
            assert preparer.execute(statement, {"s": "v"}).scalar() == '{"k" : "v"}'
        assert _prepared(conn) == []
        # The failed PREPARE was rolled back to its savepoint only: the insert is still there.
        assert conn.execute(text("SELECT count(*) FROM kept")).scalar() == 1
        conn.commit()


def test_types_are_part_of_the_key_and_null_is_inferred_from_its_context(engine: Engine) -> None:
    statement = "SELECT count(*) FROM w WHERE id = :w OR :w IS NULL"
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE w (id int)"))
        conn.execute(text("INSERT INTO w VALUES (1), (2)"))
        preparer = Preparer(conn, threshold=1)
        assert preparer.execute(statement, {"w": None}).scalar() == 2
        assert preparer.execute(statement, {"w": 1}).scalar() == 1
        assert len(_prepared(conn)) == 2  # (unknown) and (bigint)
        conn.rollback()


def test_several_statements_go_in_one_call_and_answer_with_the_last(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE t (v int)"))
        preparer = Preparer(conn, threshold=2)
        for i in range(4):
            rows = preparer.execute(
                ["INSERT INTO t VALUES (:v)", "SELECT count(*) AS n, max(v) AS top FROM t"],
                {"v": i},
            ).all()
            assert [tuple(r) for r in rows] == [(i + 1, i)]
        assert len(_prepared(conn)) == 2
        conn.rollback()


def test_a_replaced_connection_prepares_again(engine: Engine) -> None:
    statement = "SELECT :a * 2 AS twice"
    with engine.connect() as conn:
        preparer = Preparer(conn, threshold=1)
        assert preparer.execute(statement, {"a": 2}).scalar() == 4
        conn.invalidate()  # the server side (and its prepared statements) is gone
        conn.rollback()
        preparer = Preparer(conn, threshold=1)
        assert preparer.execute(statement, {"a": 3}).scalar() == 6
        assert len(_prepared(conn)) == 1


def test_the_torc_hot_path_runs_prepared(engine: Engine) -> None:
    """Claim and complete (with unblocking) each end up as EXECUTE, none left as text."""
    from control_plane.services.torc import JobInitializer, JobService, WorkflowService
    from control_plane.services.torc.claims import ClaimService
    from control_plane.services.torc.transitions import JobTransitionService

    factory = make_session_factory(engine)
    sent: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    with factory() as session:
        wf = WorkflowService(session).create({"name": "p", "user": "u"})["id"]
        first = JobService(session).create({"workflow_id": wf, "name": "a", "command": "true"})
        JobService(session).create(
            {
                "workflow_id": wf,
                "name": "b",
                "command": "true",
                "depends_on_job_ids": [first["id"]],
            }
        )
        for i in range(8):
            JobService(session).create({"workflow_id": wf, "name": f"c{i}", "command": "true"})
        JobInitializer(session).initialize(wf)
    done = 0
    while True:
        with factory() as session:
            jobs = ClaimService(session).claim_next(wf, 1)["jobs"]
        if not jobs:
            break
        with factory() as session:
            JobTransitionService(session).complete(
                jobs[0]["id"], "completed", 0, {"return_code": 0, "completion_time": "t"}
            )
        done += 1
    assert done == 10
    executed = [s for s in sent if s.startswith("EXECUTE mlserve_")]
    assert len(executed) >= 10
    with engine.connect() as conn:
        state = conn.connection.info["mlserve_prepared"]
        assert state.names
        assert None not in state.names.values(), "a hot statement fell back"
