"""Ray-free KServe v2 / Triton HTTP codec: JSON tensors and the binary tensor extension.

Decodes ``POST .../infer`` bodies (JSON header + optional binary tail whose length is given by
``Inference-Header-Content-Length``), validates them against a ModelSpec with Triton's error
texts, and encodes responses (binary outputs on request).
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deployments.backends.base import InferenceRequest
from deployments.contracts.datatypes import (
    datatype_of,
    decode_bytes_tensor,
    encode_bytes_tensor,
    numpy_dtype,
)
from deployments.contracts.errors import InvalidInput
from deployments.contracts.specs import ModelSpec

HEADER_LENGTH = "inference-header-content-length"


@dataclass
class DecodedRequest:
    """A validated request plus how the caller wants its outputs."""

    request: InferenceRequest
    outputs: list[str]
    binary: dict[str, bool] = field(default_factory=dict)
    batch_size: int = 1


def decompress(body: bytes, encoding: str | None) -> bytes:
    """Undo ``Content-Encoding: gzip|deflate`` (deflate is the zlib format)."""
    if not encoding or encoding == "identity":
        return body
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, zlib.error) as exc:
        raise InvalidInput(f"failed to decompress the request body ({encoding}): {exc}") from None
    raise InvalidInput(f"unsupported Content-Encoding '{encoding}'")


def _split(body: bytes, header_length: int | None) -> tuple[dict[str, Any], bytes]:
    if header_length is None:
        header_bytes, tail = body, b""
    else:
        if header_length < 0 or header_length > len(body):
            raise InvalidInput(
                f"Inference-Header-Content-Length {header_length} exceeds the body size {len(body)}"
            )
        header_bytes, tail = body[:header_length], body[header_length:]
    try:
        header = json.loads(header_bytes) if header_bytes.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"failed to parse the request JSON buffer: {exc}") from None
    if not isinstance(header, dict):
        raise InvalidInput("failed to parse the request JSON buffer: expected a JSON object")
    return header, tail


def _shape_of(entry: dict[str, Any], name: str) -> tuple[int, ...]:
    shape = entry.get("shape")
    if type(shape) is list:
        for dim in shape:
            if type(dim) is not int or dim < 0:
                break
        else:
            return tuple(shape)
    raise InvalidInput(f"input '{name}' must have a 'shape' of non-negative integers")


def _json_data(
    entry: dict[str, Any], name: str, datatype: str, shape: tuple[int, ...]
) -> np.ndarray:
    if "data" not in entry:
        raise InvalidInput(f"input '{name}' has neither 'data' nor binary_data_size")
    count = math.prod(shape)
    data = entry["data"]
    if datatype == "BYTES":
        flat = np.asarray(data, dtype=object).ravel()
        values = np.empty(flat.size, dtype=object)
        values[:] = [
            v.encode()
            if isinstance(v, str)
            else bytes(v)
            if isinstance(v, list)
            else str(v).encode()
            for v in flat
        ]
    else:
        try:
            values = np.asarray(data, dtype=numpy_dtype(datatype)).ravel()
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"unable to parse 'data' of input '{name}' as {datatype}: {exc}"
            ) from None
    if values.size != count:
        raise InvalidInput(
            f"unexpected number of elements for input '{name}': shape {list(shape)} needs {count}, "
            f"got {values.size}"
        )
    return values.reshape(shape)


def _binary_data(
    tail: bytes, offset: int, size: int, name: str, datatype: str, shape: tuple[int, ...]
) -> np.ndarray:
    if offset + size > len(tail):
        raise InvalidInput(
            f"unexpected end of binary data for input '{name}': needs {size} bytes at offset "
            f"{offset}, body has {len(tail) - offset}"
        )
    chunk = tail[offset : offset + size]
    count = math.prod(shape)
    if datatype == "BYTES":
        return decode_bytes_tensor(chunk, count).reshape(shape)
    dtype = numpy_dtype(datatype)
    if size != count * dtype.itemsize:
        raise InvalidInput(
            f"input '{name}' binary size {size} does not match shape {list(shape)} of {datatype} "
            f"({count * dtype.itemsize} bytes)"
        )
    return np.frombuffer(chunk, dtype=dtype.newbyteorder("<")).reshape(shape)


def _check_against_model(name: str, datatype: str, shape: tuple[int, ...], spec: ModelSpec) -> None:
    known = spec.input_shapes.get(name)
    if known is None:
        raise InvalidInput(f"unexpected inference input '{name}' for model '{spec.name}'")
    expected_type, expected = known
    if datatype != expected_type:
        raise InvalidInput(
            f"input '{name}' data-type is '{datatype}', but model '{spec.name}' expects "
            f"'{expected_type}'"
        )
    if len(shape) == len(expected):
        for want, got in zip(expected, shape, strict=True):
            if want != -1 and want != got:
                break
        else:
            return
    raise InvalidInput(
        f"unexpected shape for input '{name}' for model '{spec.name}'. Expected "
        f"{json.dumps(list(expected), separators=(',', ':'))}, got "
        f"{json.dumps(list(shape), separators=(',', ':'))}"
    )


check_input = _check_against_model  # the same rules for BLS callers' tensors


def decode_request(body: bytes, header_length: int | None, spec: ModelSpec) -> DecodedRequest:
    """Parse and validate an infer request for ``spec``.

    Raises:
        InvalidInput: malformed JSON, bad tensors, wrong names/shapes/datatypes, truncated binary.
    """
    header, tail = _split(body, header_length)
    entries = header.get("inputs")
    if not isinstance(entries, list) or not entries:
        raise InvalidInput("request must contain a non-empty 'inputs' array")
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidInput("each input needs a 'name'")
        name = entry["name"]
        datatype = entry.get("datatype")
        if not isinstance(datatype, str):
            raise InvalidInput(f"input '{name}' needs a 'datatype'")
        shape = _shape_of(entry, name)
        _check_against_model(name, datatype, shape, spec)
        params = entry.get("parameters") or {}
        size = params.get("binary_data_size")
        if size is not None:
            array = _binary_data(tail, offset, int(size), name, datatype, shape)
            offset += int(size)
        else:
            array = _json_data(entry, name, datatype, shape)
        if name in inputs:
            raise InvalidInput(f"input '{name}' is given more than once")
        inputs[name] = array
    if offset != len(tail):
        raise InvalidInput(f"binary data has {len(tail) - offset} unused trailing bytes")
    required = spec.required_inputs
    missing = [n for n in required if n not in inputs]
    if missing:
        raise InvalidInput(
            f"expected {len(required)} inputs but got {len(inputs)} inputs for model "
            f"'{spec.name}'. Got input(s) {sorted(inputs)}, but missing required input(s) "
            f"{missing}. Please provide all required input(s)."
        )
    batch = 1
    if spec.max_batch_size > 0:
        batch = next(iter(inputs.values())).shape[0]
        if any(a.shape[0] != batch for a in inputs.values()):
            raise InvalidInput("all inputs must have the same batch size (first dimension)")
        if batch > spec.max_batch_size:
            raise InvalidInput(
                f"inference request batch-size must be <= {spec.max_batch_size} for '{spec.name}'"
            )
    request_params = header.get("parameters") or {}
    default_binary = bool(request_params.get("binary_data_output", False))
    known = spec.output_names
    wanted = header.get("outputs")
    binary: dict[str, bool] = {}
    if wanted:
        names = []
        for out in wanted:
            out_name = out.get("name") if isinstance(out, dict) else None
            if out_name not in known:
                raise InvalidInput(
                    f"unexpected inference output '{out_name}' for model '{spec.name}'"
                )
            names.append(out_name)
            binary[out_name] = bool(
                (out.get("parameters") or {}).get("binary_data", default_binary)
            )
    else:
        names = known
        binary = dict.fromkeys(names, default_binary)
    request = InferenceRequest(
        inputs=inputs,
        requested_outputs=names if wanted else None,
        id=str(header.get("id", "")),
        parameters={k: v for k, v in request_params.items() if k != "binary_data_output"},
    )
    return DecodedRequest(request=request, outputs=names, binary=binary, batch_size=batch)


def _json_values(array: np.ndarray) -> list[Any]:
    if array.dtype == np.object_ or array.dtype.kind in ("S", "U"):
        return [
            v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)
            for v in array.ravel()
        ]
    return array.ravel().tolist()


def encode_response(
    model_name: str,
    version: int,
    decoded: DecodedRequest,
    outputs: dict[str, np.ndarray],
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Encode an infer response; returns (body, extra headers).

    ``parameters`` become the response's ``parameters`` object (ensembles carry some).

    Raises:
        InvalidInput: the model did not produce a requested output.
    """
    entries = []
    tails: list[bytes] = []
    explicit = decoded.request.requested_outputs is not None
    for name in decoded.outputs:
        if name not in outputs:
            if not explicit:
                continue  # unrequested outputs the model did not produce are simply absent
            raise InvalidInput(f"model '{model_name}' did not produce output '{name}'")
        array = np.asarray(outputs[name])
        datatype = datatype_of(array)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if decoded.binary.get(name):
            raw = (
                encode_bytes_tensor(array)
                if datatype == "BYTES"
                else np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
            )
            entry["parameters"] = {"binary_data_size": len(raw)}
            tails.append(raw)
        else:
            entry["data"] = _json_values(array)
        entries.append(entry)
    header: dict[str, Any] = {
        "model_name": model_name,
        "model_version": str(version),
        "outputs": entries,
    }
    if decoded.request.id:
        header["id"] = decoded.request.id
    if parameters:
        header = {
            "model_name": model_name,
            "model_version": str(version),
            **({"id": decoded.request.id} if decoded.request.id else {}),
            "parameters": parameters,
            "outputs": entries,
        }
    head = json.dumps(header, separators=(",", ":")).encode()
    if not tails:
        return head, {"content-type": "application/json"}
    return head + b"".join(tails), {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(head)),
    }
