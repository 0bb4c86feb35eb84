"""Decoupled streaming through the Serve ingress, generate, BLS and Logger on a real platform."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.model_repos import write_add_sub
from tests.pipeline_repos import (
    write_async_sleepy_add_sub,
    write_bls_caller,
    write_bls_decoupled_caller,
    write_bls_sync_caller,
    write_decoupled_words,
    write_logger_model,
    write_sleepy_add_sub,
    write_text_generator,
)

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", name="triton")
def triton_fixture(platform):
    repo = platform.data_dir / "store" / "models"
    repo.mkdir(parents=True, exist_ok=True)
    write_add_sub(repo, name="p_add_sub")
    write_decoupled_words(repo, name="p_dec", delay_s=0.5)
    write_text_generator(repo, name="p_gen")
    write_bls_caller(repo, name="p_bls")
    write_bls_sync_caller(repo, name="p_bls_sync")
    write_sleepy_add_sub(repo, name="p_sleepy", sleep_s=1.0, count=2)
    write_logger_model(repo, name="p_logger")
    write_async_sleepy_add_sub(repo, name="p_asleepy")
    write_bls_decoupled_caller(repo, name="p_bls_dec")
    client = httpclient.InferenceServerClient(
        platform.host_port, network_timeout=180, connection_timeout=180
    )
    for name in (
        "p_add_sub",
        "p_dec",
        "p_gen",
        "p_bls",
        "p_bls_sync",
        "p_sleepy",
        "p_logger",
        "p_asleepy",
        "p_bls_dec",
    ):
        client.load_model(name)
    yield client
    client.close()


def test_generate_stream_events_arrive_while_the_model_runs(platform, triton):
    arrivals = []
    start = time.monotonic()
    with (
        httpx.Client(base_url=platform.url, timeout=60) as http,
        http.stream(
            "POST", "/v2/models/p_dec/generate_stream", json={"text_input": "one two three four"}
        ) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
        buffer = b""
        for chunk in resp.iter_raw():
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                arrivals.append((time.monotonic() - start, json.loads(event[len(b"data: ") :])))
    assert [e["text_output"] for _, e in arrivals] == ["one", "two", "three", "four"]
    # the model sleeps 0.5 s before each response: the first event is ~1.5 s ahead of the last
    assert arrivals[0][0] < arrivals[-1][0] - 1.0, arrivals


def test_generate_and_decoupled_infer(platform):
    with httpx.Client(base_url=platform.url, timeout=60) as http:
        resp = http.post("/v2/models/p_gen/generate", json={"text_input": "hello world"})
        assert resp.status_code == 200
        assert resp.json() == {
            "model_name": "p_gen",
            "model_version": "1",
            "text_output": "HELLO WORLD",
        }
        resp = http.post("/v2/models/p_gen/generate", json={"nope": 1})
        assert resp.status_code == 400
        assert "missing required input(s) ['text_input']" in resp.json()["error"]
        resp = http.post("/v2/models/p_dec/generate_stream", json={"text_input": "a raise"})
        assert resp.status_code == 200
        assert b'"error"' in resp.content.split(b"\n\n")[1]
        text = {"name": "text_input", "shape": [1], "datatype": "BYTES", "data": ["x"]}
        resp = http.post("/v2/models/p_dec/infer", json={"inputs": [text]})
        assert resp.status_code == 501


def _bls(triton, model, params, x=None):
    x = np.arange(4, dtype=np.float32).reshape(1, 4) if x is None else x
    inp = httpclient.InferInput("INPUT0", [1, 4], "FP32")
    inp.set_data_from_numpy(x)
    return triton.infer(model, [inp], parameters=params)


@pytest.mark.parametrize(
    ("model", "mode"), [("p_bls_sync", "exec"), ("p_bls", "exec"), ("p_bls", "async")]
)
def test_bls_calls_another_model_and_counts_in_its_stats(triton, model, mode):
    before = triton.get_inference_statistics("p_add_sub")["model_stats"][0]["inference_count"]
    result = _bls(triton, model, {"target": "p_add_sub", "mode": mode})
    np.testing.assert_allclose(result.as_numpy("OUTPUT0"), [[0, 2, 4, 6]])
    after = triton.get_inference_statistics("p_add_sub")["model_stats"][0]["inference_count"]
    assert after == before + 1


def test_bls_to_a_missing_model_is_an_error_response(triton):
    for model in ("p_bls", "p_bls_sync"):
        with pytest.raises(InferenceServerException) as info:
            _bls(triton, model, {"target": "no_such_model"})
        assert info.value.status() == "500"
        assert info.value.message() == (
            "Model no_such_model - Error when running inference: Failed for execute the "
            "inference request. Model 'no_such_model' is not ready."
        )


def test_two_concurrent_async_exec_run_in_parallel_on_two_instances(triton):
    result = _bls(triton, "p_bls", {"target": "p_sleepy", "mode": "async2"})
    assert result.as_numpy("OUTPUT0").shape == (2, 4)
    elapsed = float(result.as_numpy("ELAPSED").ravel()[0])
    # Two 1 s calls on two replicas (Triton: 1.06 s). Serve's router balances by queue length,
    # not by instance, and may send both to one replica: never more than serial time (2 s) plus
    # the overhead of a loaded 2-core CI machine (2.6 s seen there).
    assert 0.9 < elapsed < 3.5, elapsed


def test_two_concurrent_async_exec_overlap_on_an_async_callee(triton):
    result = _bls(triton, "p_bls", {"target": "p_asleepy", "mode": "async2"})
    elapsed = float(result.as_numpy("ELAPSED").ravel()[0])
    # the BLS runner does not serialize the two calls: serial would take at least 2 s
    assert 0.9 < elapsed < 1.95, elapsed


def test_logger_lines_reach_the_replica_log(platform, triton):
    text = httpclient.InferInput("text_input", [1], "BYTES")
    text.set_data_from_numpy(np.array([b"marker-42"], dtype=object))
    triton.infer("p_logger", [text])
    import ray

    session = Path(ray._private.worker._global_node.get_session_dir_path())
    deadline = time.monotonic() + 20
    found: list[str] = []
    while not found and time.monotonic() < deadline:
        found = [
            p.name
            for p in (session / "logs" / "serve").glob("replica_*.log")
            if "info line marker-42" in p.read_text(errors="replace")
        ]
        time.sleep(0.5)
    assert found
    assert all("p_logger" in name for name in found)


@pytest.mark.parametrize("mode", ["exec", "async"])
def test_decoupled_bls_iterates_over_every_response(platform, triton, mode):
    with httpx.Client(base_url=platform.url, timeout=60) as http:
        resp = http.post(
            "/v2/models/p_bls_dec/generate",
            json={"text_input": "one two", "target": "p_dec", "mode": mode},
        )
    assert resp.status_code == 200, resp.text
    assert resp.json()["text_output"] == "one | two"
