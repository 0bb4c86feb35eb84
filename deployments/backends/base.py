"""The backend interface every model backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from deployments.contracts.errors import InferenceError, InvalidInput
from deployments.contracts.specs import ModelSpec


@dataclass
class InferenceRequest:
    """One decoded v2 request: named numpy inputs and the outputs the caller wants."""

    inputs: dict[str, np.ndarray]
    requested_outputs: list[str] | None = None
    id: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


ExecuteResult = dict[str, np.ndarray] | Exception


class ModelBackend(Protocol):
    """A loaded model version."""

    def execute(self, requests: list[InferenceRequest]) -> list[ExecuteResult]:
        """Run a batch of requests; one result (outputs or an exception) per request."""

    def finalize(self) -> None:
        """Release resources."""


class TensorBackend(ABC):
    """Shared batching for backends that take whole tensors (TorchScript, ONNX).

    Requests are concatenated along the batch dimension when the model batches
    (``max_batch_size > 0``) and their non-batch shapes agree; otherwise they run one by one.
    """

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @abstractmethod
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one (possibly concatenated) set of inputs."""

    def execute(self, requests: list[InferenceRequest]) -> list[ExecuteResult]:
        """Run requests, concatenated where possible."""
        if len(requests) > 1 and self.spec.max_batch_size > 0 and self._stackable(requests):
            try:
                merged = {
                    name: np.concatenate([r.inputs[name] for r in requests], axis=0)
                    for name in requests[0].inputs
                }
                outputs = self.run(merged)
            except Exception as exc:
                error = (
                    exc
                    if isinstance(exc, InvalidInput | InferenceError)
                    else InferenceError(str(exc))
                )
                return [error for _ in requests]
            results: list[ExecuteResult] = []
            start = 0
            for request in requests:
                size = next(iter(request.inputs.values())).shape[0]
                results.append({k: v[start : start + size] for k, v in outputs.items()})
                start += size
            return results
        return [self._run_one(r) for r in requests]

    def _run_one(self, request: InferenceRequest) -> ExecuteResult:
        try:
            return self.run(request.inputs)
        except InvalidInput as exc:
            return exc
        except Exception as exc:
            return InferenceError(f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _stackable(requests: list[InferenceRequest]) -> bool:
        first = requests[0].inputs
        for request in requests[1:]:
            if request.inputs.keys() != first.keys():
                return False
            for name, array in request.inputs.items():
                if array.shape[1:] != first[name].shape[1:] or array.dtype != first[name].dtype:
                    return False
        return True

    def finalize(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Nothing to release by default."""
