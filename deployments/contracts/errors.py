"""Data-plane errors (KServe style), each with the HTTP status the v2 protocol gives it."""

from __future__ import annotations


class InferenceServerError(Exception):
    """Base: carries the HTTP status and the message returned as ``{"error": message}``."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(InferenceServerError):
    """The request does not match the model (shape, datatype, names, encoding)."""

    status = 400


class ModelNotFound(InferenceServerError):
    """Unknown model or version (Triton answers 404)."""

    status = 404


class ModelNotReady(InferenceServerError):
    """The model exists but cannot serve yet (Triton answers 400 on /ready)."""

    status = 400


class InferenceError(InferenceServerError):
    """The model itself failed while executing."""

    status = 500


class ModelConfigError(InferenceServerError):
    """The model directory or config.pbtxt is invalid."""

    status = 400


# TorchServe replicas (``deployments.ts_model``, ``deployments.workflow``) answer these as
# ``{"code", "type", "message"}``; their statuses live in one table in ``deployments.ts_model``.


class TorchServeReplicaError(Exception):
    """Base of what a TorchServe model or workflow replica answers with an error body.

    Attributes:
        message: the ``message`` field.
        ts_type: TorchServe's exception name, the ``type`` field.
    """

    ts_type = "InternalServerException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelVersionNotServed(TorchServeReplicaError):
    """The request names a version this model's application does not serve."""

    ts_type = "ModelVersionNotFoundException"


class PredictionTimeout(TorchServeReplicaError):
    """The handler did not answer within the version's ``response_timeout``.

    TorchServe 0.12 kills the worker and answers 500 ``InternalServerException`` "Worker died."
    """

    ts_type = "InternalServerException"


class HandlerError(TorchServeReplicaError):
    """A handler failed or returned something unusable (TorchServe: "Prediction failed")."""


class HandlerOutOfMemory(HandlerError):
    """The handler ran out of memory (``MemoryError``, CUDA out of memory)."""


class HandlerPredictionError(HandlerError):
    """The handler raised ``ts.utils.util.PredictionException`` with its own status code.

    Attributes:
        error_code: the status the handler chose, answered as is (TorchServe does the same).
    """

    def __init__(self, message: str, error_code: int) -> None:
        super().__init__(message)
        self.error_code = error_code


class WorkflowOutputError(TorchServeReplicaError):
    """The workflow's leaves did not produce a valid wfpredict body."""
