"""Ray-free codec of Triton's generate extension (``/generate``, ``/generate_stream``).

The request is one flat JSON object: keys naming a model input become tensors of that input's
datatype and dims, every other key (and the members of ``parameters``) a request parameter; the
response is a flat object with one key per output (one-element outputs as scalars). Triton 2.51
answers several malformed requests with 500 (reference §3.3); here every one is a 400.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from deployments.backends.base import InferenceRequest
from deployments.contracts.datatypes import numpy_dtype
from deployments.contracts.errors import InvalidInput
from deployments.contracts.specs import ModelSpec, TensorSpec
from deployments.v2_codec import DecodedRequest

SSE_MEDIA_TYPE = "text/event-stream"
_SCALARS = (bool, int, float, str)


def _parse_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise InvalidInput("failed to parse the request JSON buffer: The document is empty.")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"failed to parse the request JSON buffer: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput("attempt to get members for non-object: the request must be an object")
    return data


def _element_ok(value: Any, datatype: str) -> bool:
    if datatype == "BYTES":
        return isinstance(value, str)
    if datatype == "BOOL":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if datatype.startswith(("INT", "UINT")):
        return isinstance(value, int)
    return isinstance(value, int | float)


def _tensor(spec: ModelSpec, tensor: TensorSpec, value: Any) -> np.ndarray:
    flat = value if isinstance(value, list) else [value]
    for element in flat:
        if not _element_ok(element, tensor.datatype):
            kind = "string" if tensor.datatype == "BYTES" else tensor.datatype
            raise InvalidInput(
                f"Unable to parse input '{tensor.name}': expected JSON {kind} values, got "
                f"{json.dumps(element)}"
            )
    dims = list(tensor.dims)
    if -1 in dims:
        known = math.prod(d for d in dims if d != -1) or 1
        if len(flat) % known:
            raise InvalidInput(
                f"The schema can not convert input '{tensor.name}' to tensor with proper shape"
            )
        dims[dims.index(-1)] = len(flat) // known
        dims = [1 if d == -1 else d for d in dims]
    if math.prod(dims) != len(flat):
        raise InvalidInput(
            f"The schema can not convert input '{tensor.name}' to tensor with proper shape"
        )
    if tensor.datatype == "BYTES":
        array = np.empty(len(flat), dtype=object)
        array[:] = [s.encode() for s in flat]
    else:
        array = np.asarray(flat, dtype=numpy_dtype(tensor.datatype))
    shape = ([1] if spec.max_batch_size > 0 else []) + dims
    return array.reshape(shape)


def _parameter(name: str, value: Any, where: str = "") -> Any:
    if value is None or not isinstance(value, _SCALARS):
        raise InvalidInput(
            f"{where}parameter '{name}' has invalid type. It should be either 'int', 'bool', "
            "or 'string'."
        )
    return value


def decode_generate(body: bytes, spec: ModelSpec) -> DecodedRequest:
    """A generate request as a validated infer request (all outputs, JSON).

    Raises:
        InvalidInput: not a JSON object, a value that does not fit its input, a missing input,
            or a parameter that is not a scalar.
    """
    data = _parse_object(body)
    by_name = {t.name: t for t in spec.inputs}
    inputs: dict[str, np.ndarray] = {}
    parameters: dict[str, Any] = {}
    for key, value in data.items():
        if key in by_name:
            inputs[key] = _tensor(spec, by_name[key], value)
        elif key == "parameters":
            if not isinstance(value, dict):
                raise InvalidInput("Expected JSON object for keyword: 'parameters'")
            for name, inner in value.items():
                parameters[name] = _parameter(name, inner, "Converting keyword: 'parameters': ")
        else:
            parameters[key] = _parameter(key, value)
    required = spec.required_inputs
    missing = [n for n in required if n not in inputs]
    if missing:
        raise InvalidInput(
            f"expected {len(required)} inputs but got {len(inputs)} inputs for model "
            f"'{spec.name}'. Got input(s) {sorted(inputs)}, but missing required input(s) "
            f"{missing}. Please provide all required input(s)."
        )
    request_id = data.get("id")
    request = InferenceRequest(
        inputs=inputs,
        requested_outputs=None,
        id=str(request_id) if request_id is not None else "",
        parameters=parameters,
    )
    names = spec.output_names
    return DecodedRequest(request=request, outputs=names, binary=dict.fromkeys(names, False))


def _value(array: np.ndarray) -> Any:
    flat = np.asarray(array).ravel()
    values = [
        v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v
        for v in (flat.tolist() if flat.dtype != np.object_ else list(flat))
    ]
    return values[0] if len(values) == 1 else values


def generate_response(
    model_name: str, version: int, request_id: str, outputs: dict[str, np.ndarray]
) -> dict[str, Any]:
    """The flat generate response object (keys sorted, as Triton sends them)."""
    body: dict[str, Any] = {name: _value(array) for name, array in outputs.items()}
    body["model_name"] = model_name
    body["model_version"] = str(version)
    if request_id:
        body["id"] = request_id
    return dict(sorted(body.items()))


def dumps(body: dict[str, Any]) -> bytes:
    """Compact JSON, as Triton writes generate bodies and events."""
    return json.dumps(body, separators=(",", ":")).encode()


def sse_event(body: dict[str, Any]) -> bytes:
    """One server-sent event: ``data: <json>`` and a blank line (no event/id lines)."""
    return b"data: " + dumps(body) + b"\n\n"
