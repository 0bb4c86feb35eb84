"""Triton ``config.pbtxt`` <-> Triton's JSON config, using tritonclient's ModelConfig protobuf."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from control_plane.errors import BadRequestError

# Protobuf's JSON mapping renders 64-bit integers as strings; Triton's /config uses numbers.
_INT64_TYPES = (
    3,
    4,
    6,
    16,
    18,
)  # TYPE_INT64, TYPE_UINT64, TYPE_FIXED64, TYPE_SFIXED64, TYPE_SINT64


def _pb() -> Any:
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2


def _repeated(fd: Any) -> bool:
    flag = getattr(fd, "is_repeated", None)
    if flag is not None:
        return bool(flag() if callable(flag) else flag)
    return bool(fd.label == fd.LABEL_REPEATED)


def _numbers(message: Any, data: Any) -> Any:
    """Turn the string-encoded int64 fields of ``data`` back into ints, by the descriptor."""
    from google.protobuf.descriptor import FieldDescriptor

    if not isinstance(data, dict):
        return data
    fields = {f.name: f for f in message.DESCRIPTOR.fields}
    for key, value in data.items():
        fd = fields.get(key)
        if fd is None:
            continue
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            if fd.message_type.GetOptions().map_entry:
                value_fd = fd.message_type.fields_by_name["value"]
                if value_fd.type == FieldDescriptor.TYPE_MESSAGE:
                    sub = getattr(message, fd.name)
                    for map_key, item in value.items():
                        _numbers(sub[map_key], item)
                continue
            if _repeated(fd):
                for index, item in enumerate(value):
                    _numbers(getattr(message, fd.name)[index], item)
            else:
                _numbers(getattr(message, fd.name), value)
        elif fd.type in _INT64_TYPES:
            data[key] = [int(v) for v in value] if isinstance(value, list) else int(value)
    return data


def parse_pbtxt(text: str) -> dict[str, Any]:
    """Parse ``config.pbtxt`` text into Triton's JSON config (snake_case keys, numbers).

    Raises:
        BadRequestError: the text is not a valid ModelConfig.
    """
    from google.protobuf import json_format, text_format

    pb = _pb()
    try:
        message = text_format.Parse(text, pb.ModelConfig())
    except text_format.ParseError as exc:
        raise BadRequestError(f"invalid config.pbtxt: {exc}", code="invalid_config") from None
    data = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return dict(_numbers(message, data))


def config_message(config: dict[str, Any]) -> Any:
    """A ModelConfig message from Triton's JSON config.

    Raises:
        BadRequestError: unknown fields or wrong types.
    """
    from google.protobuf import json_format

    try:
        return json_format.ParseDict(config, _pb().ModelConfig())
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise BadRequestError(f"invalid model config: {exc}", code="invalid_config") from None


def render_pbtxt(config: dict[str, Any]) -> str:
    """Triton's JSON config as ``config.pbtxt`` text (validated on the way)."""
    from google.protobuf import text_format

    return str(text_format.MessageToString(config_message(config)))


def merge_config(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge a partial JSON config into ``base`` (lists and scalars are replaced)."""
    merged: dict[str, Any] = json.loads(json.dumps(base))
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def check_config_name(config: dict[str, Any], model_name: str) -> None:
    """Triton requires a config ``name``, when given, to equal the model directory.

    Raises:
        BadRequestError: the names differ.
    """
    name = config.get("name")
    if name and name != model_name:
        raise BadRequestError(
            f"config.pbtxt names model '{name}' but the model is '{model_name}'; they must match",
            code="config_name_mismatch",
        )


def with_version_policy(config: dict[str, Any], version: int | None) -> dict[str, Any]:
    """The config to push, pinned to ``version`` with a ``specific`` policy when given."""
    pushed = dict(config)
    if version is not None:
        pushed["version_policy"] = {"specific": {"versions": [int(version)]}}
    return pushed


_ONNX_TYPES = {
    1: "TYPE_FP32",
    2: "TYPE_UINT8",
    3: "TYPE_INT8",
    4: "TYPE_UINT16",
    5: "TYPE_INT16",
    6: "TYPE_INT32",
    7: "TYPE_INT64",
    8: "TYPE_STRING",
    9: "TYPE_BOOL",
    10: "TYPE_FP16",
    11: "TYPE_FP64",
    12: "TYPE_UINT32",
    13: "TYPE_UINT64",
    16: "TYPE_BF16",
}


def onnx_config(model_path: Path, name: str) -> dict[str, Any]:
    """A Triton config generated from an ONNX graph (``max_batch_size: 0``, ``-1`` dims).

    Raises:
        BadRequestError: the ``onnx`` package is missing or the file is not a valid model.
    """
    try:
        import onnx
    except ImportError:
        raise BadRequestError(
            "config.pbtxt required (install the onnx extra to generate it from model.onnx)",
            code="config_required",
        ) from None
    try:
        graph = onnx.load(str(model_path), load_external_data=False).graph
    except Exception as exc:
        raise BadRequestError(
            f"model.onnx is not a valid ONNX model: {exc}", code="invalid_model"
        ) from None
    initializers = {i.name for i in graph.initializer}

    def tensors(values: Any) -> list[dict[str, Any]]:
        out = []
        for value in values:
            if value.name in initializers:
                continue
            tensor = value.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
            out.append(
                {
                    "name": value.name,
                    "data_type": _ONNX_TYPES.get(tensor.elem_type, "TYPE_FP32"),
                    "dims": dims or [1],
                }
            )
        return out

    return {
        "name": name,
        "platform": "onnxruntime_onnx",
        "backend": "onnxruntime",
        "max_batch_size": 0,
        "input": tensors(graph.input),
        "output": tensors(graph.output),
    }
