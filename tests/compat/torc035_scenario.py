"""A torc-client 0.35.0 (API 0.21) scenario, run inside that client's own venv.

``tests/compat/test_torc_client_035.py`` runs it as ``python torc035_scenario.py <url>``;
both client generations install as the package ``torc``, so it cannot be imported next to
0.8.0. Every check is an ``assert``: a non-zero exit fails the test, with the traceback.
"""

# A plain script run by the 0.35.0 venv's python, without pytest: bare asserts are its checks.
# ruff: noqa: PT017, PT018

from __future__ import annotations

import json
import sys
import time

from torc.api import DefaultApi, iter_documents
from torc.openapi_client import ApiClient, Configuration
from torc.openapi_client.models.archive_workflow_request import ArchiveWorkflowRequest
from torc.openapi_client.models.claim_action_request import ClaimActionRequest
from torc.openapi_client.models.compute_nodes_resources import ComputeNodesResources
from torc.openapi_client.models.dynamic_jobs_config import DynamicJobsConfig
from torc.openapi_client.models.failure_handler_model import FailureHandlerModel
from torc.openapi_client.models.file_model import FileModel
from torc.openapi_client.models.files_model import FilesModel
from torc.openapi_client.models.job_model import JobModel
from torc.openapi_client.models.jobs_model import JobsModel
from torc.openapi_client.models.resource_monitor_config import ResourceMonitorConfig
from torc.openapi_client.models.spawn_job_model import SpawnJobModel
from torc.openapi_client.models.spawn_jobs_request import SpawnJobsRequest
from torc.openapi_client.models.user_data_list_model import UserDataListModel
from torc.openapi_client.models.user_data_model import UserDataModel
from torc.openapi_client.models.workflow_action_model import WorkflowActionModel
from torc.openapi_client.models.workflow_model import WorkflowModel
from torc.openapi_client.rest import ApiException
from torc_scenario_models import create_node, job_result


def _node(api: DefaultApi, wf: int) -> int:
    return create_node(api, wf)


def _finish(api: DefaultApi, wf: int, job_id: int, node: int, rc: int = 0) -> JobModel:
    run_id = api.get_workflow(wf).run_id
    started = api.start_job(job_id, run_id, node)
    assert started.compute_node_id == node and started.start_time, started
    status = "completed" if rc == 0 else "failed"
    result = job_result(
        job_id,
        wf,
        run_id,
        node,
        return_code=rc,
        status=status,
        exec_time_minutes=0.5,
        completion_time="2026-01-01T00:01:00Z",
    )
    done = api.complete_job(job_id, status, run_id, result)
    assert done.compute_node_id is None and done.start_time is None, done
    return done


def workflow_crud_and_json_fields(api: DefaultApi) -> int:
    """Objects in, objects out; run_id/is_canceled/is_archived on the workflow."""
    monitor = ResourceMonitorConfig(sample_interval_seconds=5)
    created = api.create_workflow(
        WorkflowModel(
            name="wf035",
            user="alice",
            metadata={"team": "ml", "n": 1},
            slurm_defaults={"account": "acct"},
            resource_monitor_config=monitor,
        )
    )
    wf = created.id
    got = api.get_workflow(wf)
    assert got.metadata == {"team": "ml", "n": 1}, got
    assert got.slurm_defaults == {"account": "acct"}
    assert got.resource_monitor_config.sample_interval_seconds == 5
    assert (got.run_id, got.is_canceled, got.is_archived) == (0, False, False)
    listed = [w.id for w in iter_documents(api.list_workflows, user="alice")]
    assert wf in listed
    got.description = "updated"
    assert api.update_workflow(wf, got).description == "updated"
    version = api.get_version()
    assert version.api_version.startswith("0.21"), version
    return wf


def runs_a_diamond(api: DefaultApi, wf: int) -> None:
    """Bulk files/user data, priorities, the aggregate status, relationships, results."""
    files = api.create_files(
        FilesModel(
            files=[FileModel(workflow_id=wf, name=f"f{i}", path=f"/d/f{i}") for i in range(4)]
        )
    ).files
    assert [f.name for f in files] == ["f0", "f1", "f2", "f3"]
    docs = api.create_user_data_list(
        UserDataListModel(
            user_data=[
                UserDataModel(workflow_id=wf, name="params", data={"a": 1}),
                UserDataModel(workflow_id=wf, name="summary"),
            ]
        )
    ).user_data
    f = {x.name: x.id for x in files}
    specs = [
        ("pre", ["f0"], ["f1", "f2"], 0, [docs[0].id], []),
        ("left", ["f1"], ["f3"], 1, [], []),
        ("right", ["f2"], [], 5, [], [docs[1].id]),
    ]
    jobs = [
        JobModel(
            workflow_id=wf,
            name=name,
            command=f"run {name}",
            input_file_ids=[f[i] for i in ins],
            output_file_ids=[f[o] for o in outs],
            priority=prio,
            env={"STAGE": name.upper()},
            input_user_data_ids=uin or None,
            output_user_data_ids=uout or None,
        )
        for name, ins, outs, prio, uin, uout in specs
    ]
    created = api.create_jobs(JobsModel(jobs=jobs)).jobs
    ids = {j.name: j.id for j in created}
    assert api.get_job(ids["right"]).priority == 5
    assert api.get_job(ids["left"]).env == {"STAGE": "LEFT"}
    node = _node(api, wf)
    api.initialize_jobs(wf)
    status = api.get_workflow_status(wf)
    assert status.total_jobs == 3 and status.jobs_by_status.ready == 1, status
    assert status.jobs_by_status.blocked == 2 and status.is_complete is False
    deps = api.list_job_dependencies(wf)
    assert {(d.job_name, d.depends_on_job_name) for d in deps.items} == {
        ("left", "pre"),
        ("right", "pre"),
    }
    flows = api.list_job_file_relationships(wf).items
    assert ("pre", "left") in {(r.producer_job_name, r.consumer_job_name) for r in flows}
    assert api.list_job_user_data_relationships(wf).total_count == 2
    assert api.list_required_existing_files(wf).files == [f["f0"]]
    assert api.list_missing_user_data(wf).user_data == []
    ready = api.get_ready_job_requirements(wf)
    assert ready.num_jobs == 1 and ready.num_cpus == 1, ready
    (pre,) = api.claim_next_jobs(wf, limit=10).jobs
    assert pre.name == "pre"
    run_id = api.get_workflow(wf).run_id
    api.start_job(pre.id, run_id, node)
    running = api.get_running_jobs(wf)
    assert [r.job_name for r in running.items] == ["pre"], running
    result = job_result(
        pre.id,
        wf,
        run_id,
        node,
        return_code=0,
        status="completed",
        exec_time_minutes=1.0,
        completion_time="2026-01-01T00:01:00Z",
    )
    api.complete_job(pre.id, "completed", run_id, result)
    # Higher priority first.
    offer = ComputeNodesResources(num_cpus=1, memory_gb=1, num_gpus=0, num_nodes=1)
    first = api.claim_jobs_based_on_resources(wf, 10, offer).jobs
    assert [j.name for j in first] == ["right"], first
    _finish(api, wf, first[0].id, node)
    (left,) = api.claim_next_jobs(wf).jobs
    _finish(api, wf, left.id, node)
    status = api.get_workflow_status(wf)
    assert status.is_complete and status.jobs_by_status.completed == 3, status
    assert status.total_exec_time_minutes == 2.0 and status.walltime_seconds is not None
    results = api.list_results(wf).items
    assert {r.job_name for r in results} == {"pre", "left", "right"}
    assert [j.name for j in api.list_jobs(wf, name="LEF").items] == ["left"]
    assert [j.name for j in api.list_jobs(wf, command="run r").items] == ["right"]
    assert api.list_jobs(wf, origin_is_set=True).total_count == 0


def resets_archives_and_deletes(api: DefaultApi, wf: int) -> None:
    """reset_status starts the next run; archive; delete counts."""
    before = api.get_workflow(wf).run_id
    api.reset_workflow_status(wf)
    assert api.get_workflow(wf).run_id == before + 1
    archived = api.archive_workflow(wf, ArchiveWorkflowRequest(is_archived=True))
    assert archived.is_archived is True
    try:
        api.reset_workflow_status(wf)
    except ApiException as exc:
        assert exc.status == 422, exc
    else:
        raise AssertionError("reset_status of an archived workflow succeeded")
    api.archive_workflow(wf, ArchiveWorkflowRequest(is_archived=False))
    assert api.delete_files(wf).count == 4
    assert api.delete_jobs(wf).count == 3
    api.cancel_workflow(wf)
    assert api.get_workflow(wf).is_canceled is True
    with_string = api.api_client.call_api(
        "POST",
        api.api_client.configuration.host + "/workflows",
        header_params={"Content-Type": "application/json"},
        body={"name": "s", "user": "u", "metadata": json.dumps({"from": "string"})},
    )
    with_string.read()
    assert with_string.status == 200


def spawns_dynamic_jobs(api: DefaultApi) -> None:
    """spawn_jobs from a running job: the children wait for it, a replay is idempotent."""
    wf = api.create_workflow(
        WorkflowModel(name="dyn", user="alice", dynamic_jobs=DynamicJobsConfig(max_iterations=5))
    ).id
    orch = api.create_job(JobModel(workflow_id=wf, name="orch", command="orchestrate")).id
    node = _node(api, wf)
    api.initialize_jobs(wf)
    api.claim_next_jobs(wf)
    api.start_job(orch, 0, node)
    request = SpawnJobsRequest(
        jobs=[SpawnJobModel(name="child", command="work", priority=1)], state={"k": 1}
    )
    spawned = api.spawn_jobs(orch, request)
    assert spawned.iteration == 1, spawned
    child = api.get_job(spawned.spawned_job_ids[0])
    assert (child.status, child.origin, child.priority) == ("blocked", "spawn", 1), child
    assert api.spawn_jobs(orch, request).spawned_job_ids == spawned.spawned_job_ids
    assert api.get_workflow(wf).dynamic_jobs.max_iterations == 5


def handlers_actions_and_tasks(api: DefaultApi) -> None:
    """Failure handlers, retry, workflow actions and async initialize through 0.35 models."""
    wf = api.create_workflow(WorkflowModel(name="fh", user="alice", use_pending_failed=True)).id
    rules = json.dumps([{"exit_codes": [3], "max_retries": 2}])
    handler = api.create_failure_handler(FailureHandlerModel(workflow_id=wf, name="h", rules=rules))
    assert api.get_failure_handler(handler.id).rules == rules
    assert [h.name for h in api.list_failure_handlers(wf).items] == ["h"]
    job = api.create_job(
        JobModel(workflow_id=wf, name="flaky", command="exit 3", failure_handler_id=handler.id)
    ).id
    action = api.create_workflow_action(
        wf,
        WorkflowActionModel(
            workflow_id=wf,
            trigger_type="on_workflow_start",
            action_type="run_commands",
            action_config={"commands": ["echo start"]},
        ),
    )
    node = _node(api, wf)
    api.initialize_jobs(wf, var_async=True)
    for _ in range(100):
        if api.get_active_task_for_workflow(wf).task is None:
            break
        time.sleep(0.05)
    assert api.get_job(job).status == "ready"
    claim = api.claim_action(wf, action.id, ClaimActionRequest(compute_node_id=node))
    assert (claim.action_id, claim.success) == (action.id, True)
    try:
        api.claim_action(wf, action.id, ClaimActionRequest(compute_node_id=node))
    except ApiException as exc:
        assert exc.status == 409
    else:
        raise AssertionError("second claim succeeded")
    api.claim_next_jobs(wf)
    run_id = api.get_workflow(wf).run_id
    api.start_job(job, run_id, node)
    retried = api.retry_job(job, run_id, 2)
    assert (retried.status, retried.attempt_id, retried.origin) == ("ready", 2, "retry")
    api.claim_next_jobs(wf)
    api.start_job(job, run_id, node)
    result = job_result(job, wf, run_id, node, return_code=3, status="pending_failed")
    done = api.complete_job(job, "pending_failed", run_id, result)
    assert done.status == "pending_failed"
    assert api.get_workflow_status(wf).jobs_by_status.pending_failed == 1


def main() -> None:
    """Run every scenario against the URL given on the command line."""
    api = DefaultApi(ApiClient(Configuration(host=sys.argv[1])))
    assert api.ping().status == "ok"
    wf = workflow_crud_and_json_fields(api)
    runs_a_diamond(api, wf)
    resets_archives_and_deletes(api, wf)
    spawns_dynamic_jobs(api)
    handlers_actions_and_tasks(api)
    print("torc-client 0.35.0 scenario passed")


if __name__ == "__main__":
    main()
