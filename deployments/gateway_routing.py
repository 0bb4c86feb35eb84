"""Ray-free core of the apps gateway.

The routing snapshot read from the database, route matching, path rewriting and consumer
authentication (Kong key-auth + ACL semantics).

The gateway replica reads the MLServe tables directly (SQLAlchemy core, same database URL as the
control plane) and caches them for a short TTL, so the hot path never calls the control plane.
The table shapes mirror ``control_plane/db/tables/mlserve.py``; ``deployments`` may not import
``control_plane``, hence the light ``sa.table`` declarations here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa

from deployments.contracts.security import parse_basic

BUILTIN_TRITON_ID = 0

_apps = sa.table(
    "mlserve_apps",
    sa.column("id"),
    sa.column("name"),
    sa.column("host"),
    sa.column("port"),
    sa.column("retries"),
)
_routes = sa.table(
    "mlserve_app_routes",
    sa.column("app_id"),
    sa.column("model_id"),
    sa.column("paths", sa.JSON),
    sa.column("protocols", sa.JSON),
    sa.column("methods", sa.JSON),
    sa.column("strip_path"),
)
_consumers = sa.table("mlserve_app_consumers", sa.column("app_id"), sa.column("user_id"))
_users = sa.table(
    "mlserve_users",
    sa.column("id"),
    sa.column("name"),
    sa.column("role"),
    sa.column("password_hash"),
    sa.column("api_key_hash"),
)
_loads = sa.table(
    "mlserve_model_loads", sa.column("model_id"), sa.column("triton_id"), sa.column("state")
)
_tritons = sa.table("mlserve_tritons", sa.column("id"), sa.column("host"), sa.column("port"))
_models = sa.table("registered_models", sa.column("id"), sa.column("name"), sa.column("loaded"))


@dataclass(frozen=True)
class Consumer:
    """A user as the gateway sees it."""

    id: int
    name: str
    role: str
    password_hash: str


@dataclass(frozen=True)
class Route:
    """One app route to a model."""

    model_id: int
    model_name: str
    paths: tuple[str, ...]
    protocols: tuple[str, ...]
    methods: tuple[str, ...]
    strip_path: bool


@dataclass(frozen=True)
class GatewayApp:
    """An app: its routes, consumers and optional upstream override."""

    id: int
    name: str
    retries: int
    override: str | None
    routes: tuple[Route, ...]
    consumer_ids: frozenset[int]


@dataclass
class Snapshot:
    """Everything the gateway needs to route, from one read of the database."""

    apps: dict[str, GatewayApp] = field(default_factory=dict)
    users_by_key: dict[str, Consumer] = field(default_factory=dict)
    users_by_name: dict[str, Consumer] = field(default_factory=dict)
    upstreams: dict[int, tuple[str, ...]] = field(default_factory=dict)


def _base(host: str, port: int | str) -> str:
    if ":" in str(host) and not str(host).startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def load_snapshot(engine: sa.Engine, builtin_url: str) -> Snapshot:
    """Read apps, routes, consumers, users and READY load records in one transaction."""
    snap = Snapshot()
    with engine.connect() as conn:
        models = list(conn.execute(sa.select(_models)))
        model_names = {r.id: r.name for r in models}
        tritons = {r.id: _base(r.host, r.port) for r in conn.execute(sa.select(_tritons))}
        upstreams: dict[int, list[str]] = {}
        # Built-in server: the v2 registry's ``loaded`` flag is the truth.
        for model in models:
            if model.loaded:
                upstreams.setdefault(model.id, []).append(builtin_url.rstrip("/"))
        for load in conn.execute(sa.select(_loads).order_by(_loads.c.triton_id)):
            external = load.triton_id != BUILTIN_TRITON_ID and load.triton_id in tritons
            if external and load.state == "READY":
                upstreams.setdefault(load.model_id, []).append(tritons[load.triton_id])
        snap.upstreams = {k: tuple(v) for k, v in upstreams.items()}
        for user in conn.execute(sa.select(_users)):
            consumer = Consumer(user.id, user.name, user.role, user.password_hash)
            snap.users_by_key[user.api_key_hash] = consumer
            snap.users_by_name[user.name] = consumer
        routes: dict[int, list[Route]] = {}
        for r in conn.execute(sa.select(_routes)):
            if r.model_id not in model_names:
                continue
            routes.setdefault(r.app_id, []).append(
                Route(
                    r.model_id,
                    model_names[r.model_id],
                    tuple(r.paths or ()),
                    tuple(r.protocols or ()),
                    tuple(m.upper() for m in (r.methods or ())),
                    bool(r.strip_path),
                )
            )
        members: dict[int, set[int]] = {}
        for m in conn.execute(sa.select(_consumers)):
            members.setdefault(m.app_id, set()).add(m.user_id)
        for a in conn.execute(sa.select(_apps)):
            override = _base(a.host, a.port) if a.host and a.port else None
            snap.apps[a.name] = GatewayApp(
                a.id,
                a.name,
                int(a.retries),
                override,
                tuple(routes.get(a.id, ())),
                frozenset(members.get(a.id, set())),
            )
    return snap


# -- matching ---------------------------------------------------------------------------------


class GatewayError(Exception):
    """A gateway answer that is not a proxied response (Kong-style ``{"message"}``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


NO_ROUTE = "no Route matched with those values"
_V2_MODEL = re.compile(
    r"^/v2/models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<tail>/[^/]+)?$"
)
_MODEL_TAILS = {None, "/infer", "/generate", "/generate_stream", "/ready", "/config", "/stats"}
SERVER_PATHS = ("/v2", "/v2/health/live", "/v2/health/ready")


@dataclass(frozen=True)
class Match:
    """A matched request: the app, the route (None for server-level paths) and the upstream path."""

    app: GatewayApp
    route: Route | None
    upstream_path: str
    prefix: str


def split_app(path: str) -> tuple[str, str]:
    """``/<app>/<rest>`` -> ``(app, "/<rest>")``."""
    trimmed = path.lstrip("/")
    app, _, rest = trimmed.partition("/")
    return app, "/" + rest if rest else ""


def _prefix_match(route_path: str, remainder: str) -> bool:
    if route_path == "/":
        return True
    return remainder == route_path or remainder.startswith(route_path + "/")


def match(snapshot: Snapshot, path: str, method: str) -> Match:
    """Find the app and route for ``/<app>/<rest>`` and compute the upstream path.

    Raises:
        GatewayError: 404 (no app/route, or a path the route does not expose), 405 (method).
    """
    app_name, remainder = split_app(path)
    app = snapshot.apps.get(app_name)
    if app is None:
        raise GatewayError(404, NO_ROUTE)
    best: tuple[int, Route, str] | None = None
    for route in app.routes:
        for route_path in route.paths:
            if _prefix_match(route_path, remainder) and (best is None or len(route_path) > best[0]):
                best = (len(route_path), route, route_path)
    if best is not None:
        _len, route, route_path = best
        rest = remainder[len(route_path) :] if route.strip_path and route_path != "/" else remainder
        prefix = f"/apps/{app.name}" + (
            route_path if route.strip_path and route_path != "/" else ""
        )
        return Match(app, route, rewrite(route, rest, method), prefix)
    found = _V2_MODEL.match(remainder)
    if found:
        for route in app.routes:
            if route.model_name == found.group("model"):
                return Match(app, route, rewrite(route, remainder, method), f"/apps/{app.name}")
    if remainder in SERVER_PATHS:
        return Match(app, None, remainder, f"/apps/{app.name}")
    raise GatewayError(404, NO_ROUTE)


def rewrite(route: Route, rest: str, method: str) -> str:
    """The upstream path for the part of the request path after the route.

    Raises:
        GatewayError: 405 for a method the route does not allow, 404 for other paths.
    """
    if (
        route.methods
        and method.upper() not in route.methods
        and not (method.upper() == "HEAD" and "GET" in route.methods)
    ):
        raise GatewayError(405, f"method {method} is not allowed on this route")
    model = route.model_name
    if rest in ("", "/"):
        return f"/v2/models/{model}/infer" if method.upper() == "POST" else f"/v2/models/{model}"
    found = _V2_MODEL.match(rest)
    if found:
        if found.group("model") != model or found.group("tail") not in _MODEL_TAILS:
            raise GatewayError(404, NO_ROUTE)
        return rest
    if rest in SERVER_PATHS:
        return rest
    if rest == f"/predictions/{model}" or rest.startswith(f"/predictions/{model}/"):
        return rest  # TorchServe-style inference body, passed through unchanged
    raise GatewayError(404, NO_ROUTE)


# -- authentication ---------------------------------------------------------------------------

UNAUTHORIZED = {"WWW-Authenticate": 'Key realm="mlserve"'}


@dataclass(frozen=True)
class Credentials:
    """What the request presented: an API key or Basic name/password."""

    key: str | None = None
    basic: tuple[str, str] | None = None


def credentials(headers: Mapping[str, str], query: Mapping[str, str]) -> Credentials:
    """Read the ``apikey`` header (precedence), ``?apikey=``, a Bearer key or HTTP Basic.

    Raises:
        GatewayError: 401 when nothing is presented.
    """
    key = headers.get("apikey") or headers.get("x-api-key") or query.get("apikey")
    auth = headers.get("authorization", "")
    if not key and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    if key:
        return Credentials(key=key)
    basic = parse_basic(auth) if auth else None
    if basic is not None:
        return Credentials(basic=basic)
    if auth:
        raise GatewayError(401, "Invalid authentication credentials", UNAUTHORIZED)
    raise GatewayError(401, "No API key found in request", UNAUTHORIZED)


def authorize(app: GatewayApp, consumer: Consumer) -> None:
    """ACL: consumers of the app and admins pass.

    Raises:
        GatewayError: 403 otherwise.
    """
    if consumer.role != "admin" and consumer.id not in app.consumer_ids:
        raise GatewayError(403, "You cannot consume this service")


HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
CREDENTIAL_HEADERS = frozenset({"apikey", "x-api-key"})


def upstream_headers(headers: list[tuple[str, str]], creds: Credentials) -> list[tuple[str, str]]:
    """Client headers minus hop-by-hop ones and the credentials (``hide_credentials``)."""
    out = []
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in CREDENTIAL_HEADERS:
            continue
        if lower == "authorization" and (
            creds.basic is not None or value.lower().startswith("bearer ")
        ):
            continue
        out.append((name, value))
    return out


def response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Upstream response headers minus hop-by-hop ones (content-length is recomputed)."""
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
