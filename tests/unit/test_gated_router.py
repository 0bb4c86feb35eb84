"""GatedRouter: the gates admit every path the app serves and turn the others away."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Match

from control_plane.api import routers
from control_plane.api.gated_router import GatedRouter


def _app() -> FastAPI:
    app = FastAPI()
    routers.include_routers(app)
    return app


def _surfaces() -> list[GatedRouter]:
    found = [
        getattr(routers, name)
        for name in dir(routers)
        if name.endswith("_router") and isinstance(getattr(routers, name), GatedRouter)
    ]
    assert len(found) == 6, found  # ops, torc, torchserve, kserve-v2, mlserve, console
    return found


def _walk(router: GatedRouter) -> Iterator[GatedRouter]:
    yield router
    for _, child in router.children:
        assert isinstance(child, GatedRouter), child
        yield from _walk(child)


def _concrete(path_format: str) -> str:
    """A path a request could have for ``path_format`` (every parameter filled in)."""
    return re.sub(r"\{[^}]+\}", "x1", path_format)


def _scope(path: str, method: str = "GET") -> dict:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def test_every_route_of_the_app_passes_the_gates_of_the_routers_holding_it() -> None:
    """FastAPI's own full path of each route starts with a gate of every router on its way."""
    app = _app()
    full_path = {
        id(ctx.original_route): ctx.path_format
        for ctx in iter_route_contexts(app.routes)
        if isinstance(getattr(ctx, "path_format", None), str)
    }
    checked = 0
    for surface in _surfaces():
        holders: list[GatedRouter] = []

        def visit(router: GatedRouter, holders: list[GatedRouter]) -> None:
            nonlocal checked
            holders = [*holders, router]
            for route in router.routes:
                if id(route) not in full_path:
                    continue
                path = _concrete(full_path[id(route)])
                for holder in holders:
                    gates = holder.gates()
                    assert gates is not None, holder
                    assert path.startswith(gates), (path, holder.prefix, gates)
                checked += 1
            for _, child in router.children:
                assert isinstance(child, GatedRouter)
                visit(child, holders)

        visit(surface, holders)
    assert checked >= 150  # every API route of the platform (about 180 with the docs pages)


def test_gates_are_mounted_where_the_paths_are() -> None:
    _app()
    torc = routers.torc_router
    for router in _walk(torc):
        gates = router.gates()
        assert gates
        assert all(g.startswith("/torc-service/v1/") for g in gates), gates
    mlserve = {g for r in _walk(routers.mlserve_router) for g in r.gates() or ()}
    assert mlserve
    assert all(g.startswith("/api/") for g in mlserve), mlserve


def test_a_path_outside_the_gates_is_refused_without_trying_the_routes() -> None:
    torc = routers.torc_router
    assert torc.matches(_scope("/v2/models/m/infer", "POST")) == (Match.NONE, {})
    assert torc.matches(_scope("/api/models")) == (Match.NONE, {})


def test_a_router_is_mounted_once() -> None:
    child = GatedRouter()

    @child.get("/x")
    def x() -> None: ...

    GatedRouter(prefix="/a").include_router(child)
    with pytest.raises(ValueError, match="mounted once"):
        GatedRouter(prefix="/b").include_router(child)


def test_a_router_holding_something_it_did_not_include_itself_is_not_gated() -> None:
    router = GatedRouter()

    @router.get("/x/{y}")
    def x() -> None: ...

    assert router.gates() == ("/x/",)
    router.routes.append(object())  # type: ignore[arg-type]  # a route without a path
    assert router.gates() is None


def test_an_assembled_router_keeps_its_routes_version_and_refuses_new_routes() -> None:
    from fastapi import APIRouter

    # FastAPI's own change check, which the frozen routers answer once (see GatedRouter).
    assert hasattr(APIRouter, "_get_routes_version")
    parent = GatedRouter(prefix="/p")
    child = GatedRouter()

    @child.get("/x")
    def x() -> None: ...

    parent.include_router(child)
    version = parent._get_routes_version()
    parent.freeze()
    assert parent._get_routes_version() == version
    assert child._get_routes_version() == APIRouter._get_routes_version(child)
    with pytest.raises(RuntimeError, match="fixed once the app is assembled"):
        child.add_api_route("/y", x)
    with pytest.raises(RuntimeError, match="fixed once the app is assembled"):
        parent.include_router(GatedRouter())


def test_the_frozen_app_still_routes_every_surface() -> None:
    from fastapi.testclient import TestClient

    client = TestClient(_app())
    assert client.get("/torc-service/v1/ping").json() == {"status": "ok"}
    paths = client.get("/openapi.json").json()["paths"]
    for start in ("/torc-service/v1/", "/v2/", "/api/", "/models", "/workflows", "/healthz"):
        assert any(p.startswith(start) for p in paths), start
    assert client.get("/torc-service/v1/nope").status_code == 404
    assert client.get("/no/such/path").status_code == 404
