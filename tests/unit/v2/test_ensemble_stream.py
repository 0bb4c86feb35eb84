"""Decoupled steps in ensembles: each response streams through what follows (no Ray, fused).

The same graphs run over DeploymentHandles in tests/serve/test_v2_ensembles.py and against the
real tritonserver in tests/compat/test_v2_pipelines.py.
"""

from __future__ import annotations

import json

import httpx
import pytest
import ray

from deployments.contracts.app_args import EnsembleAppArgs, EnsembleStepArgs
from deployments.contracts.ensemble import check_steps, ensemble_graph, mark_decoupled
from deployments.contracts.errors import ModelConfigError
from deployments.contracts.specs import load_model_spec
from deployments.model_server import TritonModelServer
from tests.pipeline_repos import write_decoupled_words, write_text_generator
from tests.pipeline_stream_repos import write_text_ensemble

SEQ = '"sequence_end":false,"sequence_id":0,"sequence_start":false'
GRAPHS = {
    "dec_gen": [("sdec", "text_input", "w"), ("sgen", "w", "text_output")],
    "gen_dec": [("sgen", "text_input", "w"), ("sdec", "w", "text_output")],
    "dec_only": [("sdec", "text_input", "text_output")],
}


def _ensemble(repo, name, steps, outputs=("text_output",)):
    write_text_ensemble(repo, name, steps, outputs=outputs)
    spec = load_model_spec(repo / name, name)
    specs = {m: load_model_spec(repo / m, m) for m in ("sdec", "sgen")}
    check_steps(ensemble_graph(spec), specs)
    mark_decoupled(spec)  # what the control plane does for a decoupled step
    args = EnsembleAppArgs(
        spec=spec.to_json(),
        model_dir=str(repo / name),
        steps={
            m: EnsembleStepArgs(app=f"p-v2-{m}", spec=s.to_json(), model_dir=str(repo / m))
            for m, s in specs.items()
            if any(step[0] == m for step in steps)
        },
        fused=True,
    )
    server = TritonModelServer.func_or_class(args)  # type: ignore[attr-defined]
    server.batching = False
    return server


@pytest.fixture(name="servers")
def servers_fixture(tmp_path, monkeypatch):
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
    write_decoupled_words(tmp_path, "sdec")
    write_text_generator(tmp_path, "sgen")
    made = {name: _ensemble(tmp_path, name, steps) for name, steps in GRAPHS.items()}
    made["par"] = _ensemble(
        tmp_path,
        "par",
        [("sdec", "text_input", "A"), ("sgen", "text_input", "B")],
        outputs=("A", "B"),
    )
    yield made
    for server in made.values():
        for backend in server.backends.values():
            backend.finalize()


def _client(server):
    async def asgi(scope, receive, send):
        from starlette.requests import Request

        response = await server(Request(scope, receive))
        await response(scope, receive, send)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://m")


async def _stream(server, name, text):
    async with _client(server) as client:
        return await client.post(f"/v2/models/{name}/generate_stream", json={"text_input": text})


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("dec_gen", ["ONE", "TWO", "THREE"]),
        ("gen_dec", ["ONE", "TWO", "THREE"]),
        ("dec_only", ["one", "two", "three"]),
    ],
)
async def test_each_response_of_a_decoupled_step_runs_the_rest_of_the_graph(servers, name, words):
    resp = await _stream(servers[name], name, "one two three")
    assert resp.status_code == 200
    assert resp.content == b"".join(
        b'data: {"model_name":"%s","model_version":"1",%s,"text_output":"%s"}\n\n'
        % (name.encode(), SEQ.encode(), w.encode())
        for w in words
    )
    config = servers[name].spec.config
    assert config["model_transaction_policy"] == {"decoupled": True}


async def test_a_parallel_branch_joins_every_response(servers):
    resp = await _stream(servers["par"], "par", "x y")
    events = [json.loads(e[6:]) for e in resp.content.split(b"\n\n") if e]
    assert [(e["A"], e["B"]) for e in events] == [("x", "X Y"), ("y", "X Y")]


async def test_a_failing_decoupled_step_ends_the_stream_with_the_ensembles_error(servers):
    resp = await _stream(servers["dec_gen"], "dec_gen", "a raise")
    events = [json.loads(e[6:]) for e in resp.content.split(b"\n\n") if e]
    assert resp.status_code == 200
    assert events[0]["text_output"] == "A"
    assert events[-1]["error"].startswith("in ensemble 'dec_gen', ")
    assert "boom after responses" in events[-1]["error"]
    resp = await _stream(servers["dec_only"], "dec_only", "a error")
    assert resp.content.endswith(b'data: {"error":"in ensemble \'dec_only\', error response"}\n\n')


async def test_infer_on_a_streaming_ensemble_is_501_and_generate_wants_one_response(servers):
    async with _client(servers["dec_gen"]) as client:
        body = {
            "inputs": [{"name": "text_input", "shape": [1], "datatype": "BYTES", "data": ["a"]}]
        }
        resp = await client.post("/v2/models/dec_gen/infer", json=body)
        assert resp.status_code == 501
        resp = await client.post("/v2/models/dec_gen/generate", json={"text_input": "one"})
        assert resp.status_code == 200
        assert resp.json()["text_output"] == "ONE"
        assert resp.json()["sequence_id"] == 0
        resp = await client.post("/v2/models/dec_gen/generate", json={"text_input": "one two"})
        assert "exactly 1 response" in resp.json()["error"]


async def test_steps_counted_in_their_own_statistics(servers):
    await _stream(servers["dec_gen"], "dec_gen", "p q")
    pending = servers["dec_gen"].book.pending
    assert pending[("sgen", 1)].durations["success"][0] == 2  # once per response of sdec
    assert pending[("sdec", 1)].durations["success"][0] == 1
    assert pending[("dec_gen", 1)].durations["success"][0] == 1


def test_two_independent_decoupled_steps_feeding_one_tensor_are_refused(tmp_path):
    write_decoupled_words(tmp_path, "sdec")
    write_decoupled_words(tmp_path, "sdec2")
    write_text_ensemble(
        tmp_path,
        "two",
        [("sdec", "text_input", "A"), ("sdec2", "text_input", "B")],
        outputs=("A", "B"),
    )
    specs = {m: load_model_spec(tmp_path / m, m) for m in ("sdec", "sdec2")}
    with pytest.raises(ModelConfigError, match="two decoupled steps, 0 \\(sdec\\) and 1"):
        check_steps(ensemble_graph(load_model_spec(tmp_path / "two", "two")), specs)
    write_text_ensemble(
        tmp_path, "chain", [("sdec", "text_input", "w"), ("sdec2", "w", "text_output")]
    )
    check_steps(ensemble_graph(load_model_spec(tmp_path / "chain", "chain")), specs)  # fine
