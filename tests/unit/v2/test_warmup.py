"""``model_warmup`` runs on every new replica before it is ready, and counts in the stats."""

import pytest
import ray

from deployments.contracts.app_args import TritonModelAppArgs
from deployments.contracts.errors import ModelConfigError
from deployments.contracts.specs import load_model_spec
from deployments.model_server import TritonModelServer
from tests.pipeline_repos import write_warm_affine


def _server(model, name):
    spec = load_model_spec(model, name)
    args = TritonModelAppArgs(spec=spec.to_json(), model_dir=str(model))
    return TritonModelServer.func_or_class(args)  # type: ignore[attr-defined]


def test_warmup_runs_count_times_batch_requests_and_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
    server = _server(write_warm_affine(tmp_path), "warm")
    stats = server.book.pending[("warm", 1)]
    assert stats.inference_count == 6  # Triton 2.51: 3 executions of 2 requests
    assert stats.execution_count == 3
    for backend in server.backends.values():
        backend.finalize()


def test_batch_size_zero_never_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
    server = _server(write_warm_affine(tmp_path, batch=0), "warm")
    assert ("warm", 1) not in server.book.pending


def test_failing_warmup_fails_the_replica_naming_the_sample(tmp_path, monkeypatch):
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
    with pytest.raises(ModelConfigError, match=r"failed to run warmup sample 'zero_warm'.*boom"):
        _server(write_warm_affine(tmp_path, fail=True), "warm")
