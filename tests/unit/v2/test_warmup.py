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


def test_auto_complete_config_completes_metadata_config_and_validation(tmp_path, monkeypatch):
    import json

    from tests.pipeline_repos import write_auto_complete
    from tests.unit.v2.test_pipelines_server import _client

    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
    server = _server(write_auto_complete(tmp_path), "auto")
    assert server.spec.metadata()["inputs"] == [
        {"name": "INPUT0", "datatype": "FP32", "shape": [-1, 4]}
    ]
    assert server.spec.config["max_batch_size"] == 4
    server.batching = False

    async def run():
        async with _client(server) as client:
            body = {
                "inputs": [
                    {"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
                ]
            }
            resp = await client.post("/v2/models/auto/infer", content=json.dumps(body))
            assert resp.json()["outputs"][0]["data"] == [3, 6, 9, 12]

    import asyncio

    asyncio.run(run())
