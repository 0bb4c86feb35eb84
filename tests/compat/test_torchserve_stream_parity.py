"""Streaming responses (``send_intermediate_predict_response``): REAL TorchServe 0.12 vs ours.

The same ``.mar`` on both; each reply is read chunk by chunk off the socket (``bench.http_chunks``)
so the chunk boundaries, their order, and their arrival times are compared: one HTTP chunk per
intermediate response, the returned value last, the first chunk long before the handler returns,
and a handler failing mid-stream ending the stream without its last chunk. Runs through the
Serve ingress of the session platform (HAProxy by default, the Python proxy with
``PLATFORM_FAST_INGRESS=0``).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import httpx
import pytest

from bench.http_chunks import ChunkedReply, post_chunks
from bench.torchserve_peer import TorchServePeer, torchserve_available
from tests.integration.torchserve.builders import make_mar, make_war

pytestmark = [pytest.mark.ray, pytest.mark.compat, pytest.mark.slow]

STREAMER = """
import itertools
import time
from ts.handler_utils.utils import send_intermediate_predict_response


def handle(data, context):
    if data is None:
        return None
    body = data[0].get("body") or data[0].get("data")
    if isinstance(body, (bytes, bytearray)):
        body = body.decode()
    for i in range(3):
        send_intermediate_predict_response(
            [f"part{i};"], context.request_ids, "Intermediate Prediction success", 200, context
        )
        time.sleep(0.4)
    if body == "fail":
        raise ValueError("mid-stream")
    if body == "dict":
        return [{"final": 1}]
    return ["final"]
"""
INPUTS = [b"plain", b"dict", b"fail"]
# Workflows whose last node streams: a function node (after a function node), and the model.
WF_FUNCTIONS = """
def pre(data, context):
    if data is None:
        return None
    out = []
    for row in data:
        value = row.get("body") or row.get("data") or b""
        out.append(bytes(value) if isinstance(value, (bytes, bytearray)) else str(value).encode())
    return out
""" + STREAMER.replace("def handle(", "def last(")
WF_SPECS = {
    "wfstream": "models: {}\ndag:\n  pre: [last]\n",
    "wfmodel": "models:\n  snode:\n    url: streamer.mar\ndag:\n  pre: [snode]\n",
}


def _shape(reply: ChunkedReply) -> tuple[object, ...]:
    return (
        reply.status,
        reply.chunked,
        "content-length" in reply.headers,
        reply.headers.get("ts_stream_next"),
        tuple(reply.chunks),
        reply.reset,
    )


def test_streamed_chunks_of_models_and_workflow_last_nodes_match_real_torchserve(
    platform, tmp_path
):
    reason = torchserve_available()
    if reason:
        pytest.fail(f"real TorchServe needed for parity: {reason}")
    store = tmp_path / "store"
    make_mar(store, "streamer", STREAMER, work=tmp_path / "s")
    for name, spec in WF_SPECS.items():
        make_war(store, name, spec, WF_FUNCTIONS, work=tmp_path / f"w-{name}")
    for kind in ("model-store", "wf-store"):
        ours = Path(platform.data_dir) / "store" / kind
        ours.mkdir(parents=True, exist_ok=True)
        for archive in store.iterdir():
            (ours / archive.name).write_bytes(archive.read_bytes())
    # registered from another file name, so the workflow's node loads its own copy (a node
    # naming a registered model's url would call that model's application instead)
    (ours.parent / "model-store" / "s_streamer.mar").write_bytes(
        (store / "streamer.mar").read_bytes()
    )
    params = {"url": "streamer.mar", "initial_workers": 1, "synchronous": "true"}
    mismatches = []
    with TorchServePeer(tmp_path / "ts", store) as peer:
        assert httpx.post(peer.management_url + "/models", params=params, timeout=300).is_success
        mine_params = {**params, "url": "s_streamer.mar", "model_name": "streamer"}
        resp = httpx.post(platform.url + "/models", params=mine_params, timeout=300)
        assert resp.status_code == 200, resp.text
        for name in WF_SPECS:
            wf = {"url": f"{name}.war"}
            assert httpx.post(peer.management_url + "/workflows", params=wf, timeout=300).is_success
            resp = httpx.post(platform.url + "/workflows", params=wf, timeout=300)
            assert resp.status_code == 200, resp.text
        paths = ["/predictions/streamer", *(f"/wfpredict/{name}" for name in WF_SPECS)]
        try:
            deadline = time.monotonic() + 30
            for path in paths:
                while post_chunks(platform.url + path, b"plain").status in (404, 503):
                    assert time.monotonic() < deadline  # the proxy routes the new app
                    time.sleep(0.3)
            for body in INPUTS:
                real = post_chunks(peer.inference_url + "/predictions/streamer", body)
                # TorchServe 0.12 answers a workflow whose last node streams with that node's
                # first intermediate response only (Content-Length, 200 even if it fails later);
                # the platform streams the last node like a model (a deliberate difference).
                for name in WF_SPECS:
                    first_only = post_chunks(peer.inference_url + f"/wfpredict/{name}", body)
                    assert (first_only.status, first_only.chunked, first_only.body) == (
                        200,
                        False,
                        b"part0;",
                    )
                for path in paths:
                    mine = post_chunks(platform.url + path, body)
                    if _shape(real) != _shape(mine):
                        mismatches.append(
                            f"{path} {body!r}\n  real {_shape(real)}\n  ours {_shape(mine)}"
                        )
                    # the first part leaves before the handler finishes (3 x 0.4 s of work)
                    times = mine.arrivals_s
                    if not (
                        len(times) >= 3
                        and times[0] < 0.3
                        and times[-1] - times[0] > 0.7
                        and all(b > a for a, b in itertools.pairwise(times))
                    ):
                        mismatches.append(f"{path} {body!r} arrival times {times}")
        finally:
            for name in WF_SPECS:
                httpx.delete(platform.url + f"/workflows/{name}", timeout=60)
            httpx.delete(platform.url + "/models/streamer", timeout=60)
    assert not mismatches, "\n".join(mismatches)
