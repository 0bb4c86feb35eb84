"""ONNX Runtime backend (``onnxruntime_onnx``): an InferenceSession on ``<version>/model.onnx``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deployments.backends.base import TensorBackend
from deployments.contracts.errors import ModelConfigError
from deployments.contracts.specs import ModelSpec


class OnnxBackend(TensorBackend):
    """Runs an ONNX graph; CUDA execution provider on GPU replicas."""

    def __init__(self, spec: ModelSpec, model_dir: Path, version: int, device: str) -> None:
        super().__init__(spec)
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelConfigError(
                "the onnxruntime backend needs the optional extra: pip install '.[onnx]'"
            ) from None
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        path = model_dir / str(version) / spec.model_filename
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.output_names = [o.name for o in spec.outputs]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the session; BYTES inputs go in as str objects."""
        feed = {
            name: (array.astype(str) if array.dtype == np.object_ else array)
            for name, array in inputs.items()
        }
        values = self.session.run(self.output_names, feed)
        out: dict[str, np.ndarray] = {}
        for name, value in zip(self.output_names, values, strict=True):
            array = np.asarray(value)
            if array.dtype.kind == "U":
                array = np.vectorize(lambda s: s.encode(), otypes=[object])(array)
            out[name] = array
        return out
