"""TorchServe's read views of registrations: model descriptions, workflow node models."""

from __future__ import annotations

from control_plane.db.tables.torchserve import TorchServeModel, TorchServeWorkflow
from control_plane.schemas.torchserve.models import (
    TorchServeJobQueueRead,
    TorchServeModelRead,
    TorchServeWorkerRead,
)
from deployments.contracts.app_args import WorkflowAppArgs, WorkflowNodeConfig


def describe_row(row: TorchServeModel, replicas: int) -> TorchServeModelRead:
    """One element of ``GET /models/{m}``, with one READY worker per running replica."""
    num_gpus = row.num_gpus or 0.0  # unsaved rows (workflow nodes) have no default yet
    workers = [
        TorchServeWorkerRead(
            id=f"{9000 + i}",
            start_time=row.updated_at.isoformat(),
            status="READY",
            memory_usage=0,
            pid=-1,
            gpu=num_gpus > 0,
            gpu_usage=f"gpus per worker: {num_gpus:g}" if num_gpus > 0 else "N/A",
        )
        for i in range(replicas)
    ]
    return TorchServeModelRead(
        model_name=row.name,
        model_version=row.version,
        model_url=row.url,
        runtime=row.runtime,
        min_workers=row.min_workers,
        max_workers=row.max_workers,
        batch_size=row.batch_size,
        max_batch_delay=row.max_batch_delay,
        response_timeout=row.response_timeout,
        startup_timeout=row.startup_timeout,
        max_retry_timeout_in_sec=300,
        client_timeout_in_mills=0,
        parallel_type="",
        parallel_level=0,
        device_type="gpu" if num_gpus > 0 else "cpu",
        continuous_batching=False,
        use_job_ticket=False,
        use_venv=False,
        stateful=False,
        loaded_at_startup=row.loaded_at_startup,
        workers=workers,
        job_queue_status=TorchServeJobQueueRead(remaining_capacity=1000, pending_requests=0),
    )


def workflow_node_models(workflows: list[TorchServeWorkflow]) -> dict[str, str]:
    """Model nodes of registered workflows, ``<wf>__<node>`` -> url.

    Listed as TorchServe lists them; function nodes and shared registered models are not
    listed again.
    """
    nodes: dict[str, str] = {}
    for wf in workflows:
        args = WorkflowAppArgs.model_validate(wf.app_args)
        for node, spec in args.model_nodes().items():
            nodes[f"{wf.name}__{node}"] = spec.url or ""
    return nodes


def workflow_node_row(workflow: TorchServeWorkflow, name: str, node: str) -> TorchServeModel | None:
    """An unsaved row describing the workflow's ``<wf>__<node>`` node ``name``, if it exists."""
    args = WorkflowAppArgs.model_validate(workflow.app_args)
    deployed = args.deployments.get(node)
    spec = deployed or args.inline.get(node)
    if spec is None:
        return None
    config = args.node_configs.get(node, WorkflowNodeConfig())
    low, high = args.driver_min_workers, args.driver_max_workers
    if deployed is not None:
        low, high = deployed.min_workers, deployed.max_workers
    return TorchServeModel(
        name=name,
        version="1.0",
        url=spec.url or "",
        runtime="python",
        min_workers=low,
        max_workers=high,
        batch_size=config.batch_size,
        max_batch_delay=config.max_batch_delay,
        response_timeout=int(spec.response_timeout),
        startup_timeout=120,
        loaded_at_startup=workflow.loaded_at_startup,
        updated_at=workflow.updated_at,
    )
