"""Routers that turn away, at once, a path none of their routes can match.

FastAPI matches a request by trying every route of every included router in order, and the
router it selects is scanned a second time to dispatch; each try costs ~1-2 us of bookkeeping
besides the regex. With ~180 routes a request to a late surface paid for every earlier one:
matching ``POST /torc-service/v1/jobs/{id}/complete_job/...`` cost ~270 us and
``GET /api/models`` ~480 us of CPU per request on a loaded host, 79 and 149 us with the gates
(docs/benchmarks.md, "Route gates and one worker-thread hop"). A ``GatedRouter`` knows the
literal start of every path it serves (the text before a route's first ``{``, under the prefix
it is mounted at) and answers ``Match.NONE`` for any other path without trying its routes. A
route can only match a path that starts with its literal start, so the gate never changes which
route a request reaches, only how fast (``tests/unit/test_gated_router.py`` checks every route
of the app).

A ``GatedRouter`` is included either at the application's root without a prefix, or into
another ``GatedRouter`` (which tells it where it is mounted).

FastAPI also re-derives a "routes version" on every candidate lookup, walking every route of the
router and of everything it includes, to notice routes added after start-up: ~17 walks per
request, ~20% of a ping's CPU under cProfile. Routes here are all defined at import, so
``include_routers`` freezes each surface's tree once the app is assembled: the version is
computed once (``_get_routes_version``, FastAPI's own hook, pinned with FastAPI in
constraints.txt and checked by the unit test), and adding a route to a frozen router raises.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope

from control_plane.api.one_hop_route import OneHopRoute


class GatedRouter(APIRouter):
    """An ``APIRouter`` whose ``matches`` refuses paths outside its routes' literal starts.

    Its routes are ``OneHopRoute``s unless a ``route_class`` is given.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("route_class", OneHopRoute)
        super().__init__(*args, **kwargs)
        self.mount_prefix = ""
        self.children: list[tuple[str, APIRouter]] = []
        self._gates: tuple[str, ...] | None = None
        self._gates_for = -1
        self._frozen_version: int | None = None

    def include_router(self, router: APIRouter, *args: Any, **kwargs: Any) -> None:
        """Include ``router`` as ``APIRouter`` does, remembering where it is mounted."""
        self._check_not_frozen()
        prefix = self.prefix + str(kwargs.get("prefix", ""))
        super().include_router(router, *args, **kwargs)
        self.children.append((prefix, router))
        if isinstance(router, GatedRouter):
            router.mount_at(self.mount_prefix + prefix)
        self._gates_for = -1

    def add_api_route(self, *args: Any, **kwargs: Any) -> None:
        """Add a route as ``APIRouter`` does, unless the app was already assembled."""
        self._check_not_frozen()
        super().add_api_route(*args, **kwargs)

    def add_route(self, *args: Any, **kwargs: Any) -> None:
        """Add a plain Starlette route as ``APIRouter`` does, unless the app was assembled."""
        self._check_not_frozen()
        super().add_route(*args, **kwargs)

    def freeze(self) -> None:
        """Fix this router's tree: its routes version is computed once from now on."""
        for _, child in self.children:
            if isinstance(child, GatedRouter):
                child.freeze()
        self._frozen_version = None
        self._frozen_version = self._get_routes_version()

    def _check_not_frozen(self) -> None:
        if self._frozen_version is not None:
            raise RuntimeError("routes are fixed once the app is assembled (include_routers)")

    def _get_routes_version(self, seen: set[int] | None = None) -> int:
        """FastAPI's routes version (its change check), computed once when frozen."""
        if self._frozen_version is not None:
            return self._frozen_version
        return super()._get_routes_version(seen)

    def mount_at(self, mount_prefix: str) -> None:
        """Record the prefix this router's paths are served under (set by its parent)."""
        if self.mount_prefix not in ("", mount_prefix):
            raise ValueError(
                f"a GatedRouter is mounted once: at {self.mount_prefix!r}, not also at "
                f"{mount_prefix!r}"
            )
        self.mount_prefix = mount_prefix
        for prefix, child in self.children:
            if isinstance(child, GatedRouter):
                child.mount_at(mount_prefix + prefix)
        self._gates_for = -1

    def gates(self) -> tuple[str, ...] | None:
        """The literal starts of every path this router serves; None when it cannot tell."""
        version = len(self.routes) + sum(len(child.routes) for _, child in self.children)
        if version != self._gates_for:
            self._gates = self._compute_gates()
            self._gates_for = version
        return self._gates

    def _compute_gates(self) -> tuple[str, ...] | None:
        starts: set[str] = set()
        unpathed = 0
        for route in self.routes:
            path = getattr(route, "path", None)
            if isinstance(path, str):
                starts.add(self.mount_prefix + path.split("{", 1)[0])
            else:
                unpathed += 1
        if unpathed != len(self.children):
            return None  # something other than our own inclusions: do not guess
        for _, child in self.children:
            if not isinstance(child, GatedRouter):
                return None
            child_gates = child.gates()
            if child_gates is None:
                return None
            starts.update(child_gates)
        return tuple(sorted(starts))

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """``Match.NONE`` at once for a path outside the gates, else FastAPI's own matching."""
        if scope.get("type") in ("http", "websocket"):
            gates = self.gates()
            if gates is not None and not get_route_path(scope).startswith(gates):
                return Match.NONE, {}
        return super().matches(scope)
