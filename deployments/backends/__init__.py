"""Model backends: python (TritonPythonModel), TorchScript, ONNX Runtime."""

from deployments.backends.base import InferenceRequest, ModelBackend, load_backend

__all__ = ["InferenceRequest", "ModelBackend", "load_backend"]
