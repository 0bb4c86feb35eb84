"""Through Ray Serve (either ingress mode) a response carries x-request-id exactly once."""

import httpx
import pytest

pytestmark = pytest.mark.ray


def test_responses_carry_one_request_id_through_serve(platform) -> None:
    url = platform.url + "/torc-service/v1/ping"
    sent = httpx.get(url, headers={"x-request-id": "serve-rid-1"}, timeout=10)
    assert sent.status_code == 200
    assert sent.headers.get_list("x-request-id") == ["serve-rid-1"]
    made = httpx.get(url, timeout=10)
    assert len(made.headers.get_list("x-request-id")) == 1
    assert made.headers["x-served-by"]


def test_error_envelope_names_the_id_serve_echoes(platform) -> None:
    resp = httpx.get(platform.url + "/no/such/route", timeout=10)
    assert resp.status_code == 404
    (value,) = resp.headers.get_list("x-request-id")
    assert resp.json()["error"]["request_id"] == value
