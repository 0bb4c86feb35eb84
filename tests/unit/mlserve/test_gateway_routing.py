"""Gateway matching, rewriting and credential rules (Kong key-auth + ACL semantics)."""

from __future__ import annotations

import base64

import pytest

from deployments.gateway_routing import (
    Consumer,
    Credentials,
    GatewayApp,
    GatewayError,
    Route,
    Snapshot,
    authorize,
    credentials,
    match,
    upstream_headers,
)


def _snapshot() -> Snapshot:
    add_sub = Route(1, "add_sub", ("/add_sub",), ("http", "https"), ("GET", "POST"), True)
    nested = Route(2, "deep", ("/add_sub/deep",), ("http",), ("POST",), True)
    keep = Route(3, "kept", ("/v2/models/kept",), ("http",), ("GET", "POST"), False)
    app = GatewayApp(10, "app1", 5, None, (add_sub, nested, keep), frozenset({7}))
    return Snapshot(apps={"app1": app})


def test_match_strips_route_path_and_keeps_v2_tail():
    found = match(_snapshot(), "/app1/add_sub/v2/models/add_sub/infer", "POST")
    assert found.route is not None
    assert found.route.model_name == "add_sub"
    assert found.upstream_path == "/v2/models/add_sub/infer"
    assert found.prefix == "/apps/app1/add_sub"


def test_match_prefers_longest_prefix_on_segment_boundary():
    assert match(_snapshot(), "/app1/add_sub/deep", "POST").route.model_name == "deep"
    # "/add_subx" is not under "/add_sub": no partial-segment matches
    with pytest.raises(GatewayError) as err:
        match(_snapshot(), "/app1/add_subx", "POST")
    assert err.value.status == 404
    assert err.value.message == "no Route matched with those values"


def test_bare_route_post_is_infer_and_get_is_metadata():
    assert match(_snapshot(), "/app1/add_sub", "POST").upstream_path == "/v2/models/add_sub/infer"
    assert match(_snapshot(), "/app1/add_sub", "GET").upstream_path == "/v2/models/add_sub"


def test_route_cannot_reach_another_model():
    with pytest.raises(GatewayError) as err:
        match(_snapshot(), "/app1/add_sub/v2/models/secret/infer", "POST")
    assert err.value.status == 404
    with pytest.raises(GatewayError):
        match(_snapshot(), "/app1/add_sub/v2/repository/models/add_sub/load", "POST")


def test_app_level_v2_paths_select_route_by_model_name():
    found = match(_snapshot(), "/app1/v2/models/add_sub/versions/1/infer", "POST")
    assert found.route.model_name == "add_sub"
    assert found.upstream_path == "/v2/models/add_sub/versions/1/infer"
    server = match(_snapshot(), "/app1/v2/health/ready", "GET")
    assert server.route is None
    assert server.upstream_path == "/v2/health/ready"


def test_strip_path_false_forwards_the_route_path():
    found = match(_snapshot(), "/app1/v2/models/kept/infer", "POST")
    assert found.route.model_name == "kept"
    assert found.upstream_path == "/v2/models/kept/infer"


def test_method_not_allowed_is_405_and_unknown_app_404():
    with pytest.raises(GatewayError) as err:
        match(_snapshot(), "/app1/add_sub/deep", "GET")
    assert err.value.status == 405
    with pytest.raises(GatewayError) as err:
        match(_snapshot(), "/nope/add_sub", "POST")
    assert err.value.status == 404


def test_credentials_precedence_and_missing():
    assert credentials({"apikey": "h"}, {"apikey": "q"}).key == "h"
    assert credentials({}, {"apikey": "q"}).key == "q"
    assert credentials({"authorization": "Bearer k"}, {}).key == "k"
    basic = "Basic " + base64.b64encode(b"bob:pw").decode()
    assert credentials({"authorization": basic}, {}).basic == ("bob", "pw")
    with pytest.raises(GatewayError) as err:
        credentials({}, {})
    assert err.value.status == 401
    assert err.value.message == "No API key found in request"
    assert "WWW-Authenticate" in err.value.headers
    with pytest.raises(GatewayError) as err:
        credentials({"authorization": "Digest xyz"}, {})
    assert err.value.message == "Invalid authentication credentials"


def test_authorize_consumers_and_admins_only():
    app = _snapshot().apps["app1"]
    authorize(app, Consumer(7, "member", "user", ""))
    authorize(app, Consumer(1, "root", "admin", ""))
    with pytest.raises(GatewayError) as err:
        authorize(app, Consumer(8, "stranger", "user", ""))
    assert err.value.status == 403
    assert err.value.message == "You cannot consume this service"


def test_upstream_headers_hide_credentials_and_hop_by_hop():
    headers = [
        ("apikey", "k"),
        ("X-API-Key", "k"),
        ("Authorization", "Basic abc"),
        ("Connection", "keep-alive"),
        ("Host", "x"),
        ("Inference-Header-Content-Length", "120"),
        ("Content-Type", "application/json"),
    ]
    kept = dict(upstream_headers(headers, Credentials(basic=("a", "b"))))
    assert kept == {"Inference-Header-Content-Length": "120", "Content-Type": "application/json"}


def test_generate_and_generate_stream_are_routed_to_the_model():
    snap = _snapshot()
    for tail in ("/generate", "/generate_stream"):
        found = match(snap, f"/app1/v2/models/add_sub{tail}", "POST")
        assert found.upstream_path == f"/v2/models/add_sub{tail}"
        found = match(snap, f"/app1/add_sub/v2/models/add_sub{tail}", "POST")
        assert found.upstream_path == f"/v2/models/add_sub{tail}"
