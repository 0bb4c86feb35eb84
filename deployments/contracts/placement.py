"""Ray-free mapping from a model's config to Serve deployment options (replicas, GPUs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deployments.contracts.specs import ModelSpec


@dataclass(frozen=True)
class PlacementPolicy:
    """Platform-wide knobs that shape every model deployment."""

    max_ongoing_requests: int = 64
    num_cpus: float = 0.0
    cluster_gpus: float = 0.0
    gpu_fallback_to_cpu: bool = False


def gpus_per_replica(spec: ModelSpec) -> float:
    """GPUs one replica needs: 0 for KIND_CPU, else ``parameters.ray_num_gpus`` (default 1).

    Fractions (e.g. ``0.5``) let several replicas share one GPU.
    """
    if spec.instance_kind != "KIND_GPU":
        return 0.0
    return float(spec.parameters.get("ray_num_gpus", "1") or 1)


def replica_bounds(
    spec: ModelSpec, min_replicas: int | None = None, max_replicas: int | None = None
) -> tuple[int, int]:
    """(min, max) replicas: overrides, then config parameters, then ``instance_group.count``."""
    count = max(spec.instance_count, 1)
    low = (
        min_replicas
        if min_replicas is not None
        else int(spec.parameters.get("ray_min_replicas", count))
    )
    high = (
        max_replicas
        if max_replicas is not None
        else int(spec.parameters.get("ray_max_replicas", max(low, count)))
    )
    return max(low, 0), max(high, low, 1)


def not_ready_reason(spec: ModelSpec, policy: PlacementPolicy) -> str | None:
    """Why the model cannot be placed on this cluster, or None when it can."""
    need = gpus_per_replica(spec)
    if need > 0 and policy.cluster_gpus < need and not policy.gpu_fallback_to_cpu:
        return (
            f"model '{spec.name}' uses KIND_GPU and needs {need:g} GPU per replica but the "
            f"cluster has {policy.cluster_gpus:g} GPUs; it stays pending until a GPU node joins "
            "(or set CP_SERVING__GPU_FALLBACK_TO_CPU=true)"
        )
    return None


def deployment_options(
    spec: ModelSpec,
    policy: PlacementPolicy,
    *,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
) -> dict[str, Any]:
    """Options for ``Deployment.options(...)`` of this model's server."""
    need = gpus_per_replica(spec)
    if need > 0 and policy.cluster_gpus < need and policy.gpu_fallback_to_cpu:
        need = 0.0
    low, high = replica_bounds(spec, min_replicas, max_replicas)
    options: dict[str, Any] = {
        "max_ongoing_requests": policy.max_ongoing_requests,
        "ray_actor_options": {"num_cpus": policy.num_cpus, "num_gpus": need},
    }
    per_node = int(spec.parameters.get("ray_max_replicas_per_node", "0") or 0)
    if per_node > 0:  # hard anti-affinity: replicas on distinct nodes (Serve's spread is soft)
        options["max_replicas_per_node"] = per_node
    if low == high:
        options["num_replicas"] = low
    else:
        options["autoscaling_config"] = {
            "min_replicas": low,
            "initial_replicas": max(low, 1),
            "max_replicas": high,
            "target_ongoing_requests": float(
                spec.parameters.get("ray_target_ongoing_requests", "2")
            ),
            "upscale_delay_s": 3,
            "downscale_delay_s": 30,
            "metrics_interval_s": 1,
            "look_back_period_s": 5,
        }
    return options
