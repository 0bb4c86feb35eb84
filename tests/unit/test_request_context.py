"""The request-context middleware: one x-request-id, served-by, metrics by route template."""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from types import SimpleNamespace
from typing import Any

import pytest

from control_plane.api.middleware import (
    RequestContextMiddleware,
    is_loopback,
    is_management_path,
)
from control_plane.api.request_context import get_request_id, new_request_id

Message = MutableMapping[str, Any]


class Recorder:
    """Stands in for ``PlatformMetrics`` (whose own counting is tested below)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        assert seconds >= 0
        self.calls.append((method, route, status))


def _app(status: int, app_headers: list[tuple[bytes, bytes]], seen: list[str]) -> Any:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        seen.append(get_request_id())
        scope["route"] = SimpleNamespace(path="/things/{thing_id}")
        await send({"type": "http.response.start", "status": status, "headers": app_headers})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


async def _run(
    middleware: RequestContextMiddleware, headers: list[tuple[bytes, bytes]]
) -> list[Message]:
    scope = {"type": "http", "method": "GET", "path": "/things/7", "headers": headers}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    return sent


def _ids(start: Message) -> list[bytes]:
    return [v for k, v in start["headers"] if k == b"x-request-id"]


async def test_echo_sends_the_callers_id_once_even_when_the_app_set_one() -> None:
    seen: list[str] = []
    metrics = Recorder()
    app = _app(404, [(b"x-request-id", b"abc"), (b"content-type", b"application/json")], seen)
    middleware = RequestContextMiddleware(app, state=SimpleNamespace(metrics=metrics))
    sent = await _run(middleware, [(b"x-request-id", b"abc")])
    assert _ids(sent[0]) == [b"abc"]
    assert seen == ["abc"]
    assert (b"content-type", b"application/json") in sent[0]["headers"]
    host, _, pid = dict(sent[0]["headers"])[b"x-served-by"].decode().rpartition(":")
    assert host
    assert int(pid) > 0
    assert metrics.calls == [("GET", "/things/{thing_id}", 404)]


async def test_echo_makes_an_id_when_the_caller_sent_none() -> None:
    seen: list[str] = []
    middleware = RequestContextMiddleware(_app(200, [], seen), state=SimpleNamespace())
    sent = await _run(middleware, [])
    (value,) = _ids(sent[0])
    assert re.fullmatch(r"[0-9a-f]{32}", value.decode())
    assert seen == [value.decode()]


async def test_behind_serve_no_id_is_added_and_the_apps_own_is_removed() -> None:
    """Serve's middleware appends X-Request-ID outside the app: the app must send none."""
    seen: list[str] = []
    app = _app(500, [(b"x-request-id", b"from-serve")], seen)
    middleware = RequestContextMiddleware(app, state=SimpleNamespace(), echo_request_id=False)
    sent = await _run(middleware, [(b"x-request-id", b"from-serve")])
    assert _ids(sent[0]) == []
    assert seen == ["from-serve"]  # error envelopes still name it
    assert b"x-served-by" in dict(sent[0]["headers"])


async def test_a_failing_app_is_counted_as_500() -> None:
    metrics = Recorder()

    async def boom(scope: Message, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    middleware = RequestContextMiddleware(boom, state=SimpleNamespace(metrics=metrics))
    with pytest.raises(RuntimeError):
        await _run(middleware, [])
    assert metrics.calls == [("GET", "unmatched", 500)]


def test_new_request_id_keeps_a_callers_id_and_makes_hex_ids() -> None:
    assert new_request_id("given") == "given"
    assert get_request_id() == "given"
    made = {new_request_id() for _ in range(50)}
    assert len(made) == 50
    assert all(re.fullmatch(r"[0-9a-f]{32}", m) for m in made)


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), (None, True), ("", True),
     ("localhost", True), ("10.0.0.1", False), ("192.0.2.2", False), ("not-an-ip", False)],
)
def test_is_loopback(host: str | None, expected: bool) -> None:
    assert is_loopback(host) is expected
    assert is_loopback(host) is expected  # the cached answer is the same


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/models", True), ("/models/x", True), ("/modelsx", False), ("/torc-service/v1/ping", True),
     ("/v2/repository/index", True), ("/v2/models/x/infer", False), ("/healthz", False),
     ("/apps/x", False), ("/api", True), ("/apix", False)],
)
def test_is_management_path(path: str, expected: bool) -> None:
    assert is_management_path(path) is expected


def test_platform_metrics_counts_each_label_set_through_the_cache() -> None:
    from control_plane.metrics import PlatformMetrics
    from tests.fakes import FakeServeGateway

    metrics = PlatformMetrics(session_factory=None, gateway=FakeServeGateway())  # type: ignore[arg-type]
    for _ in range(3):
        metrics.observe_request("GET", "/a/{id}", 200, 0.001)
    metrics.observe_request("GET", "/a/{id}", 404, 0.002)
    assert metrics.api_requests.labels("GET", "/a/{id}", "200")._value.get() == 3
    assert metrics.api_requests.labels("GET", "/a/{id}", "404")._value.get() == 1
    samples = {
        s.name: s.value
        for family in metrics.api_latency.collect()
        for s in family.samples
        if s.labels.get("route") == "/a/{id}"
    }
    assert samples["platform_api_request_duration_seconds_count"] == 4
