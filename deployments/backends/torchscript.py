"""TorchScript backend (``pytorch_libtorch``): ``torch.jit.load`` of ``<version>/model.pt``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deployments.backends.base import TensorBackend
from deployments.contracts.errors import InvalidInput
from deployments.contracts.specs import ModelSpec


class TorchScriptBackend(TensorBackend):
    """Runs a TorchScript module; inputs are passed positionally in config order."""

    def __init__(self, spec: ModelSpec, model_dir: Path, version: int, device: str) -> None:
        super().__init__(spec)
        import torch

        self.torch = torch
        # One intra-op thread per replica unless the config asks for more: replicas share cores.
        torch.set_num_threads(int(spec.parameters.get("torch_num_threads", "1") or 1))
        self.device = torch.device(device)
        self.on_cpu = self.device.type == "cpu"
        path = model_dir / str(version) / spec.model_filename
        self.module = torch.jit.load(str(path), map_location=self.device)  # type: ignore[no-untyped-call]
        self.module.eval()

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Forward pass with gradients off."""
        torch = self.torch
        tensors = []
        for tensor_spec in self.spec.inputs:
            if tensor_spec.name not in inputs:
                continue
            array = inputs[tensor_spec.name]
            if array.dtype == np.object_:
                raise InvalidInput("BYTES inputs are not supported by the pytorch backend")
            tensor = torch.from_numpy(np.ascontiguousarray(array))
            tensors.append(tensor if self.on_cpu else tensor.to(self.device))
        with torch.inference_mode():
            result: Any = self.module(*tensors)
        if isinstance(result, dict):
            values = [result[o.name] for o in self.spec.outputs]
        elif isinstance(result, list | tuple):
            values = list(result)
        else:
            values = [result]
        if len(values) < len(self.spec.outputs):
            raise InvalidInput(
                f"model returned {len(values)} outputs but its config declares "
                f"{len(self.spec.outputs)}"
            )
        return {o.name: values[i].detach().cpu().numpy() for i, o in enumerate(self.spec.outputs)}
