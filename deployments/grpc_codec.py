"""Ray-free codec of ``inference.GRPCInferenceService`` messages (tritonclient's own protobufs).

Decodes a ``ModelInferRequest`` (typed ``contents`` or ``raw_input_contents``) into the same
:class:`DecodedRequest` the HTTP codec produces, validated with the texts tritonserver 2.51
gives over gRPC (reference §5.1), and encodes results as ``ModelInferResponse`` with
``raw_output_contents``, as Triton does. Nothing is allocated for a tensor before its declared
size has been checked against the bytes that came with it.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.grpc import service_pb2 as pb

from deployments.backends.base import InferenceRequest
from deployments.contracts.datatypes import (
    NUMPY_BY_DATATYPE,
    datatype_of,
    decode_bytes_tensor,
    encode_bytes_tensor,
)
from deployments.contracts.errors import InvalidInput
from deployments.contracts.specs import ModelSpec
from deployments.v2_codec import DecodedRequest

# Which typed ``InferTensorContents`` field carries each datatype (FP16/BF16: raw only).
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
EMPTY_FINAL = "triton_enable_empty_final_response"
FINAL = "triton_final_response"
_SHAPE_NOTE = (
    " NOTE: Setting a non-zero max_batch_size in the model config requires a batch dimension to "
    "be prepended to each input shape. If you want to specify the full shape including the "
    "batch dim in your input dims config, try setting max_batch_size to zero. See the model "
    "configuration docs for more info on max_batch_size."
)


def _rid(request_id: str) -> str:
    return f"[request id: {request_id or '<id_unknown>'}] "


def _dims(shape: Any) -> str:
    return json.dumps([int(d) for d in shape], separators=(",", ":"))


def parameter_value(param: pb.InferParameter) -> Any:
    """The Python value of one ``InferParameter`` (None when unset)."""
    kind = param.WhichOneof("parameter_choice")
    return getattr(param, kind) if kind else None


def set_parameter(param: pb.InferParameter, value: Any) -> None:
    """Store a Python scalar in an ``InferParameter`` (bool, int, float, else string)."""
    if isinstance(value, bool):
        param.bool_param = value
    elif isinstance(value, int):
        param.int64_param = value
    elif isinstance(value, float):
        param.double_param = value
    else:
        param.string_param = str(value)


def _check_tensor(
    tensor: pb.ModelInferRequest.InferInputTensor, spec: ModelSpec, rid: str
) -> tuple[int, ...]:
    known = spec.input_shapes.get(tensor.name)
    if known is None:
        raise InvalidInput(f"unexpected inference input '{tensor.name}' for model '{spec.name}'")
    expected_type, expected = known
    if tensor.datatype != expected_type:
        raise InvalidInput(
            f"{rid}inference input '{tensor.name}' data-type is '{tensor.datatype}', but model "
            f"'{spec.name}' expects '{expected_type}'"
        )
    shape = tuple(int(d) for d in tensor.shape)
    fits = len(shape) == len(expected) and all(
        got >= 0 and want in (-1, got) for want, got in zip(expected, shape, strict=True)
    )
    if not fits:
        note = _SHAPE_NOTE if spec.max_batch_size > 0 else ""
        raise InvalidInput(
            f"{rid}unexpected shape for input '{tensor.name}' for model '{spec.name}'. "
            f"Expected {_dims(expected)}, got {_dims(shape)}.{note}"
        )
    return shape


def _size_mismatch(name: str, spec: ModelSpec, rid: str, expected: int, got: int) -> InvalidInput:
    return InvalidInput(
        f"{rid}input byte size mismatch for input '{name}' for model '{spec.name}'. "
        f"Expected {expected}, got {got}"
    )


def _from_raw(
    raw: bytes, name: str, datatype: str, shape: tuple[int, ...], spec: ModelSpec, rid: str
) -> np.ndarray:
    count = math.prod(shape)
    if datatype == "BYTES":
        try:
            return decode_bytes_tensor(raw, count).reshape(shape)
        except InvalidInput as exc:
            raise InvalidInput(f"{rid}{exc.message} for input '{name}'") from None
    expected = count * NUMPY_BY_DATATYPE[datatype].itemsize
    if len(raw) != expected:
        raise _size_mismatch(name, spec, rid, expected, len(raw))
    dtype = NUMPY_BY_DATATYPE[datatype].newbyteorder("<")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _from_contents(
    tensor: pb.ModelInferRequest.InferInputTensor,
    shape: tuple[int, ...],
    spec: ModelSpec,
    rid: str,
) -> np.ndarray:
    datatype = tensor.datatype
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidInput(
            f"{rid}input '{tensor.name}' for model '{spec.name}': datatype {datatype} must be "
            "sent in raw_input_contents"
        )
    values = getattr(tensor.contents, field)
    count = math.prod(shape)
    if datatype == "BYTES":
        if len(values) != count:
            raise InvalidInput(
                f"{rid}unexpected number of string elements {len(values)} for inference input "
                f"'{tensor.name}' for model '{spec.name}', expecting {count}"
            )
        array = np.empty(count, dtype=object)
        array[:] = list(values)
        return array.reshape(shape)
    size = NUMPY_BY_DATATYPE[datatype].itemsize
    if len(values) != count:
        raise _size_mismatch(tensor.name, spec, rid, count * size, len(values) * size)
    return np.asarray(values, dtype=NUMPY_BY_DATATYPE[datatype]).reshape(shape)


def _names(names: list[str]) -> str:
    return "[" + ",".join(f"'{n}'" for n in names) + "]"


def _count_message(spec: ModelSpec, given: list[str], missing: list[str], rid: str) -> str:
    required, total = len(spec.required_inputs), len(spec.inputs)
    expected = (
        f"{required}" if required == total else f"number of inputs between {required} and {total}"
    )
    return (
        f"{rid}expected {expected} inputs but got {len(given)} inputs for model '{spec.name}'. "
        f"Got input(s) {_names(sorted(given))}, but missing required input(s) "
        f"{_names(missing)}. Please provide all required input(s)."
    )


def _check_count(request: pb.ModelInferRequest, spec: ModelSpec, rid: str) -> None:
    """Triton checks the number of inputs before their names."""
    given = [t.name for t in request.inputs]
    if len(spec.required_inputs) <= len(given) <= len(spec.inputs):
        return
    missing = [n for n in spec.required_inputs if n not in given]
    raise InvalidInput(_count_message(spec, given, missing, rid))


def decode_infer(request: pb.ModelInferRequest, spec: ModelSpec) -> DecodedRequest:
    """A validated request, as the HTTP codec's :func:`decode_request` returns it.

    Raises:
        InvalidInput: unknown input or output names, a wrong datatype or shape, missing inputs,
            a batch over ``max_batch_size``, contents whose size does not match the shape.
    """
    rid = _rid(request.id)
    raw = request.raw_input_contents
    if raw and len(raw) < len(request.inputs):
        raise InvalidInput(
            f"{rid}expected {len(request.inputs)} raw input contents for model '{spec.name}', "
            f"got {len(raw)}"
        )
    _check_count(request, spec, rid)
    inputs: dict[str, np.ndarray] = {}
    # Triton reports the last bad input of a request first (its input map iterates that way)
    for index in reversed(range(len(request.inputs))):
        tensor = request.inputs[index]
        shape = _check_tensor(tensor, spec, rid)
        if tensor.name in inputs:
            raise InvalidInput(f"{rid}input '{tensor.name}' is given more than once")
        if raw:
            if tensor.HasField("contents"):
                raise InvalidInput(
                    "contents field must not be specified when using raw_input_contents for "
                    f"'{tensor.name}' for model '{spec.name}'"
                )
            inputs[tensor.name] = _from_raw(
                raw[index], tensor.name, tensor.datatype, shape, spec, rid
            )
        else:
            inputs[tensor.name] = _from_contents(tensor, shape, spec, rid)
    inputs = {t.name: inputs[t.name] for t in request.inputs}  # the request's order again
    missing = [n for n in spec.required_inputs if n not in inputs]
    if missing:
        raise InvalidInput(_count_message(spec, list(inputs), missing, rid))
    batch = 1
    if spec.max_batch_size > 0 and inputs:
        batch = next(iter(inputs.values())).shape[0]
        if any(a.shape[0] != batch for a in inputs.values()):
            raise InvalidInput(f"{rid}all inputs must have the same batch size")
        if batch > spec.max_batch_size:
            raise InvalidInput(
                f"{rid}inference request batch-size must be <= {spec.max_batch_size} for "
                f"'{spec.name}'"
            )
    names = [out.name for out in request.outputs]
    for name in names:
        if name not in spec.output_names:
            raise InvalidInput(f"unexpected inference output '{name}' for model '{spec.name}'")
    parameters = {
        key: parameter_value(value)
        for key, value in request.parameters.items()
        if key != EMPTY_FINAL
    }
    decoded = InferenceRequest(
        inputs=inputs,
        requested_outputs=names or None,
        id=request.id,
        parameters=parameters,
    )
    return DecodedRequest(
        request=decoded, outputs=names or list(spec.output_names), batch_size=batch
    )


def encode_infer(
    model_name: str,
    version: int,
    decoded: DecodedRequest,
    outputs: dict[str, np.ndarray],
    parameters: dict[str, Any] | None = None,
) -> pb.ModelInferResponse:
    """A ``ModelInferResponse`` with ``raw_output_contents`` (Triton's own encoding).

    Raises:
        InvalidInput: the model did not produce an output the request named.
    """
    response = pb.ModelInferResponse(
        model_name=model_name, model_version=str(version), id=decoded.request.id
    )
    for key, value in (parameters or {}).items():
        set_parameter(response.parameters[key], value)
    explicit = decoded.request.requested_outputs is not None
    for name in decoded.outputs:
        if name not in outputs:
            if explicit:
                raise InvalidInput(f"model '{model_name}' did not produce output '{name}'")
            continue
        array = np.asarray(outputs[name])
        datatype = datatype_of(array)
        response.outputs.add(name=name, datatype=datatype, shape=list(array.shape))
        if datatype == "BYTES":
            response.raw_output_contents.append(encode_bytes_tensor(array))
        else:
            little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
            response.raw_output_contents.append(little.tobytes())
    return response


def metadata_message(metadata: dict[str, Any]) -> pb.ModelMetadataResponse:
    """``ModelMetadataResponse`` from the HTTP metadata object of ``ModelSpec.metadata``."""
    return json_format.ParseDict(metadata, pb.ModelMetadataResponse())


def config_message(config: dict[str, Any]) -> pb.ModelConfigResponse:
    """``ModelConfigResponse`` from Triton's JSON config (``ModelSpec.config``)."""
    message = json_format.ParseDict(config, mc.ModelConfig(), ignore_unknown_fields=True)
    return pb.ModelConfigResponse(config=message)


def statistics_message(stats: dict[str, Any]) -> pb.ModelStatisticsResponse:
    """``ModelStatisticsResponse`` from the statistics extension's JSON object."""
    return json_format.ParseDict(stats, pb.ModelStatisticsResponse(), ignore_unknown_fields=True)
