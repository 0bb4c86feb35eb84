"""Models both torc-client scenario scripts build, in whichever client's venv runs them.

torc-client 0.8.0 (``torc080_scenario.py``) and 0.35.0 (``torc035_scenario.py``) name these
models and their fields alike. The scripts run as ``python tests/compat/<script>.py``, so this
module, beside them, is on their ``sys.path``; it is never imported by pytest.
"""

from __future__ import annotations

from typing import Any

from torc.openapi_client.models.compute_node_model import ComputeNodeModel
from torc.openapi_client.models.result_model import ResultModel


def create_node(api: Any, wf: int, pid: int = 1) -> int:
    """A local compute node of 8 CPUs / 16 GB for workflow ``wf``; its id."""
    node = ComputeNodeModel(
        workflow_id=wf,
        hostname="node-1",
        pid=pid,
        start_time="2026-01-01T00:00:00Z",
        num_cpus=8,
        memory_gb=16.0,
        num_gpus=0,
        num_nodes=1,
        compute_node_type="local",
        is_active=True,
    )
    return int(api.create_compute_node(node).id)


def job_result(
    job_id: int,
    wf: int,
    run_id: int,
    node: int,
    *,
    return_code: int,
    status: str,
    exec_time_minutes: float = 0.1,
    completion_time: str = "2026-01-01T00:00:01Z",
) -> ResultModel:
    """The result a runner reports when it completes ``job_id``."""
    return ResultModel(
        job_id=job_id,
        workflow_id=wf,
        run_id=run_id,
        compute_node_id=node,
        return_code=return_code,
        exec_time_minutes=exec_time_minutes,
        completion_time=completion_time,
        status=status,
    )
