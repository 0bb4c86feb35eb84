"""Per-model bodies: metadata, configuration, statistics and inference results.

Metadata, configuration and inference answers come from the model's own Serve application
(route prefix ``/v2/models/<name>``); the control plane documents them on the same paths and
itself only answers the all-models statistics.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from control_plane.schemas.kserve_v2.common import V2Schema


class V2TensorMetadata(V2Schema):
    """An input or output of the model metadata."""

    name: str = Field(description="Tensor name.")
    datatype: str = Field(description="v2 datatype: BOOL, UINT8..UINT64, INT8..INT64, FP16, ...")
    shape: list[int] = Field(description="Shape; -1 for a variable dim (the batch dim first).")


class V2ModelMetadata(V2Schema):
    """``GET /v2/models/{m}[/versions/{v}]`` (KServe v2 ``$metadata_model_response``)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="Model name.")
    versions: list[str] = Field(description="Loaded versions, as strings.")
    platform: str = Field(description="``python``, ``onnxruntime_onnx``, ``pytorch_libtorch``...")
    inputs: list[V2TensorMetadata] = Field(description="Inputs.")
    outputs: list[V2TensorMetadata] = Field(description="Outputs.")


class V2ModelConfig(V2Schema):
    """``GET /v2/models/{m}/config``: Triton's JSON ModelConfig (snake_case, numbers as numbers).

    Open-ended: every ModelConfig field Triton knows may appear; the usual ones are listed.
    """

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(default=None, description="Model name.")
    platform: str | None = Field(default=None, description="Platform, e.g. onnxruntime_onnx.")
    backend: str | None = Field(default=None, description="Backend, e.g. python.")
    version_policy: dict[str, Any] | None = Field(
        default=None, description="``{latest: {num_versions}}``, ``{all: {}}`` or ``{specific}``."
    )
    max_batch_size: int | None = Field(default=None, description="0 when batching is off.")
    input: list[dict[str, Any]] | None = Field(
        default=None, description="Inputs: ``{name, data_type, dims, ...}``."
    )
    output: list[dict[str, Any]] | None = Field(
        default=None, description="Outputs: ``{name, data_type, dims, ...}``."
    )
    instance_group: list[dict[str, Any]] | None = Field(
        default=None, description="``{name, kind, count, gpus}`` groups."
    )
    dynamic_batching: dict[str, Any] | None = Field(
        default=None, description="``{preferred_batch_size, max_queue_delay_microseconds}``."
    )
    parameters: dict[str, Any] | None = Field(
        default=None, description="``{key: {string_value}}`` (e.g. ray_max_replicas)."
    )


class V2StatisticDuration(V2Schema):
    """A count with its cumulative duration."""

    count: int = Field(description="Number of times.")
    ns: int = Field(description="Cumulative nanoseconds.")


class V2InferStatistics(V2Schema):
    """``inference_stats`` of a model version."""

    model_config = ConfigDict(extra="allow")

    success: V2StatisticDuration = Field(description="Successful requests.")
    fail: V2StatisticDuration = Field(description="Failed requests.")
    queue: V2StatisticDuration = Field(description="Time queued.")
    compute_input: V2StatisticDuration = Field(description="Time preparing inputs.")
    compute_infer: V2StatisticDuration = Field(description="Time executing the model.")
    compute_output: V2StatisticDuration = Field(description="Time preparing outputs.")
    cache_hit: V2StatisticDuration = Field(description="Response cache hits (always 0).")
    cache_miss: V2StatisticDuration = Field(description="Response cache misses (always 0).")


class V2BatchStatistics(V2Schema):
    """Executions of one batch size."""

    model_config = ConfigDict(extra="allow")

    batch_size: int = Field(description="Batch size.")
    compute_input: V2StatisticDuration = Field(description="Input preparation.")
    compute_infer: V2StatisticDuration = Field(description="Model execution.")
    compute_output: V2StatisticDuration = Field(description="Output preparation.")


class V2ModelStatistics(V2Schema):
    """One ``model_stats`` entry (Triton's statistics extension)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="Model name.")
    version: str = Field(description="Version, as a string.")
    last_inference: int = Field(description="Last inference, ms since the epoch (0: never).")
    inference_count: int = Field(description="Inferences (batch elements).")
    execution_count: int = Field(description="Model executions.")
    inference_stats: V2InferStatistics = Field(description="Durations by phase.")
    response_stats: dict[str, Any] = Field(description="Per-response statistics (empty).")
    batch_stats: list[V2BatchStatistics] = Field(description="Executions by batch size.")
    memory_usage: list[dict[str, Any]] = Field(description="Memory usage (empty).")


class V2StatisticsResponse(V2Schema):
    """``GET /v2/models[/{m}[/versions/{v}]]/stats``."""

    model_stats: list[V2ModelStatistics] = Field(description="One entry per model version.")


class V2InferOutput(V2Schema):
    """One output tensor of an inference answer."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="Output name.")
    datatype: str = Field(description="v2 datatype.")
    shape: list[int] = Field(description="Shape.")
    data: list[Any] | SkipJsonSchema[None] = Field(
        default=None, description="Row-major values (absent when sent as binary)."
    )
    parameters: dict[str, Any] | SkipJsonSchema[None] = Field(
        default=None, description="``binary_data_size`` when the tensor follows the JSON."
    )


class V2InferResponse(V2Schema):
    """The JSON part of an inference answer (binary tensors follow it when requested)."""

    model_config = ConfigDict(extra="allow")

    model_name: str = Field(description="Model name.")
    model_version: str = Field(description="Version that answered.")
    id: str | SkipJsonSchema[None] = Field(default=None, description="The request's id, echoed.")
    parameters: dict[str, Any] | SkipJsonSchema[None] = Field(
        default=None, description="Response parameters."
    )
    outputs: list[V2InferOutput] = Field(description="Output tensors.")
