"""Ray-free model specs: config.pbtxt parsing (tritonclient's model_config_pb2) and versions.

Also the version policy, metadata and the Serve deployment options a model config implies.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import json_format, text_format
from google.protobuf.descriptor import FieldDescriptor
from tritonclient.grpc import model_config_pb2 as mc

from deployments.contracts.config_fields import UnsupportedConfigMode, check_supported
from deployments.contracts.datatypes import config_to_api
from deployments.contracts.errors import ModelConfigError

CONFIG_FILE = "config.pbtxt"

# backend -> (platform reported in config/metadata, default model file name)
BACKENDS: dict[str, tuple[str, str]] = {
    "python": ("", "model.py"),
    "pytorch": ("pytorch_libtorch", "model.pt"),
    "onnxruntime": ("onnxruntime_onnx", "model.onnx"),
    # a graph over other models: no backend, no model file (its steps are models of their own)
    "ensemble": ("ensemble", ""),
}
PLATFORM_TO_BACKEND = {
    "pytorch_libtorch": "pytorch",
    "onnxruntime_onnx": "onnxruntime",
    "ensemble": "ensemble",
}
_INT64_TYPES = (
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
)


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model, as the v2 API names it."""

    name: str
    datatype: str
    dims: tuple[int, ...]
    optional: bool = False


_DERIVED = ("input_shapes", "required_inputs", "output_names")


@dataclass
class ModelSpec:
    """Everything the platform needs to know about one model directory.

    Attributes:
        name: model name (== directory name).
        backend: python | pytorch | onnxruntime.
        config: Triton's JSON form of the effective ModelConfig (what ``/config`` returns).
        versions: numeric version directories present, ascending.
        served_versions: versions the version policy serves, ascending.
    """

    name: str
    backend: str
    platform: str
    max_batch_size: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    config: dict[str, Any]
    versions: list[int]
    served_versions: list[int]
    model_filename: str
    instance_kind: str = "KIND_CPU"
    instance_count: int = 1
    dynamic_batching: bool = False
    max_queue_delay_us: int = 0
    parameters: dict[str, str] = field(default_factory=dict)
    decoupled: bool = False
    ignored_fields: list[str] = field(default_factory=list)
    warmup: list[dict[str, Any]] = field(default_factory=list)
    ensemble_steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_ensemble(self) -> bool:
        """``platform: "ensemble"``: the model is a graph over other models."""
        return self.backend == "ensemble"

    def __post_init__(self) -> None:
        # Per-request lookups (decode validation) use these instead of scanning lists.
        batch = [-1] if self.max_batch_size > 0 else []
        self.input_shapes: dict[str, tuple[str, tuple[int, ...]]] = {
            t.name: (t.datatype, tuple(batch) + t.dims) for t in self.inputs
        }
        self.required_inputs = [t.name for t in self.inputs if not t.optional]
        self.output_names = [t.name for t in self.outputs]

    @property
    def metadata_platform(self) -> str:
        """What ``GET /v2/models/<m>`` reports as platform."""
        return self.platform or self.backend

    def metadata(self, versions: list[int] | None = None) -> dict[str, Any]:
        """The v2 model metadata response."""
        prefix = [-1] if self.max_batch_size > 0 else []
        return {
            "name": self.name,
            "versions": [str(v) for v in (versions or self.served_versions)],
            "platform": self.metadata_platform,
            "inputs": [
                {"name": t.name, "datatype": t.datatype, "shape": prefix + list(t.dims)}
                for t in self.inputs
            ],
            "outputs": [
                {"name": t.name, "datatype": t.datatype, "shape": prefix + list(t.dims)}
                for t in self.outputs
            ],
        }

    def to_json(self) -> str:
        """Serialise for handing to a replica (Serve builder args)."""
        data = {k: v for k, v in self.__dict__.items() if k not in _DERIVED}
        data["inputs"] = [t.__dict__ for t in self.inputs]
        data["outputs"] = [t.__dict__ for t in self.outputs]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        """Inverse of ``to_json``."""
        data = json.loads(text)
        data["inputs"] = [TensorSpec(**{**t, "dims": tuple(t["dims"])}) for t in data["inputs"]]
        data["outputs"] = [TensorSpec(**{**t, "dims": tuple(t["dims"])}) for t in data["outputs"]]
        return cls(**data)


def _fix_int64(descriptor: Any, data: dict[str, Any]) -> dict[str, Any]:
    """MessageToDict renders int64 as strings; Triton's /config returns numbers."""
    for key, value in list(data.items()):
        fd = descriptor.fields_by_name.get(key)
        if fd is None:
            continue
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            if fd.message_type.GetOptions().map_entry:
                vfd = fd.message_type.fields_by_name["value"]
                if vfd.type == FieldDescriptor.TYPE_MESSAGE:
                    data[key] = {k: _fix_int64(vfd.message_type, v) for k, v in value.items()}
            elif isinstance(value, list):
                data[key] = [_fix_int64(fd.message_type, v) for v in value]
            else:
                data[key] = _fix_int64(fd.message_type, value)
        elif fd.type in _INT64_TYPES:
            data[key] = [int(v) for v in value] if isinstance(value, list) else int(value)
    return data


def config_to_dict(config: mc.ModelConfig) -> dict[str, Any]:
    """Triton's JSON form of a ModelConfig (snake_case keys, numbers as numbers)."""
    raw = json_format.MessageToDict(
        config, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return _fix_int64(mc.ModelConfig.DESCRIPTOR, raw)


def parse_config_text(text: str) -> mc.ModelConfig:
    """Parse config.pbtxt text.

    Raises:
        ModelConfigError: the text is not a valid ModelConfig.
    """
    try:
        return text_format.Parse(text, mc.ModelConfig())
    except text_format.ParseError as exc:
        raise ModelConfigError(f"failed to parse config.pbtxt: {exc}") from None


def parse_config_json(data: dict[str, Any] | str) -> mc.ModelConfig:
    """Parse Triton's JSON config (the repository load ``config`` parameter).

    Raises:
        ModelConfigError: the JSON is not a valid ModelConfig.
    """
    try:
        text = data if isinstance(data, str) else json.dumps(data)
        return json_format.Parse(text, mc.ModelConfig())
    except (json_format.ParseError, ValueError) as exc:
        raise ModelConfigError(f"failed to parse model configuration: {exc}") from None


def numeric_versions(model_dir: Path) -> list[int]:
    """Version directories: numeric names not starting with 0, ascending."""
    if not model_dir.is_dir():
        return []
    return sorted(
        int(p.name)
        for p in model_dir.iterdir()
        if p.is_dir() and p.name.isdigit() and not p.name.startswith("0")
    )


def _served(config: mc.ModelConfig, versions: list[int], pin: int | None) -> list[int]:
    if pin is not None:
        return [pin] if pin in versions else []
    policy = config.version_policy
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return list(versions)
    if which == "specific":
        wanted = set(policy.specific.versions)
        return [v for v in versions if v in wanted]
    count = policy.latest.num_versions if which == "latest" else 1
    return versions[-max(count, 1) :] if versions else []


def _backend_of(config: mc.ModelConfig, name: str) -> str:
    backend = config.backend or PLATFORM_TO_BACKEND.get(config.platform, "")
    if not backend:
        raise ModelConfigError(
            f"model '{name}' config sets neither a supported backend nor platform"
        )
    if backend not in BACKENDS:
        raise ModelConfigError(
            f"unsupported backend '{backend}' for model '{name}'; supported: "
            + ", ".join(sorted(BACKENDS))
        )
    return backend


def load_model_spec(
    model_dir: Path,
    name: str,
    *,
    config_override: dict[str, Any] | None = None,
    version_pin: int | None = None,
    unsupported: UnsupportedConfigMode = "refuse",
) -> ModelSpec:
    """Read a model directory in Triton layout into a ModelSpec.

    Args:
        model_dir: ``<repository>/<name>``.
        name: the model name; a ``name`` in the config must match it.
        config_override: Triton JSON config that replaces config.pbtxt (repository load).
        version_pin: serve only this version (MLServe load with ``version``).
        unsupported: what a config field the platform does not implement does: ``refuse`` the
            load, or ``warn`` (the field is listed in ``ignored_fields`` for the replica to log).

    Raises:
        ModelConfigError: missing/invalid config, name mismatch, unsupported backend or config
            field, or no servable version.
    """
    if config_override is not None:
        config = parse_config_json(config_override)
    else:
        path = model_dir / CONFIG_FILE
        if not path.is_file():
            raise ModelConfigError(f"model '{name}' has no {CONFIG_FILE}")
        config = parse_config_text(path.read_text())
    if config.name and config.name != name:
        raise ModelConfigError(
            f"model configuration name '{config.name}' does not match the model name '{name}'"
        )
    config.name = name
    ignored = check_supported(config, name, unsupported)
    backend = _backend_of(config, name)
    platform, default_file = BACKENDS[backend]
    ensemble = backend == "ensemble"
    if not ensemble:
        config.backend = backend
    if platform and not config.platform:
        config.platform = platform
    if not config.HasField("version_policy"):
        config.version_policy.latest.num_versions = 1
    if ensemble:
        # Triton's ensemble config: no instance groups, an explicit transaction policy
        config.ClearField("instance_group")
        config.model_transaction_policy.SetInParent()
        group = mc.ModelInstanceGroup(kind=mc.ModelInstanceGroup.KIND_CPU, count=1)
    else:
        if not config.instance_group:
            config.instance_group.add(kind=mc.ModelInstanceGroup.KIND_CPU, count=1)
        group = config.instance_group[0]
        if not group.name:
            group.name = f"{name}_0"
        if group.count == 0:
            group.count = 1
    versions = numeric_versions(model_dir)
    served = _served(config, versions, version_pin)
    if not served:
        raise ModelConfigError(f"failed to load '{name}', no version is available")
    filename = config.default_model_filename or default_file
    if not config.default_model_filename and not ensemble:
        config.default_model_filename = filename
    for version in served if not ensemble else ():
        if not (model_dir / str(version) / filename).exists():
            raise ModelConfigError(f"model '{name}' version {version} has no file '{filename}'")
    inputs = [_tensor(t, optional=t.optional) for t in config.input]
    outputs = [_tensor(t) for t in config.output]
    batching = config.HasField("dynamic_batching")
    return ModelSpec(
        name=name,
        backend=backend,
        platform=config.platform,
        max_batch_size=config.max_batch_size,
        inputs=inputs,
        outputs=outputs,
        config=config_to_dict(config),
        versions=versions,
        served_versions=served,
        model_filename=filename,
        instance_kind=mc.ModelInstanceGroup.Kind.Name(group.kind),
        instance_count=sum(g.count or 1 for g in config.instance_group),
        dynamic_batching=batching,
        max_queue_delay_us=config.dynamic_batching.max_queue_delay_microseconds if batching else 0,
        parameters={k: v.string_value for k, v in config.parameters.items()},
        decoupled=config.model_transaction_policy.decoupled,
        ignored_fields=ignored,
        warmup=[
            json_format.MessageToDict(w, preserving_proto_field_name=True)
            for w in config.model_warmup
        ],
        ensemble_steps=[
            {
                "model_name": step.model_name,
                "model_version": int(step.model_version),
                "input_map": dict(step.input_map),
                "output_map": dict(step.output_map),
            }
            for step in config.ensemble_scheduling.step
        ],
    )


def completed_spec(spec: ModelSpec, config_json: dict[str, Any]) -> ModelSpec:
    """``spec`` after the model's ``auto_complete_config`` returned ``config_json``.

    Raises:
        ModelConfigError: the completed config is not a valid ModelConfig.
    """
    config = parse_config_json(config_json)
    batching = config.HasField("dynamic_batching")
    return dataclasses.replace(
        spec,
        max_batch_size=config.max_batch_size,
        inputs=[_tensor(t, optional=t.optional) for t in config.input],
        outputs=[_tensor(t) for t in config.output],
        config=config_to_dict(config),
        dynamic_batching=batching,
        max_queue_delay_us=config.dynamic_batching.max_queue_delay_microseconds if batching else 0,
        decoupled=config.model_transaction_policy.decoupled,
    )


def _tensor(t: Any, optional: bool = False) -> TensorSpec:
    return TensorSpec(
        name=t.name,
        datatype=config_to_api(mc.DataType.Name(t.data_type)),
        dims=tuple(int(d) for d in t.dims),
        optional=optional,
    )
