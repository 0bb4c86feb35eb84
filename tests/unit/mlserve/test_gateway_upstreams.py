"""The gateway's upstream calls: built-in models by DeploymentHandle, retries, HTTP fallback.

The gateway class runs as a plain object (no Ray): its handle cache holds fakes and the HTTP
call is replaced, so every test sees exactly which path each attempt took.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from ray.exceptions import ActorDiedError, RayTaskError
from ray.serve.exceptions import BackPressureError
from starlette.requests import Request

from deployments import gateway_upstream
from deployments.contracts.security import api_key_digest
from deployments.gateway import BAD_UPSTREAM, AppsGateway
from deployments.gateway_routing import Consumer, GatewayApp, Route, Snapshot
from deployments.gateway_upstream import Reply, UpstreamDown, use_handles

BUILTIN = "http://127.0.0.1:8000"
EXTERNAL = "http://10.1.2.3:8000"
OK_BODY = b'{"outputs":[]}'


class FakeHandle:
    """``handle.handle_raw.remote(...)`` answering from a script of results or exceptions."""

    def __init__(self, script: list[object]) -> None:
        self.script = script
        self.calls: list[tuple[object, ...]] = []

    def options(self, method_name: str) -> FakeHandle:
        assert method_name == "handle_raw"
        return self

    def remote(self, *args: object) -> FakeResponse:
        self.calls.append(args)
        step = self.script.pop(0) if self.script else (200, [("content-type", "x")], OK_BODY)
        return FakeResponse(step)


class FakeResponse:
    def __init__(self, step: object) -> None:
        self.step = step
        self.cancelled = False

    def __await__(self):
        if False:
            yield
        if isinstance(self.step, BaseException):
            raise self.step
        return self.step

    def cancel(self) -> None:
        self.cancelled = True


@pytest.fixture(name="gw")
async def gw_fixture(monkeypatch):
    gw = AppsGateway.func_or_class(  # type: ignore[attr-defined]
        {
            "database_url": "sqlite://",
            "builtin_url": BUILTIN + "/",
            "routes_ttl_s": 3600,
            "builtin_handles": "on",
        }
    )
    route = Route(1, "m", ("/m",), (), (), True)
    gw.cache.snapshot = Snapshot(
        apps={"app1": GatewayApp(5, "app1", 2, None, (route,), frozenset({7}))},
        users_by_key={api_key_digest("k"): Consumer(7, "alice", "user", "")},
        upstreams={1: (BUILTIN, EXTERNAL)},
    )
    gw.http_calls = []

    async def fake_http(node, method, path, query, headers, body):
        gw.http_calls.append((node, method, path, query, headers, body))
        script = gw.http_script
        step = script.pop(0) if script else 200
        if isinstance(step, BaseException):
            raise UpstreamDown(str(step)) from step
        return Reply(step, [("content-type", "y")], b"http", node.removeprefix("http://"))

    gw.http_script = []
    monkeypatch.setattr(gw.upstreams, "_http", fake_http)
    yield gw
    if gw.cache._refresher is not None:
        gw.cache._refresher.cancel()


async def _post(gw, path="/apps/app1/m", headers=None, body=b"{}"):
    async def asgi(scope, receive, send):
        response = await gw(Request(scope, receive))
        await response(scope, receive, send)

    transport = httpx.ASGITransport(app=asgi, client=("1.2.3.4", 5))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.post(path, content=body, headers={"apikey": "k", **(headers or {})})


async def test_builtin_model_goes_through_the_handle_with_gateway_headers(gw):
    handle = FakeHandle([])
    gw.upstreams.handles["p-v2-m"] = handle
    resp = await _post(gw, "/apps/app1/m?x=1&apikey=k", {"Inference-Header-Content-Length": "2"})
    assert resp.status_code == 200
    assert resp.content == OK_BODY
    assert resp.headers["x-mlserve-upstream"] == "serve:p-v2-m"
    assert float(resp.headers["x-mlserve-upstream-latency"]) >= 0
    assert gw.http_calls == []
    [(method, path, query, headers, body)] = handle.calls
    assert (method, path, query, body) == ("POST", "/v2/models/m/infer", "x=1", b"{}")
    sent = {k.lower(): v for k, v in headers}
    assert "apikey" not in sent
    assert sent["x-consumer-id"] == "7"
    assert sent["x-consumer-username"] == "alice"
    assert sent["x-forwarded-for"] == "1.2.3.4"
    assert sent["x-forwarded-prefix"] == "/apps/app1/m"
    assert sent["inference-header-content-length"] == "2"


@pytest.mark.parametrize(
    "failure",
    [ActorDiedError(), BackPressureError(num_queued_requests=9, max_queued_requests=8)],
    ids=["replica-died", "backpressure"],
)
async def test_unavailable_replica_is_retried_on_the_next_upstream(gw, failure):
    gw.upstreams.handles["p-v2-m"] = FakeHandle([failure])
    resp = await _post(gw)
    assert resp.status_code == 200
    assert resp.headers["x-mlserve-upstream"] == EXTERNAL.removeprefix("http://")
    assert [call[0] for call in gw.http_calls] == [EXTERNAL]
    assert gw.cooldown[BUILTIN] > 0  # the built-in node goes to the back for a while


async def test_503_from_the_handle_is_retried_and_the_last_one_returned(gw):
    busy = (503, [("content-type", "application/json")], b'{"error":"busy"}')
    gw.upstreams.handles["p-v2-m"] = FakeHandle([busy, busy])
    gw.http_script = [503]
    resp = await _post(gw)  # builtin 503, external 503, builtin 503: retries=2 used up
    assert resp.status_code == 503
    assert resp.json() == {"error": "busy"}
    assert "x-mlserve-upstream" not in resp.headers


async def test_all_upstreams_down_is_kongs_502(gw):
    gw.upstreams.handles["p-v2-m"] = FakeHandle([ActorDiedError(), ActorDiedError()])
    gw.http_script = [OSError("refused")]
    resp = await _post(gw)
    assert resp.status_code == 502
    assert json.loads(resp.content)["message"] == BAD_UPSTREAM


async def test_model_exception_is_a_500_and_not_retried(gw):
    handle = FakeHandle([RayTaskError("handle_raw", "Traceback...", ValueError("boom"))])
    gw.upstreams.handles["p-v2-m"] = handle
    resp = await _post(gw)
    assert resp.status_code == 500
    assert resp.headers["x-mlserve-upstream"] == "serve:p-v2-m"
    assert gw.http_calls == []


async def test_timeout_cancels_the_call_and_counts_as_down(gw, monkeypatch):
    class Slow(FakeResponse):
        def __await__(self):
            return asyncio.sleep(5).__await__()

    class SlowHandle(FakeHandle):
        def remote(self, *args):
            self.last = Slow(None)
            return self.last

    handle = SlowHandle([])
    gw.upstreams.handles["p-v2-m"] = handle
    gw.upstreams.timeout_s = 0.05
    resp = await _post(gw)
    assert resp.status_code == 200
    assert handle.last.cancelled
    assert [call[0] for call in gw.http_calls] == [EXTERNAL]


async def test_unresolvable_app_falls_back_to_http_and_is_not_looked_up_again(gw, monkeypatch):
    lookups = []

    def missing(deployment, app):
        lookups.append((deployment, app))
        raise KeyError(f"{app} does not exist")

    monkeypatch.setattr(gateway_upstream.serve, "get_deployment_handle", missing)
    for _ in range(3):
        assert (await _post(gw)).status_code == 200
    assert lookups == [("TritonModel", "p-v2-m")]  # remembered for UNRESOLVED_RETRY_S
    assert [call[0] for call in gw.http_calls] == [BUILTIN, EXTERNAL, BUILTIN]


async def test_resolved_handle_is_cached_per_app(gw, monkeypatch):
    lookups = []
    handle = FakeHandle([])

    def found(deployment, app):
        lookups.append(app)
        return handle

    monkeypatch.setattr(gateway_upstream.serve, "get_deployment_handle", found)
    gw.cache.snapshot.upstreams = {1: (BUILTIN,)}
    for _ in range(3):
        assert (await _post(gw)).headers["x-mlserve-upstream"] == "serve:p-v2-m"
    assert lookups == ["p-v2-m"]
    assert len(handle.calls) == 3


async def test_only_model_paths_use_the_handle(gw):
    # server-level paths are answered by the platform's ingress, not by the model's app
    handle = FakeHandle([])
    gw.upstreams.handles["p-v2-m"] = handle
    reply = await gw.upstreams.send(BUILTIN, "m", "GET", "/v2/health/ready", "", [], b"")
    assert reply.source == BUILTIN.removeprefix("http://")
    reply = await gw.upstreams.send(BUILTIN, "m", "POST", "/predictions/m", "", [], b"")
    assert reply.source == BUILTIN.removeprefix("http://")
    reply = await gw.upstreams.send(EXTERNAL, "m", "POST", "/v2/models/m/infer", "", [], b"")
    assert reply.source == EXTERNAL.removeprefix("http://")
    assert handle.calls == []
    reply = await gw.upstreams.send(BUILTIN, "m", "GET", "/v2/models/m/ready", "", [], b"")
    assert reply.source == "serve:p-v2-m"


def test_handles_are_used_unless_the_haproxy_ingress_is_on(gw):
    assert use_handles("auto", {}) is True  # Serve's Python proxy: the handle is faster
    assert use_handles("auto", {"RAY_SERVE_ENABLE_HA_PROXY": "1"}) is False  # HTTP is faster
    assert use_handles("on", {"RAY_SERVE_ENABLE_HA_PROXY": "1"}) is True
    assert use_handles("off", {}) is False
    with pytest.raises(ValueError, match="builtin_handles"):
        use_handles("yes", {})


async def test_with_handles_off_the_builtin_node_is_called_over_http(gw):
    handle = FakeHandle([])
    gw.upstreams.handles["p-v2-m"] = handle
    gw.upstreams.use_handles = False
    reply = await gw.upstreams.send(BUILTIN, "m", "POST", "/v2/models/m/infer", "", [], b"")
    assert reply.source == BUILTIN.removeprefix("http://")
    assert handle.calls == []


def test_streamed_answers_are_recognised_and_generate_stream_goes_over_http():
    from multidict import CIMultiDict

    assert gateway_upstream.streamed(CIMultiDict({"Content-Type": "text/event-stream"}))
    assert gateway_upstream.streamed(CIMultiDict({"Transfer-Encoding": "chunked"}))
    assert not gateway_upstream.streamed(CIMultiDict({"Content-Length": "3"}))
    assert not gateway_upstream.streamed(CIMultiDict({"Content-Type": "application/json"}))
    assert gateway_upstream._model_path("/v2/models/m/infer", "m")
    assert not gateway_upstream._model_path("/v2/models/m/generate_stream", "m")
