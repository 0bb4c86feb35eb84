"""The apps gateway on real Ray Serve: retries, byte-for-byte proxying, restart survival."""

from __future__ import annotations

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
import tritonclient.http as httpclient
from ray import serve
from sqlalchemy.orm import Session

from control_plane.db.tables.mlserve import ModelLoad, TritonServer
from control_plane.db.tables.serve_apps import ServeAppRecord
from deployments.gateway import build_gateway
from tests.conftest import free_port

pytestmark = pytest.mark.ray

ADMIN = ("admin", "admin")
ADD_SUB = Path(__file__).resolve().parents[2] / "configs" / "models" / "add_sub"


def _files(name: str) -> list[tuple[str, tuple[str, bytes]]]:
    config = (ADD_SUB / "config.pbtxt").read_text().replace('name: "add_sub"', f'name: "{name}"')
    return [
        ("files[]", ("config.pbtxt", config.encode())),
        ("files[]", ("1/model.py", (ADD_SUB / "1" / "model.py").read_bytes())),
    ]


def _wait(predicate, timeout_s: float = 90, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except httpx.HTTPError as exc:  # the ingress may reset connections during a redeploy
            last = repr(exc)
        if last is True:
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


class Upstream:
    """Answers with the next status in ``script`` (then 200) and records requests."""

    BODY = b'{"outputs":[]}' + bytes(range(256))

    def __init__(self) -> None:
        self.script: list[int] = []
        self.seen: list[dict[str, object]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                outer.seen.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length),
                    }
                )
                status = outer.script.pop(0) if outer.script else 200
                body = gzip.compress(self.BODY) if status == 200 else b'{"error":"busy"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Inference-Header-Content-Length", "14")
                if status == 200:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            BODY = Upstream.BODY

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module", name="api")
def api_fixture(platform):
    with httpx.Client(base_url=platform.url, auth=ADMIN, timeout=240) as client:
        _wait(
            lambda: (
                client.get("/api/tritons").status_code == 200 or client.get("/api/tritons").text
            ),
            what="admin API",
        )
        yield client


@pytest.fixture(name="upstream")
def upstream_fixture():
    up = Upstream()
    yield up
    up.close()


def test_gateway_retries_and_passes_bytes_through(api, platform, upstream):
    assert (
        api.post(
            "/api/models", data={"name": "gw_retry_model"}, files=_files("gw_retry_model")
        ).status_code
        == 201
    )
    key = api.post("/api/users", json={"name": "gw_retry_user", "password": "pw"}).json()["key"]
    app = {"name": "gw_retry", "host": "127.0.0.1", "port": upstream.port, "retries": 2}
    assert api.post("/api/apps", json=app).status_code == 201
    assert (
        api.post("/api/apps/gw_retry/routes/gw_retry_model", json={"paths": ["/m"]}).status_code
        == 201
    )
    assert api.post("/api/apps/gw_retry/consumers/gw_retry_user").status_code == 200
    gw = httpx.Client(base_url=platform.url, timeout=60)
    payload = b'{"inputs":[]}' + b"\x00\x01\x02binary"
    headers = {
        "apikey": key,
        "Inference-Header-Content-Length": "13",
        "Content-Type": "application/octet-stream",
        "Accept-Encoding": "gzip",
    }

    def post():
        return gw.post(
            "/apps/gw_retry/m/v2/models/gw_retry_model/infer?x=1&apikey=" + key,
            content=payload,
            headers=headers,
        )

    _wait(lambda: post().status_code == 200 or post().text, what="gateway route")
    upstream.seen.clear()
    # two 503s, then success: 3 attempts within retries=2
    upstream.script = [503, 503]
    resp = post()
    assert resp.status_code == 200, resp.text
    assert len(upstream.seen) == 3
    # byte-for-byte both ways: body, binary header, gzip encoding untouched
    assert resp.headers["content-encoding"] == "gzip"
    assert resp.headers["inference-header-content-length"] == "14"
    assert resp.content == Upstream.BODY  # httpx un-gzips: the compressed bytes arrived intact
    seen = upstream.seen[-1]
    assert seen["body"] == payload
    assert seen["path"] == "/v2/models/gw_retry_model/infer?x=1"
    sent = {k.lower(): v for k, v in seen["headers"].items()}
    assert "apikey" not in sent
    assert sent["x-consumer-username"] == "gw_retry_user"
    assert sent["inference-header-content-length"] == "13"
    assert sent["x-forwarded-prefix"] == "/apps/gw_retry/m"
    assert resp.headers["x-mlserve-upstream"] == f"127.0.0.1:{upstream.port}"
    # always 503: 1 + retries attempts, the last 503 is returned as is
    upstream.seen.clear()
    upstream.script = [503, 503, 503, 503]
    resp = post()
    assert resp.status_code == 503
    assert len(upstream.seen) == 3
    upstream.script.clear()
    # 500 is not retried
    upstream.seen.clear()
    upstream.script = [500]
    assert post().status_code == 500
    assert len(upstream.seen) == 1
    # a dead upstream: 502 with Kong's message after the retries
    dead = free_port()
    assert api.patch("/api/apps/gw_retry", json={"port": dead}).status_code == 200

    def dead_answer():
        r = post()
        return (
            r.status_code == 502
            and r.json()["message"] == "An invalid response was received from the upstream server"
        ) or r.status_code

    _wait(dead_answer, timeout_s=30, what="502 from a dead upstream")
    assert api.delete("/api/apps/gw_retry").status_code == 200
    assert api.delete("/api/models/gw_retry_model").status_code == 200


def test_state_survives_a_restart_of_serve_apps_and_control_plane(api, platform):
    name = "gw_restart_model"
    model_id = api.post("/api/models", data={"name": name}, files=_files(name)).json()["id"]
    assert (
        api.post(
            f"/api/models/{name}/versions",
            files=[("files[]", ("model.py", (ADD_SUB / "1" / "model.py").read_bytes()))],
        ).status_code
        == 201
    )
    assert api.post(f"/api/models/{model_id}/load", json={"triton_id": 0}).status_code == 200
    key = api.post("/api/users", json={"name": "gw_restart_user", "password": "pw"}).json()["key"]
    assert api.post("/api/apps", json={"name": "gw_restart"}).status_code == 201
    assert api.post(f"/api/apps/gw_restart/routes/{name}").status_code == 201
    assert api.post("/api/users/gw_restart_user/apps/gw_restart/auth").status_code == 200
    body = {
        "inputs": [
            {"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
            {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1, 1]},
        ]
    }
    gw = httpx.Client(base_url=platform.url, timeout=60)

    def infer_ok():
        try:
            r = gw.post(f"/apps/gw_restart/{name}", json=body, headers={"apikey": key})
        except httpx.HTTPError as exc:
            return repr(exc)
        return (r.status_code == 200 and r.json()["outputs"][0]["data"] == [2, 3, 4, 5]) or (
            r.status_code,
            r.text[:200],
        )

    _wait(infer_ok, what="inference through the gateway")
    before = {
        p: api.get(p).json() for p in ("/api/users", "/api/apps", f"/api/models/{name}/versions")
    }

    # Lose the Serve applications (as after a cluster restart), then start the control plane again.
    # The control plane goes first: its reconciler (every 15 s) would otherwise re-create the
    # apps while Serve is still deleting them, and the delete would never finish.
    serve.delete("control-plane")
    serve.delete(f"p-v2-{name}")
    serve.delete("p-gw-apps")
    platform.redeploy_control_plane()
    _wait(lambda: api.get("/api/tritons").status_code == 200, what="control plane back")
    _wait(infer_ok, timeout_s=120, what="gateway and model re-created by the reconciler")
    after = {p: api.get(p).json() for p in before}
    assert after == before
    model = api.get(f"/api/models/{name}").json()["data"]
    assert model["versions"] == [1, 2]
    assert [t["id"] for t in model["tritons"]] == [0]
    assert model["tritons"][0]["state"] == "READY"
    api.delete("/api/apps/gw_restart")
    api.delete(f"/api/models/{name}")


def _binary_body() -> tuple[np.ndarray, np.ndarray, bytes, int]:
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    b = np.full((2, 4), 0.5, dtype=np.float32)
    inputs = [
        httpclient.InferInput("INPUT0", [2, 4], "FP32"),
        httpclient.InferInput("INPUT1", [2, 4], "FP32"),
    ]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b)
    outputs = [httpclient.InferRequestedOutput("OUTPUT0", binary_data=True)]
    body, length = httpclient.InferenceServerClient.generate_request_body(inputs, outputs)
    return a, b, body, int(length)


@pytest.fixture(name="handles_on")
def handles_on_fixture(platform):
    """The gateway app redeployed with ``builtin_handles: on``, then as it was recorded.

    ``auto`` (the recorded default) uses HTTP behind the HAProxy ingress, where it is faster.
    """
    engine = sa.create_engine(f"sqlite:///{platform.data_dir / 'platform.db'}")
    with Session(engine) as session:
        args = dict(session.get(ServeAppRecord, "p-gw-apps").args)
    engine.dispose()
    serve.run(
        build_gateway({**args, "builtin_handles": "on"}), name="p-gw-apps", route_prefix="/apps"
    )
    yield
    serve.run(build_gateway(args), name="p-gw-apps", route_prefix="/apps")


def test_builtin_models_go_by_handle_and_a_gone_app_is_retried(api, platform, upstream, handles_on):
    name = "gw_handle_model"
    app_name = f"p-v2-{name}"
    model_id = api.post("/api/models", data={"name": name}, files=_files(name)).json()["id"]

    def load():
        # right after the previous test's control-plane restart a load has failed once with a 500
        loaded = api.post(f"/api/models/{name}/load", json={"triton_id": 0})
        return loaded.status_code == 200 or (loaded.status_code, loaded.text[:300])

    _wait(load, timeout_s=60, what="model loaded on the built-in server")
    key = api.post("/api/users", json={"name": "gw_handle_user", "password": "pw"}).json()["key"]
    assert api.post("/api/apps", json={"name": "gw_handle", "retries": 1}).status_code == 201
    assert api.post(f"/api/apps/gw_handle/routes/{name}").status_code == 201
    assert api.post("/api/users/gw_handle_user/apps/gw_handle/auth").status_code == 200
    gw = httpx.Client(base_url=platform.url, timeout=60)
    body = {
        "inputs": [
            {"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
            {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1, 1]},
        ]
    }

    def infer(**extra):
        return gw.post(f"/apps/gw_handle/{name}", json=body, headers={"apikey": key, **extra})

    def by_handle():
        r = infer()
        ok = r.status_code == 200 and r.json()["outputs"][0]["data"] == [2, 3, 4, 5]
        return (ok and r.headers.get("x-mlserve-upstream") == f"serve:{app_name}") or (
            r.status_code,
            r.headers.get("x-mlserve-upstream"),
            r.text[:200],
        )

    _wait(by_handle, what="inference through the model's handle")
    assert float(infer().headers["x-mlserve-upstream-latency"]) > 0

    # binary tensors (Inference-Header-Content-Length) and a gzip request body, by handle
    a, b, payload, length = _binary_body()
    headers = {
        "apikey": key,
        "Inference-Header-Content-Length": str(length),
        "Content-Type": "application/octet-stream",
        "Content-Encoding": "gzip",
    }
    r = gw.post(
        f"/apps/gw_handle/v2/models/{name}/infer", content=gzip.compress(payload), headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-mlserve-upstream"] == f"serve:{app_name}"
    result = httpclient.InferResult.from_response_body(
        r.content, header_length=int(r.headers["inference-header-content-length"])
    )
    np.testing.assert_allclose(result.as_numpy("OUTPUT0"), a + b)
    client = httpclient.InferenceServerClient(
        f"{platform.host_port}/apps/gw_handle", network_timeout=60
    )
    inputs = [
        httpclient.InferInput("INPUT0", [2, 4], "FP32"),
        httpclient.InferInput("INPUT1", [2, 4], "FP32"),
    ]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b)
    got = client.infer(name, inputs, headers={"apikey": key})
    np.testing.assert_allclose(got.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_allclose(got.as_numpy("OUTPUT1"), a - b)
    assert client.is_model_ready(name, headers={"apikey": key})
    # the handle serves the model's own paths only; the model's errors come back as they are
    assert (
        gw.get(f"/apps/gw_handle/v2/models/{name}/versions/7", headers={"apikey": key}).status_code
        == 404
    )

    # A second upstream for the model (an "external triton" row), then the built-in app goes away
    # for good (its desired-app record first, so the reconciler does not bring it back).
    engine = sa.create_engine(f"sqlite:///{platform.data_dir / 'platform.db'}")
    with Session(engine) as session:
        triton = TritonServer(name="gw_handle_fake", host="127.0.0.1", port=upstream.port)
        session.add(triton)
        session.flush()
        session.add(ModelLoad(model_id=model_id, triton_id=triton.id, state="READY"))
        session.commit()
        triton_id = triton.id

    def both_used():
        seen = {infer().headers.get("x-mlserve-upstream") for _ in range(4)}
        return seen == {f"serve:{app_name}", f"127.0.0.1:{upstream.port}"} or seen

    _wait(both_used, what="routing table with both upstreams")
    with Session(engine) as session:
        session.delete(session.get(ServeAppRecord, app_name))
        session.commit()
    serve.delete(app_name)
    upstream.seen.clear()
    for _ in range(4):  # every other request tries the built-in node first: retried, not failed
        r = infer()
        assert r.status_code == 200, r.text
        assert r.headers["x-mlserve-upstream"] == f"127.0.0.1:{upstream.port}"
    assert len(upstream.seen) == 4
    sent = {k.lower(): v for k, v in upstream.seen[-1]["headers"].items()}
    assert sent["x-consumer-username"] == "gw_handle_user"

    # The app comes back (loaded again) and the gateway's cached handle finds the new replicas.
    with Session(engine) as session:
        session.delete(session.get(TritonServer, triton_id))
        session.commit()
    engine.dispose()
    _wait(load, timeout_s=60, what="model loaded again")
    _wait(by_handle, timeout_s=120, what="the re-created app answering by handle")
    api.delete("/api/apps/gw_handle")
    api.delete(f"/api/models/{name}")


def test_gateway_writes_are_enforced_when_they_return(api, platform, upstream):
    """Create, revoke and delete through the admin API; the very next request sees each write.

    Issue 19: the gateway's cached routes lagged the database by up to a second, so a route
    created (or deleted) a moment ago answered 404 (or 200). Every request below is sent right
    after the write returned, with no waiting, against a gateway that is already warm.
    """
    name = "gw_fresh_model"
    assert api.post("/api/models", data={"name": name}, files=_files(name)).status_code == 201
    key = api.post("/api/users", json={"name": "gw_fresh_user", "password": "pw"}).json()["key"]
    gw = httpx.Client(base_url=platform.url, timeout=60)
    gw.get("/apps/gw_fresh/v2", headers={"apikey": key})  # the gateway holds a snapshot now

    def status(apikey: str = key) -> int:
        return gw.post(f"/apps/gw_fresh/{name}", json={}, headers={"apikey": apikey}).status_code

    app = {"name": "gw_fresh", "host": "127.0.0.1", "port": upstream.port, "retries": 0}
    assert api.post("/api/apps", json=app).status_code == 201
    assert api.post(f"/api/apps/gw_fresh/routes/{name}").status_code == 201
    assert api.post("/api/apps/gw_fresh/consumers/gw_fresh_user").status_code == 200
    assert status() == 200
    assert api.delete("/api/apps/gw_fresh/consumers/gw_fresh_user").status_code == 200
    assert status() == 403
    assert api.post("/api/apps/gw_fresh/consumers/gw_fresh_user").status_code == 200
    assert status() == 200
    rotated = api.patch("/api/users/gw_fresh_user", json={"rotate_key": True})
    assert rotated.status_code == 200, rotated.text
    new_key = rotated.json()["key"]
    assert status() == 401
    assert status(new_key) == 200
    assert api.delete(f"/api/apps/gw_fresh/routes/{name}").status_code == 200
    assert status(new_key) == 404
    assert api.post(f"/api/apps/gw_fresh/routes/{name}").status_code == 201
    assert status(new_key) == 200
    assert api.delete("/api/apps/gw_fresh").status_code == 200
    assert status(new_key) == 404
    assert api.delete("/api/users/gw_fresh_user").status_code == 200
    assert gw.get("/apps/gw_fresh/v2", headers={"apikey": new_key}).status_code in (401, 404)
    assert api.delete(f"/api/models/{name}").status_code == 200


class StreamingUpstream:
    """Streams two chunks per request; the second only once the test says it got the first.

    ``released`` records, per request, whether the test opened the gate (it saw chunk 1 while the
    upstream was still producing) or the upstream gave up waiting (the gateway buffered).
    """

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.released: list[bool] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length") or 0))
                sse = self.path.endswith("/generate_stream")
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream" if sse else "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i, last in ((1, False), (2, True)):
                    if last:
                        outer.released.append(outer.gate.wait(30))
                    data = f'data: {{"text_output": "part{i}"}}\n\n' if sse else f"part{i}\n"
                    raw = data.encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def test_streamed_answers_arrive_chunk_by_chunk(api, platform):
    """v2 generate_stream (SSE) and TorchServe chunked predictions are not buffered (issue 12)."""
    name = "gw_stream_model"
    upstream = StreamingUpstream()
    try:
        assert api.post("/api/models", data={"name": name}, files=_files(name)).status_code == 201
        key = api.post("/api/users", json={"name": "gw_stream_user", "password": "pw"}).json()[
            "key"
        ]
        app = {"name": "gw_stream", "host": "127.0.0.1", "port": upstream.port, "retries": 0}
        assert api.post("/api/apps", json=app).status_code == 201
        assert api.post(f"/api/apps/gw_stream/routes/{name}").status_code == 201
        assert api.post("/api/apps/gw_stream/consumers/gw_stream_user").status_code == 200
        gw = httpx.Client(base_url=platform.url, timeout=60)
        paths = {
            f"/apps/gw_stream/v2/models/{name}/generate_stream": "text/event-stream",
            f"/apps/gw_stream/{name}/predictions/{name}": "text/plain",
        }
        for path, media in paths.items():
            upstream.gate.clear()
            body = {"text_input": "hi"}
            with gw.stream("POST", path, json=body, headers={"apikey": key}) as r:
                assert r.status_code == 200, r.read()
                assert r.headers["content-type"].startswith(media)
                chunks = r.iter_bytes()
                received = b""
                while b"part1" not in received:
                    received += next(chunks)
                assert b"part2" not in received
                upstream.gate.set()  # the upstream produces part 2 only now
                received += b"".join(chunks)
            assert b"part2" in received
            assert upstream.released[-1] is True, f"{path}: the gateway buffered the stream"
        assert api.delete("/api/apps/gw_stream").status_code == 200
        assert api.delete("/api/users/gw_stream_user").status_code == 200
        assert api.delete(f"/api/models/{name}").status_code == 200
    finally:
        upstream.close()
