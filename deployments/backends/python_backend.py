"""Triton python backend: loads ``<version>/model.py`` and calls ``TritonPythonModel``."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from deployments.backends import triton_python_backend_utils as pb_utils
from deployments.backends.base import ExecuteResult, InferenceRequest
from deployments.contracts.errors import InferenceError, ModelConfigError
from deployments.contracts.specs import ModelSpec

# Model code imports this name; register our implementation once per process.
sys.modules.setdefault("triton_python_backend_utils", pb_utils)


class PythonBackend:
    """One instance of a python-backend model (``initialize`` on load, ``finalize`` on unload)."""

    def __init__(self, spec: ModelSpec, model_dir: Path, version: int, device: str) -> None:
        self.spec = spec
        self.version = version
        path = model_dir / str(version) / spec.model_filename
        module_name = f"_triton_model_{spec.name}_{version}_{uuid.uuid4().hex[:8]}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ModelConfigError(f"cannot import {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, str(path.parent))
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise ModelConfigError(
                f"failed to load '{spec.name}': {type(exc).__name__}: {exc}"
            ) from None
        finally:
            sys.path.remove(str(path.parent))
        model_class = getattr(module, "TritonPythonModel", None)
        if model_class is None:
            raise ModelConfigError(f"{path} defines no TritonPythonModel class")
        self.model = model_class()
        gpu = device.startswith("cuda")
        args = {
            "model_config": json.dumps(spec.config),
            "model_instance_kind": "GPU" if gpu else "CPU",
            "model_instance_name": f"{spec.name}_0_0",
            "model_instance_device_id": "0",
            "model_repository": str(model_dir),
            "model_version": str(version),
            "model_name": spec.name,
        }
        if hasattr(self.model, "initialize"):
            self.model.initialize(args)

    def execute(self, requests: list[InferenceRequest]) -> list[ExecuteResult]:
        """Hand all requests to ``execute`` at once, as Triton does with dynamic batching."""
        all_outputs = [o.name for o in self.spec.outputs]
        pb_requests = [
            pb_utils.InferenceRequest(
                inputs=[pb_utils.Tensor(name, array) for name, array in r.inputs.items()],
                requested_output_names=r.requested_outputs or all_outputs,
                request_id=r.id,
                parameters=r.parameters,
                model_name=self.spec.name,
                model_version=self.version,
            )
            for r in requests
        ]
        try:
            responses: Any = self.model.execute(pb_requests)
        except Exception as exc:
            error = InferenceError(f"{type(exc).__name__}: {exc}")
            return [error for _ in requests]
        if responses is None or len(responses) != len(requests):
            error = InferenceError(
                f"model '{self.spec.name}' returned {0 if responses is None else len(responses)} "
                f"responses for {len(requests)} requests"
            )
            return [error for _ in requests]
        results: list[ExecuteResult] = []
        for response in responses:
            if response.has_error():
                results.append(InferenceError(response.error().message()))
            else:
                results.append({t.name(): t.as_numpy() for t in response.output_tensors()})
        return results

    def finalize(self) -> None:
        """Call the model's ``finalize`` if it has one."""
        if hasattr(self.model, "finalize"):
            self.model.finalize()
