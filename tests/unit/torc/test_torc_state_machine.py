"""The job state machine: the one transition table, its doc, and who may spell statuses."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import sqlalchemy

from control_plane.errors import ValidationFailedError
from control_plane.services.torc import state_machine as sm
from control_plane.services.torc.job_rows import JOB_FIELDS, JobRow, job_wire
from control_plane.services.torc.state_machine import JobEvent, JobStatus

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ROOT / "control_plane" / "services" / "torc"


def test_docs_show_the_transition_table_as_generated() -> None:
    doc = (ROOT / "docs" / "torc.md").read_text()
    match = re.search(r"<!-- transitions:start -->\n(.*?)\n<!-- transitions:end -->", doc, re.S)
    assert match is not None, "docs/torc.md lost its transitions markers"
    assert match.group(1) == sm.markdown_table(), (
        "docs/torc.md is out of date; paste state_machine.markdown_table() between the markers"
    )


def test_every_event_has_a_rule_and_every_status_is_reachable() -> None:
    assert set(sm.TRANSITIONS) == set(JobEvent)
    for rule in sm.TRANSITIONS.values():
        assert rule.sources
        assert rule.targets
        assert rule.trigger
    reached = {s for rule in sm.TRANSITIONS.values() for s in rule.targets}
    assert reached | {sm.INITIAL} == set(JobStatus)


def test_status_classes_follow_torc() -> None:
    assert {"completed", "failed", "canceled", "terminated"} == sm.FINISHED
    assert sm.FINISHED | {"pending_failed"} == sm.TERMINAL
    assert {"failed", "canceled", "terminated"} == sm.FAILURES
    assert [s.value for s in JobStatus][:3] == ["uninitialized", "blocked", "ready"]


@pytest.mark.parametrize(
    ("event", "old", "new", "ok"),
    [
        (JobEvent.CLAIM, JobStatus.READY, JobStatus.PENDING, True),
        (JobEvent.CLAIM, JobStatus.BLOCKED, JobStatus.PENDING, False),
        (JobEvent.START, JobStatus.PENDING, JobStatus.RUNNING, True),
        (JobEvent.START, JobStatus.READY, JobStatus.RUNNING, False),
        (JobEvent.COMPLETE, JobStatus.READY, JobStatus.COMPLETED, True),
        (JobEvent.COMPLETE, JobStatus.COMPLETED, JobStatus.FAILED, False),
        (JobEvent.COMPLETE, JobStatus.RUNNING, JobStatus.READY, False),
        (JobEvent.STATUS_CHANGE, JobStatus.COMPLETED, JobStatus.UNINITIALIZED, True),
        (JobEvent.STATUS_CHANGE, JobStatus.RUNNING, JobStatus.COMPLETED, False),
        (JobEvent.RETRY, JobStatus.PENDING_FAILED, JobStatus.READY, True),
        (JobEvent.RETRY, JobStatus.READY, JobStatus.READY, False),
        (JobEvent.CANCEL, JobStatus.READY, JobStatus.CANCELED, False),
        (JobEvent.DISABLE, JobStatus.UNINITIALIZED, JobStatus.DISABLED, True),
    ],
)
def test_allowed_reads_the_table(event: JobEvent, old: JobStatus, new: JobStatus, ok: bool) -> None:
    assert sm.allowed(event, old, new) is ok


def test_initialize_passes_leave_disabled_jobs_alone() -> None:
    for event in (JobEvent.INITIALIZE_UPSTREAM, JobEvent.INITIALIZE_BLOCKED):
        assert sm.step(event, JobStatus.DISABLED) == JobStatus.DISABLED
    assert sm.step(JobEvent.INITIALIZE_READY, JobStatus.TERMINATED) == JobStatus.READY
    assert sm.step(JobEvent.INITIALIZE_READY, JobStatus.COMPLETED) == JobStatus.COMPLETED


def test_parse_status_names_the_valid_statuses() -> None:
    assert sm.parse_status("ready") is JobStatus.READY
    with pytest.raises(ValidationFailedError, match="expected one of uninitialized, blocked"):
        sm.parse_status("done")


def test_job_rows_map_orm_objects_sql_rows_and_mappings_alike() -> None:
    values = {
        "id": 3,
        "workflow_id": 4,
        "name": "j",
        "command": "true",
        "invocation_script": "wrap",
        "status": "ready",
        "cancel_on_blocking_job_failure": 1,
        "supports_termination": 0,
        "resource_requirements_id": 5,
        "scheduler_id": None,
        "failure_handler_id": 6,
        "attempt_id": 7,
        "priority": 2,
        "env": '{"A": "1"}',
        "origin": "retry",
        "active_compute_node_id": 8,
        "start_time": "2026-01-01T00:00:00.000Z",
    }

    class Orm:
        def __init__(self) -> None:
            self.__dict__.update(values)

    # A raw SQL row as the hot path reads it (SQLite: booleans come back as 0/1).
    select = ", ".join(f":{k} AS {k}" for k in values)
    with sqlalchemy.create_engine("sqlite://").connect() as conn:
        row = conn.exec_driver_sql(f"SELECT {select}", values).one()
    expected = {
        **{k: v for k, v in values.items() if k != "active_compute_node_id"},
        "compute_node_id": 8,
        "env": {"A": "1"},
        "cancel_on_blocking_job_failure": True,
        "supports_termination": False,
        "output_file_ids": [4, 9],
    }
    rels = {"output_file_ids": [9, 4], "input_file_ids": []}
    for source in (Orm(), row, values):
        assert job_wire(source, rels) == expected
        assert JobRow.of(source)._asdict() == {
            **values,
            "cancel_on_blocking_job_failure": True,
            "supports_termination": False,
        }
    assert JobRow.of(values).status is JobStatus.READY
    assert JobRow.of({**values, "invocation_script": None}).wire().keys() == set(expected) - {
        "invocation_script",
        "output_file_ids",
    }
    assert set(JOB_FIELDS) == set(values)


def _status_literals(path: Path) -> list[str]:
    """Job status strings spelled out in a module (dict keys and docstrings aside)."""
    tree = ast.parse(path.read_text())
    keys = {id(k) for node in ast.walk(tree) if isinstance(node, ast.Dict) for k in node.keys}
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    values = {s.value for s in JobStatus}
    sql_literal = re.compile(r"'(" + "|".join(values) + r")'")
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            continue
        if id(node) in docs or id(node) in keys:
            continue
        if node.value in values or sql_literal.search(node.value):
            found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    return found


def test_torc_services_spell_no_job_status() -> None:
    found = [hit for path in sorted(SERVICES.glob("*.py")) for hit in _status_literals(path)]
    assert found == [], "use JobStatus / the transition table instead:\n" + "\n".join(found)
