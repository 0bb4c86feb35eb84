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
