"""Model backends: python (Triton python backend), TorchScript, ONNX, TorchServe handlers."""

from deployments.backends.base import InferenceRequest, ModelBackend
from deployments.backends.loader import load_backend

__all__ = ["InferenceRequest", "ModelBackend", "load_backend"]
