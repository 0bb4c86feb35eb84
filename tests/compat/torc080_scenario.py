"""torc-client 0.8.0 (the v0.12 API) scenarios, run inside that client's own venv.

``tests/compat/test_torc_client.py`` runs ``python torc080_scenario.py <url> [name ...]`` with
the python of ``var/cache/torc-080-venv``: both client generations install as the package
``torc``, so 0.8.0 cannot share a venv with 0.35.0 (``torc035_scenario.py``) or with the
project. Each ``scenario_*`` function is one check against a fresh workflow; every check is an
``assert``. The script prints one JSON line per scenario (name, ok, the traceback when not).
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from torc.api import iter_documents
from torc.openapi_client import ApiClient, Configuration, DefaultApi
from torc.openapi_client.exceptions import ApiException
from torc.openapi_client.models.claim_action_request import ClaimActionRequest
from torc.openapi_client.models.compute_nodes_resources import ComputeNodesResources
from torc.openapi_client.models.file_model import FileModel
from torc.openapi_client.models.job_model import JobModel
from torc.openapi_client.models.jobs_model import JobsModel
from torc.openapi_client.models.resource_requirements_model import ResourceRequirementsModel
from torc.openapi_client.models.user_data_model import UserDataModel
from torc.openapi_client.models.workflow_action_model import WorkflowActionModel
from torc.openapi_client.models.workflow_model import WorkflowModel
from torc_scenario_models import create_node, job_result


class Raised:
    """What ``raises()`` caught."""

    error: ApiException


@contextmanager
def raises() -> Iterator[Raised]:
    """Assert that the block raises the client's ApiException; the caught one is ``.error``."""
    caught = Raised()
    try:
        yield caught
    except ApiException as exc:
        caught.error = exc
        return
    raise AssertionError("expected an ApiException, the call succeeded")


def _workflow(api: DefaultApi, name: str = "wf") -> int:
    return api.create_workflow(WorkflowModel(name=name, user="alice", description="test")).id


def _node(api: DefaultApi, wf: int) -> int:
    return create_node(api, wf, pid=123)


def _run_id(api: DefaultApi, wf: int) -> int:
    return api.get_workflow_status(wf).run_id


def _finish(api: DefaultApi, wf: int, job_id: int, node: int, rc: int = 0) -> JobModel:
    run_id = _run_id(api, wf)
    api.start_job(job_id, run_id, node)
    status = "completed" if rc == 0 else "failed"
    result = job_result(job_id, wf, run_id, node, return_code=rc, status=status)
    return api.complete_job(job_id, status, run_id, result)


def _statuses(api: DefaultApi, wf: int) -> dict[str, str]:
    return {j.name: j.status for j in iter_documents(api.list_jobs, wf)}


def _bump_run(api: DefaultApi, wf: int) -> None:
    status = api.get_workflow_status(wf)
    status.run_id += 1
    api.update_workflow_status(wf, status)


def _diamond(api: DefaultApi) -> tuple[int, dict[str, int]]:
    """Preprocess -> work1/work2 -> postprocess, linked only through files f1..f6."""
    wf = _workflow(api, "diamond")
    files = {
        f"f{i}": api.create_file(
            FileModel(workflow_id=wf, name=f"f{i}", path=f"/data/f{i}.json")
        ).id
        for i in range(1, 7)
    }
    small = api.create_resource_requirements(
        ResourceRequirementsModel(
            workflow_id=wf, name="small", num_cpus=1, memory="512k", runtime="PT30M"
        )
    )
    large = api.create_resource_requirements(
        ResourceRequirementsModel(
            workflow_id=wf, name="large", num_cpus=4, memory="8g", runtime="P1DT12H"
        )
    )
    params = api.create_user_data(UserDataModel(workflow_id=wf, name="params", data={"alpha": 1}))
    specs = [
        ("preprocess", ["f1"], ["f2", "f3"], small.id),
        ("work1", ["f2"], ["f4"], large.id),
        ("work2", ["f3"], ["f5"], large.id),
        ("postprocess", ["f4", "f5"], ["f6"], small.id),
    ]
    ids = {}
    for name, inputs, outputs, rr in specs:
        job = JobModel(
            workflow_id=wf,
            name=name,
            command=f"python {name}.py",
            input_file_ids=[files[f] for f in inputs],
            output_file_ids=[files[f] for f in outputs],
            resource_requirements_id=rr,
            input_user_data_ids=[params.id] if name.startswith("work") else None,
        )
        ids[name] = api.create_job(job).id
    return wf, ids


def scenario_diamond_workflow_runs_in_dependency_order(api: DefaultApi) -> None:
    wf, ids = _diamond(api)
    node = _node(api, wf)
    assert api.is_workflow_uninitialized(wf).is_uninitialized is True
    api.initialize_jobs(wf)
    assert _statuses(api, wf) == {
        "preprocess": "ready",
        "work1": "blocked",
        "work2": "blocked",
        "postprocess": "blocked",
    }
    assert api.get_job(ids["postprocess"]).depends_on_job_ids == sorted(
        [ids["work1"], ids["work2"]]
    )
    claimed = api.claim_next_jobs(wf, limit=10).jobs
    assert [j.name for j in claimed] == ["preprocess"]
    assert claimed[0].status == "pending"
    assert claimed[0].output_file_ids == sorted(api.get_job(ids["preprocess"]).output_file_ids)
    assert len(claimed[0].output_file_ids) == 2
    assert api.claim_next_jobs(wf, limit=10).jobs == []
    _finish(api, wf, ids["preprocess"], node)
    assert _statuses(api, wf)["work1"] == "ready"
    assert _statuses(api, wf)["work2"] == "ready"
    assert {j.id for j in api.list_jobs(wf, upstream_job_id=ids["preprocess"]).items} == {
        ids["work1"],
        ids["work2"],
    }
    for job in api.claim_next_jobs(wf, limit=5).jobs:
        _finish(api, wf, job.id, node)
    assert _statuses(api, wf)["postprocess"] == "ready"
    assert api.is_workflow_complete(wf).is_complete is False
    assert [j.name for j in api.claim_next_jobs(wf).jobs] == ["postprocess"]
    _finish(api, wf, ids["postprocess"], node)
    assert api.is_workflow_complete(wf).is_complete is True
    results = api.list_results(wf).items
    assert len(results) == 4
    assert {r.return_code for r in results} == {0}
    events = api.list_events(wf).items
    assert any(e.data.get("event_type") == "job_completed" for e in events)


def scenario_resource_requirements_and_resource_aware_claims(api: DefaultApi) -> None:
    wf, ids = _diamond(api)
    rr = api.list_resource_requirements(wf, name="large").items[0]
    assert (rr.memory, rr.runtime, rr.num_cpus) == ("8g", "P1DT12H", 4)
    assert {r.name for r in api.list_resource_requirements(wf).items} == {
        "default",
        "small",
        "large",
    }
    node = _node(api, wf)
    api.initialize_jobs(wf)
    assert [j.id for j in api.claim_next_jobs(wf).jobs] == [ids["preprocess"]]
    _finish(api, wf, ids["preprocess"], node)
    # Each work job needs 4 CPUs and 8g: a 6-CPU offer fits one, an 8-CPU/16g offer fits both.
    offer = ComputeNodesResources(num_cpus=6, memory_gb=32, num_gpus=0, num_nodes=1)
    first = api.claim_jobs_based_on_resources(wf, 10, offer).jobs
    assert len(first) == 1
    tight = ComputeNodesResources(num_cpus=8, memory_gb=4, num_gpus=0, num_nodes=1)
    assert api.claim_jobs_based_on_resources(wf, 10, tight).jobs == []
    offer = ComputeNodesResources(num_cpus=8, memory_gb=16, num_gpus=0, num_nodes=1)
    second = api.claim_jobs_based_on_resources(wf, 10, offer).jobs
    assert len(second) == 1
    assert second[0].id != first[0].id


def scenario_user_data_round_trip_and_put(api: DefaultApi) -> None:
    wf = _workflow(api)
    created = api.create_user_data(UserDataModel(workflow_id=wf, name="config", data={"lr": 0.001}))
    assert api.get_user_data(created.id).data == {"lr": 0.001}
    api.update_user_data(
        created.id, UserDataModel(workflow_id=wf, name="config", data={"lr": 0.01})
    )
    assert api.get_user_data(created.id).data == {"lr": 0.01}
    assert [u.name for u in api.list_user_data(wf).items] == ["config"]


def scenario_failure_cancels_downstream_chain_then_reset_and_rerun(api: DefaultApi) -> None:
    wf = _workflow(api, "chain")
    a = api.create_job(JobModel(workflow_id=wf, name="a", command="false")).id
    b = api.create_job(JobModel(workflow_id=wf, name="b", command="b", depends_on_job_ids=[a])).id
    c = api.create_job(JobModel(workflow_id=wf, name="c", command="c", depends_on_job_ids=[b])).id
    api.create_job(JobModel(workflow_id=wf, name="free", command="true"))
    node = _node(api, wf)
    api.initialize_jobs(wf)
    assert [j.name for j in api.claim_next_jobs(wf, limit=1).jobs] == ["a"]
    _finish(api, wf, a, node, rc=1)
    assert _statuses(api, wf) == {"a": "failed", "b": "canceled", "c": "canceled", "free": "ready"}
    assert api.is_workflow_complete(wf).is_complete is False
    # Reset failed jobs and their downstream, bump the run, initialize only those, re-run.
    reset = api.reset_job_status(wf, failed_only=True)
    assert reset.updated_count == 3
    assert reset.reset_type == "failed_only"
    assert _statuses(api, wf) == {
        "a": "uninitialized",
        "b": "uninitialized",
        "c": "uninitialized",
        "free": "ready",
    }
    _bump_run(api, wf)
    api.initialize_jobs(wf, only_uninitialized=True)
    assert _statuses(api, wf) == {"a": "ready", "b": "blocked", "c": "blocked", "free": "ready"}
    for job_id in (a, b, c):
        claimed = [j.id for j in api.claim_next_jobs(wf, limit=10).jobs]
        assert job_id in claimed
        for other in claimed:
            _finish(api, wf, other, node)
    assert api.is_workflow_complete(wf).is_complete is True
    assert len(api.list_results(wf, all_runs=True).items) == 5


def scenario_changed_input_reinitializes_only_affected_jobs(api: DefaultApi) -> None:
    wf = _workflow(api, "changes")
    ud = api.create_user_data(UserDataModel(workflow_id=wf, name="params", data={"n": 1}))
    out = api.create_file(FileModel(workflow_id=wf, name="out", path="/tmp/out"))
    first = api.create_job(
        JobModel(
            workflow_id=wf,
            name="uses_params",
            command="x",
            input_user_data_ids=[ud.id],
            output_file_ids=[out.id],
        )
    ).id
    api.create_job(
        JobModel(workflow_id=wf, name="downstream", command="y", input_file_ids=[out.id])
    )
    api.create_job(JobModel(workflow_id=wf, name="unrelated", command="z"))
    node = _node(api, wf)
    api.initialize_jobs(wf)
    while jobs := api.claim_next_jobs(wf, limit=10).jobs:
        for job in jobs:
            _finish(api, wf, job.id, node)
    assert set(_statuses(api, wf).values()) == {"completed"}
    assert api.process_changed_job_inputs(wf, dry_run=True).reinitialized_jobs == []
    api.update_user_data(ud.id, UserDataModel(workflow_id=wf, name="params", data={"n": 2}))
    dry = api.process_changed_job_inputs(wf, dry_run=True)
    assert dry.reinitialized_jobs == ["uses_params"]
    assert _statuses(api, wf)["uses_params"] == "completed"
    assert api.process_changed_job_inputs(wf).reinitialized_jobs == ["uses_params"]
    _bump_run(api, wf)
    api.initialize_jobs(wf, only_uninitialized=True)
    assert _statuses(api, wf) == {
        "uses_params": "ready",
        "downstream": "blocked",
        "unrelated": "completed",
    }
    assert [j.id for j in api.claim_next_jobs(wf).jobs] == [first]


def scenario_pagination_over_250_jobs(api: DefaultApi) -> None:
    wf = _workflow(api, "many")
    jobs = [JobModel(workflow_id=wf, name=f"job{i}", command=f"echo {i}") for i in range(250)]
    created = api.create_jobs(JobsModel(jobs=jobs)).jobs
    assert [j.name for j in created] == [f"job{i}" for i in range(250)]
    page = api.list_jobs(wf, offset=0, limit=100)
    assert (page.count, page.total_count, page.has_more, page.max_limit) == (100, 250, True, 10000)
    last = api.list_jobs(wf, offset=200, limit=100)
    assert (last.count, last.has_more) == (50, False)
    names = [j.name for j in iter_documents(api.list_jobs, wf, limit=None)]
    assert len(names) == 250
    assert len(set(names)) == 250
    paged = [j.id for j in iter_documents(api.list_jobs, wf, sort_by="name", reverse_sort=True)]
    assert len(paged) == 250
    assert api.list_job_ids(wf).count == 250


def scenario_error_bodies_are_readable(api: DefaultApi) -> None:
    with raises() as missing:
        api.get_job(987654)
    assert missing.error.status == 404
    assert json.loads(missing.error.body)["error"]["message"] == "Job not found with ID: 987654"
    with raises() as missing_wf:
        api.get_workflow(987654)
    assert missing_wf.error.status == 404
    wf = _workflow(api)
    with raises() as bad_memory:
        api.create_resource_requirements(
            ResourceRequirementsModel(workflow_id=wf, name="x", memory="12 gigs")
        )
    assert bad_memory.error.status == 422
    assert "Invalid memory format" in json.loads(bad_memory.error.body)["error"]["message"]
    with raises() as bad_runtime:
        api.create_resource_requirements(
            ResourceRequirementsModel(workflow_id=wf, name="x", runtime="8 hours")
        )
    assert bad_runtime.error.status == 422
    job = api.create_job(JobModel(workflow_id=wf, name="j", command="true")).id
    with raises() as finished:
        api.manage_status_change(job, "completed", 0)
    assert finished.error.status == 422
    assert "complete_job" in json.loads(finished.error.body)["error"]["message"]
    api.initialize_jobs(wf)
    with raises() as not_pending:
        api.start_job(job, 0, _node(api, wf))
    assert not_pending.error.status == 422


def scenario_dependency_cycle_rejected_with_named_cycle(api: DefaultApi) -> None:
    wf = _workflow(api, "cycle")
    a = api.create_job(JobModel(workflow_id=wf, name="a", command="a")).id
    b = api.create_job(JobModel(workflow_id=wf, name="b", command="b", depends_on_job_ids=[a])).id
    api.update_job(a, JobModel(workflow_id=wf, name="a", command="a", depends_on_job_ids=[b]))
    with raises() as cycle:
        api.initialize_jobs(wf)
    assert cycle.error.status == 422
    message = json.loads(cycle.error.body)["error"]["message"]
    assert message == f"Dependency cycle detected: a (id {a}) -> b (id {b}) -> a (id {a})"
    assert set(_statuses(api, wf).values()) == {"uninitialized"}


def scenario_file_mtime_change_and_manual_reset_reinitialize_consumers(api: DefaultApi) -> None:
    wf = _workflow(api, "files")
    src = api.create_file(FileModel(workflow_id=wf, name="src", path="/in.csv", st_mtime=100.0))
    mid = api.create_file(FileModel(workflow_id=wf, name="mid", path="/mid.csv"))
    first = api.create_job(
        JobModel(
            workflow_id=wf,
            name="reader",
            command="r",
            input_file_ids=[src.id],
            output_file_ids=[mid.id],
        )
    ).id
    second = api.create_job(
        JobModel(workflow_id=wf, name="writer", command="w", input_file_ids=[mid.id])
    ).id
    node = _node(api, wf)
    api.initialize_jobs(wf)
    while jobs := api.claim_next_jobs(wf).jobs:
        for job in jobs:
            _finish(api, wf, job.id, node)
    api.update_file(src.id, FileModel(workflow_id=wf, name="src", path="/in.csv", st_mtime=200.0))
    assert api.process_changed_job_inputs(wf, dry_run=True).reinitialized_jobs == ["reader"]
    # What the torc CLI does for a changed file: reset the consumer by hand, then re-initialize.
    reset = api.manage_status_change(first, "uninitialized", _run_id(api, wf))
    assert reset.status == "uninitialized"
    assert api.get_job(second).status == "uninitialized"  # direct dependents follow
    _bump_run(api, wf)
    api.initialize_jobs(wf, only_uninitialized=True)
    assert _statuses(api, wf) == {"reader": "ready", "writer": "blocked"}


def scenario_workflow_actions_trigger_and_are_claimed_once(api: DefaultApi) -> None:
    """torc-client 0.8.0's action calls (the same semantics as the 0.35.0 scenario)."""
    wf, ids = _diamond(api)
    node = _node(api, wf)
    start = api.create_workflow_action(
        wf,
        WorkflowActionModel(
            workflow_id=wf,
            trigger_type="on_workflow_start",
            action_type="run_commands",
            action_config={"commands": ["echo start"]},
        ),
    )
    after = api.create_workflow_action(
        wf,
        WorkflowActionModel(
            workflow_id=wf,
            trigger_type="on_jobs_complete",
            action_type="run_commands",
            action_config={"commands": ["echo done"]},
            job_ids=[ids["preprocess"]],
        ),
    )
    assert api.get_pending_actions(wf) == []
    api.initialize_jobs(wf)
    assert [a.id for a in api.get_pending_actions(wf)] == [start.id]
    claim = api.claim_action(wf, start.id, ClaimActionRequest(compute_node_id=node))
    assert (claim.action_id, claim.success) == (start.id, True)
    with raises() as again:
        api.claim_action(wf, start.id, ClaimActionRequest(compute_node_id=node))
    assert again.error.status == 409
    assert "already claimed" in json.loads(again.error.body)["error"]["message"]
    (job,) = api.claim_next_jobs(wf, limit=10).jobs
    _finish(api, wf, job.id, node)
    pending = api.get_pending_actions(wf, trigger_type=["on_jobs_complete"])
    assert [a.id for a in pending] == [after.id]
    listed = {a.id: a for a in api.get_workflow_actions(wf)}
    assert listed[start.id].executed is True
    assert listed[start.id].executed_by == node
    assert listed[after.id].executed is False


def scenarios() -> dict[str, Callable[[DefaultApi], None]]:
    """Every scenario of this script, by name, in file order."""
    return {
        name: fn for name, fn in globals().items() if name.startswith("scenario_") and callable(fn)
    }


def main() -> None:
    """Run the named scenarios (all when none is named) against the URL given first."""
    api = DefaultApi(ApiClient(Configuration(host=sys.argv[1])))
    assert api.ping() == {"status": "ok"}  # 0.8.0 types the answer as a plain object
    wanted = sys.argv[2:] or list(scenarios())
    for name in wanted:
        try:
            scenarios()[name](api)
        except Exception:  # reported per scenario; the run goes on
            print(json.dumps({"name": name, "ok": False, "error": traceback.format_exc()}))
        else:
            print(json.dumps({"name": name, "ok": True}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
