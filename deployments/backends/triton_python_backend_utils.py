"""A ``triton_python_backend_utils`` for running Triton python-backend models on this platform.

Model code does ``import triton_python_backend_utils as pb_utils``; the python backend
registers this module under that top-level name before importing ``model.py``, so the same
model directory runs unchanged on a real Triton and here. It covers the API that python-backend
models use in practice: tensors, requests, responses, errors, config helpers, the decoupled
response sender, the ``Logger`` and BLS requests (``exec``/``async_exec``, see ``deployments.bls``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from deployments.backends.pb_utils_support import Logger as Logger
from deployments.backends.pb_utils_support import LogLevel as LogLevel
from deployments.backends.pb_utils_support import ModelConfig as ModelConfig
from deployments.backends.pb_utils_support import TritonError as TritonError
from deployments.backends.pb_utils_support import (
    TritonModelException as TritonModelException,
)
from deployments.contracts.datatypes import (
    NUMPY_BY_DATATYPE,
    config_to_api,
    decode_bytes_tensor,
    encode_bytes_tensor,
)

TRITONSERVER_REQUEST_FLAG_SEQUENCE_START = 1
TRITONSERVER_REQUEST_FLAG_SEQUENCE_END = 2
TRITONSERVER_RESPONSE_COMPLETE_FINAL = 1


class _Runtime:
    """What the hosting model server plugs into this module.

    Model code reaches the server only through this module's names, so the BLS runner is set
    here once per replica process by ``deployments.backends.python_backend``.
    """

    bls: Any = None


RUNTIME = _Runtime()


class Tensor:
    """A named tensor backed by a numpy array."""

    def __init__(self, name: str, data: Any) -> None:
        array = np.asarray(data)
        if array.dtype.kind in ("U", "S"):
            array = array.astype(np.object_)
        self._name = name
        self._array = array

    def name(self) -> str:
        """Tensor name."""
        return self._name

    def as_numpy(self) -> np.ndarray:
        """The data as a numpy array (BYTES tensors are object arrays of bytes)."""
        return self._array

    def shape(self) -> list[int]:
        """Tensor shape."""
        return list(self._array.shape)

    def is_cpu(self) -> bool:
        """Always True: tensors are host memory here."""
        return True

    def to_dlpack(self) -> Any:
        """DLPack capsule of the data (numeric tensors)."""
        return self._array.__dlpack__()

    @classmethod
    def from_dlpack(cls, name: str, capsule: Any) -> Tensor:
        """Build a tensor from a DLPack-capable object (e.g. a torch tensor)."""
        return cls(name, np.from_dlpack(capsule))


class InferenceResponseSender:
    """``request.get_response_sender()``: any number of responses, then the FINAL flag."""

    def __init__(self, deliver: Callable[[InferenceResponse | None, int], None]) -> None:
        self._deliver = deliver
        self._closed = False
        self._lock = threading.Lock()

    def send(self, response: InferenceResponse | None = None, flags: int = 0) -> None:
        """Send one response (or only ``flags``); ``TRITONSERVER_RESPONSE_COMPLETE_FINAL`` closes.

        Raises:
            TritonModelException: the sender was already closed, or nothing was sent.
        """
        with self._lock:
            if self._closed:
                raise TritonModelException(
                    "Unable to send response. Response sender has been closed."
                )
            if response is None and not flags & TRITONSERVER_RESPONSE_COMPLETE_FINAL:
                raise TritonModelException(
                    "Inference Response object must be provided when the response flags is set "
                    "to zero."
                )
            if flags & TRITONSERVER_RESPONSE_COMPLETE_FINAL:
                self._closed = True
        self._deliver(response, flags)

    def is_cancelled(self) -> bool:
        """Cancellation is not propagated here; always False."""
        return False


class InferenceRequest:
    """A request handed to ``TritonPythonModel.execute``, or a BLS request a model builds.

    Built by a model (``pb_utils.InferenceRequest(model_name=..., inputs=...,
    requested_output_names=...)``), ``exec()``/``async_exec()`` run it on another model of this
    platform (business logic scripting).
    """

    def __init__(
        self,
        inputs: list[Tensor] | None = None,
        requested_output_names: list[str] | None = None,
        request_id: str = "",
        parameters: dict[str, Any] | str | None = None,
        model_name: str = "",
        model_version: int = -1,
        *,
        correlation_id: int | str = 0,
        flags: int = 0,
        timeout: int = 0,
        preferred_memory: Any = None,
        trace: Any = None,
        response_sender: InferenceResponseSender | None = None,
    ) -> None:
        del preferred_memory, trace  # accepted for compatibility; memory is host memory here
        self._inputs = list(inputs or [])
        self._requested = list(requested_output_names or [])
        self._id = request_id
        if isinstance(parameters, str):
            parameters = json.loads(parameters) if parameters else {}
        self._parameters = parameters or {}
        self._model_name = model_name
        self._model_version = model_version
        self._correlation_id = correlation_id
        self._flags = flags
        self._timeout_us = timeout
        self._sender = response_sender

    def get_response_sender(self) -> InferenceResponseSender:
        """The sender of this request's responses (decoupled models; one response otherwise).

        Raises:
            TritonModelException: the request was not handed to ``execute`` by the server.
        """
        if self._sender is None:
            raise TritonModelException("this request has no response sender")
        return self._sender

    def timeout(self) -> int:
        """The BLS timeout in microseconds (0: none)."""
        return self._timeout_us

    def correlation_id(self) -> int | str:
        """The sequence correlation id (0: none)."""
        return self._correlation_id

    def exec(self, decoupled: bool = False) -> Any:
        """Run this request on ``model_name`` and wait (BLS); errors come back in the response.

        With ``decoupled`` an iterator over the target's responses.
        """
        runner = RUNTIME.bls
        if runner is None:
            return InferenceResponse(error=TritonError("BLS is not available in this process"))
        return runner.exec(self, decoupled)

    async def async_exec(self, decoupled: bool = False) -> Any:
        """``await``-able :meth:`exec` (BLS from ``async def execute``)."""
        runner = RUNTIME.bls
        if runner is None:
            return InferenceResponse(error=TritonError("BLS is not available in this process"))
        return await runner.async_exec(self, decoupled)

    def inputs(self) -> list[Tensor]:
        """All input tensors."""
        return list(self._inputs)

    def requested_output_names(self) -> list[str]:
        """Names of the outputs the client asked for."""
        return list(self._requested)

    def request_id(self) -> str:
        """The client's request id."""
        return self._id

    def parameters(self) -> str:
        """Request parameters as a JSON string (as the real module returns them)."""
        return json.dumps(self._parameters)

    def flags(self) -> int:
        """Sequence flags (0: sequences are not scheduled here)."""
        return self._flags

    def is_cancelled(self) -> bool:
        """Cancellation is not propagated; always False."""
        return False

    def model_name(self) -> str:
        """Name of the model the request targets."""
        return self._model_name

    def model_version(self) -> int:
        """Version the request targets."""
        return self._model_version


class InferenceResponse:
    """A model's answer to one request: output tensors or an error."""

    def __init__(
        self,
        output_tensors: list[Tensor] | None = None,
        error: TritonError | None = None,
        parameters: dict[str, Any] | str | None = None,
    ) -> None:
        self._outputs = list(output_tensors or [])
        self._error = error
        self._parameters = parameters

    def output_tensors(self) -> list[Tensor]:
        """The output tensors."""
        return list(self._outputs)

    def has_error(self) -> bool:
        """True when the response carries an error."""
        return self._error is not None

    def error(self) -> TritonError | None:
        """The error, if any."""
        return self._error


def get_input_tensor_by_name(request: InferenceRequest, name: str) -> Tensor | None:
    """The named input of a request, or None."""
    return next((t for t in request.inputs() if t.name() == name), None)


def get_output_tensor_by_name(response: InferenceResponse, name: str) -> Tensor | None:
    """The named output of a response, or None."""
    return next((t for t in response.output_tensors() if t.name() == name), None)


def _config_entry(model_config: dict[str, Any], key: str, name: str) -> dict[str, Any] | None:
    return next((e for e in model_config.get(key, []) if e.get("name") == name), None)


def get_input_config_by_name(model_config: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The config entry of an input."""
    return _config_entry(model_config, "input", name)


def get_output_config_by_name(model_config: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The config entry of an output."""
    return _config_entry(model_config, "output", name)


def triton_string_to_numpy(triton_type: str) -> Any:
    """``TYPE_FP32`` -> ``numpy.float32`` (``TYPE_STRING`` -> ``numpy.object_``)."""
    return NUMPY_BY_DATATYPE[config_to_api(triton_type)].type


def numpy_to_triton_type(dtype: Any) -> str:
    """``numpy.float32`` -> ``TYPE_FP32``."""
    target = np.dtype(dtype)
    for name, candidate in NUMPY_BY_DATATYPE.items():
        if candidate == target:
            return "TYPE_STRING" if name == "BYTES" else f"TYPE_{name}"
    return "TYPE_STRING"


def serialize_byte_tensor(array: np.ndarray) -> np.ndarray:
    """Length-prefixed serialization of a BYTES tensor (as the real module)."""
    return np.frombuffer(encode_bytes_tensor(array), dtype=np.uint8)


def deserialize_bytes_tensor(buffer: bytes) -> np.ndarray:
    """Inverse of serialize_byte_tensor."""
    return decode_bytes_tensor(bytes(buffer), None)
