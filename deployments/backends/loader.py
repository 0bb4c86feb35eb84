"""Picks and loads the backend a model's config names (Triton's ``backend``/``platform``)."""

from __future__ import annotations

from pathlib import Path

from deployments.backends.base import ModelBackend
from deployments.contracts.errors import InvalidInput
from deployments.contracts.specs import ModelSpec


def load_backend(spec: ModelSpec, model_dir: Path, version: int, device: str) -> ModelBackend:
    """Load one version of a model with the backend its config names.

    Args:
        spec: the parsed model.
        model_dir: the model's directory (holding config.pbtxt and version dirs).
        version: which version directory to load.
        device: ``cpu`` or ``cuda``.
    """
    if spec.backend == "python":
        from deployments.backends.python_backend import PythonBackend

        return PythonBackend(spec, model_dir, version, device)
    if spec.backend == "pytorch":
        from deployments.backends.torchscript import TorchScriptBackend

        return TorchScriptBackend(spec, model_dir, version, device)
    if spec.backend == "onnxruntime":
        from deployments.backends.onnx import OnnxBackend

        return OnnxBackend(spec, model_dir, version, device)
    raise InvalidInput(f"unsupported backend '{spec.backend}'")
