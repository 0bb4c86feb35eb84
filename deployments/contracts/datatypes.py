"""Triton datatypes: config names, API names, numpy dtypes and the BYTES tensor wire format."""

from __future__ import annotations

import struct

import numpy as np

from deployments.contracts.errors import InvalidInput

# API name -> numpy dtype; BYTES tensors are numpy object arrays of ``bytes``.
NUMPY_BY_DATATYPE: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}


def config_to_api(config_type: str) -> str:
    """``TYPE_FP32`` -> ``FP32``; ``TYPE_STRING`` -> ``BYTES``."""
    name = config_type.removeprefix("TYPE_")
    return "BYTES" if name == "STRING" else name


def api_to_config(datatype: str) -> str:
    """``FP32`` -> ``TYPE_FP32``; ``BYTES`` -> ``TYPE_STRING``."""
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"


def numpy_dtype(datatype: str) -> np.dtype:
    """The numpy dtype of an API datatype.

    Raises:
        InvalidInput: the datatype is unknown or unsupported (BF16).
    """
    try:
        return NUMPY_BY_DATATYPE[datatype]
    except KeyError:
        raise InvalidInput(f"unsupported datatype '{datatype}'") from None


_DATATYPE_BY_NUMPY = {dtype: name for name, dtype in NUMPY_BY_DATATYPE.items() if name != "BYTES"}


def datatype_of(array: np.ndarray) -> str:
    """The API datatype of a numpy array (object/str/bytes arrays are BYTES)."""
    if array.dtype.kind in ("O", "S", "U"):
        return "BYTES"
    name = _DATATYPE_BY_NUMPY.get(array.dtype.newbyteorder("="))
    if name is None:
        raise InvalidInput(f"no Triton datatype for numpy dtype {array.dtype}")
    return name


def element_size(datatype: str) -> int:
    """Bytes per element of a fixed-size datatype."""
    return numpy_dtype(datatype).itemsize


def encode_bytes_tensor(array: np.ndarray) -> bytes:
    """BYTES elements as 4-byte little-endian length + bytes, row-major."""
    parts = []
    for item in np.asarray(array, dtype=object).ravel():
        raw = item if isinstance(item, bytes) else str(item).encode()
        parts.append(struct.pack("<I", len(raw)))
        parts.append(raw)
    return b"".join(parts)


def decode_bytes_tensor(buffer: bytes, count: int | None) -> np.ndarray:
    """Inverse of encode_bytes_tensor; checks the element count when given."""
    items: list[bytes] = []
    offset = 0
    while offset < len(buffer):
        if offset + 4 > len(buffer):
            raise InvalidInput("truncated BYTES tensor: element length cut short")
        (size,) = struct.unpack_from("<I", buffer, offset)
        offset += 4
        if offset + size > len(buffer):
            raise InvalidInput("truncated BYTES tensor: element data cut short")
        items.append(buffer[offset : offset + size])
        offset += size
    if count is not None and len(items) != count:
        raise InvalidInput(f"BYTES tensor has {len(items)} elements, expected {count}")
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array
