"""TorchServe ``model-config.yaml`` (the ``configFile``): what the platform does with each key.

Both planes read the file with :func:`parse_model_config`: the control plane at registration
(a bad value is TorchServe's 400, naming the key), the replica for the handler's context.
Every key TorchServe 0.12 documents is in :data:`KEY_STATUS` as honoured, refused, or ignored
with the reason; ``docs/torchserve.md`` lists the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

HONOURED: Final = "honoured"
REFUSED: Final = "refused"
IGNORED: Final = "ignored"

# key -> (status, what the platform does)
KEY_STATUS: Final[dict[str, tuple[str, str]]] = {
    "minWorkers": (HONOURED, "Serve replicas at least (register without initial_workers)"),
    "maxWorkers": (HONOURED, "Serve replicas at most"),
    "batchSize": (HONOURED, "serve.batch max_batch_size of the version"),
    "maxBatchDelay": (HONOURED, "serve.batch batch_wait_timeout_s (ms)"),
    "responseTimeout": (
        HONOURED,
        "seconds a prediction may take (then 500 Worker died., as TorchServe)",
    ),
    "startupTimeout": (HONOURED, "seconds a synchronous registration waits for workers"),
    "jobQueueSize": (
        HONOURED,
        "Serve max_queued_requests, one batch at a time per replica (503 when full)",
    ),
    "deviceType": (
        HONOURED,
        "gpu: each replica gets num_gpus (torchserve.gpus_per_replica, default 1; Ray picks "
        "the device, context gpu_id is ray.get_gpu_ids()[0]); cpu: none",
    ),
    "deviceIds": (IGNORED, "Ray assigns each replica its GPU; devices cannot be pinned"),
    "parallelType": (REFUSED, "pipeline/tensor parallelism (torchrun workers) is not implemented"),
    "parallelLevel": (IGNORED, "1 is accepted; more needs parallelType, which is refused"),
    "torchrun": (REFUSED, "torchrun workers are not implemented"),
    "maxRetryTimeoutInSec": (
        IGNORED,
        "Serve restarts a failed replica itself (its own backoff), not TorchServe's worker retry",
    ),
    "useVenv": (
        IGNORED,
        "no per-model venv; requirements go to <model_dir>/.deps with install_py_dep_per_model",
    ),
    "clientTimeoutInMills": (IGNORED, "sequence batching is not implemented"),
    "maxSequenceJobQueueSize": (IGNORED, "sequence batching is not implemented"),
    "sequenceMaxIdleMSec": (IGNORED, "sequence batching is not implemented"),
    "continuousBatching": (IGNORED, "continuous batching is not implemented"),
    "asyncCommunication": (IGNORED, "the handler runs in-process; no worker socket"),
    "maxNumSequence": (IGNORED, "sequence batching is not implemented"),
    "sequenceTimeoutMSec": (IGNORED, "sequence batching is not implemented"),
    "stateful": (IGNORED, "sequence batching is not implemented"),
    "sequenceBatching": (IGNORED, "sequence batching is not implemented"),
    "useJobTicket": (
        IGNORED,
        "requests wait in Serve's queue for a replica (jobQueueSize bounds it), no ticket",
    ),
    "nnodes": (IGNORED, "multi-node torchrun workers are not implemented (torchrun is refused)"),
    "handler": (HONOURED, "handler-specific section, given to context.model_yaml_config"),
}
_INT_MIN = {
    "minWorkers": 0,
    "maxWorkers": 0,
    "batchSize": 1,
    "maxBatchDelay": 0,
    "responseTimeout": 1,
    "startupTimeout": 1,
    "jobQueueSize": 1,
    "maxRetryTimeoutInSec": 0,
    "parallelLevel": 1,
}


class ModelConfigError(ValueError):
    """A model-config.yaml value the platform cannot run."""


@dataclass(frozen=True)
class TorchServeModelConfig:
    """The honoured keys of a model-config.yaml (None: not set)."""

    min_workers: int | None = None
    max_workers: int | None = None
    batch_size: int | None = None
    max_batch_delay: int | None = None
    response_timeout: int | None = None
    startup_timeout: int | None = None
    job_queue_size: int | None = None
    device_type: str | None = None


def parse_model_config(raw: dict[str, Any] | None) -> TorchServeModelConfig:
    """Validate a loaded model-config.yaml.

    Raises:
        ModelConfigError: a value is out of range or asks for what the platform refuses.
    """
    raw = raw or {}
    values: dict[str, int] = {}
    for key, minimum in _INT_MIN.items():
        if key not in raw or raw[key] is None:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ModelConfigError(
                f"Got {value!r} for {key} in model-config.yaml; must be an integer"
            )
        if value < minimum:
            raise ModelConfigError(
                f"Got {value} for {key} in model-config.yaml; must be at least {minimum}"
            )
        values[key] = value
    device = raw.get("deviceType")
    if device is not None and str(device).lower() not in ("cpu", "gpu", "neuron"):
        raise ModelConfigError(
            f"Got {device!r} for deviceType in model-config.yaml; must be cpu or gpu"
        )
    if device is not None and str(device).lower() == "neuron":
        raise ModelConfigError(
            f"Got {device!r} for deviceType in model-config.yaml; the platform places cpu or gpu"
        )
    if raw.get("parallelType") or raw.get("torchrun") or values.get("parallelLevel", 1) > 1:
        raise ModelConfigError(
            "Got parallelType/parallelLevel/torchrun in model-config.yaml; model parallelism "
            "(torchrun workers) is not implemented"
        )
    min_w, max_w = values.get("minWorkers"), values.get("maxWorkers")
    if min_w is not None and max_w is not None and max_w < min_w:
        raise ModelConfigError(f"Got maxWorkers {max_w} < minWorkers {min_w} in model-config.yaml")
    return TorchServeModelConfig(
        min_workers=min_w,
        max_workers=max_w,
        batch_size=values.get("batchSize"),
        max_batch_delay=values.get("maxBatchDelay"),
        response_timeout=values.get("responseTimeout"),
        startup_timeout=values.get("startupTimeout"),
        job_queue_size=values.get("jobQueueSize"),
        device_type=None if device is None else str(device).lower(),
    )
