"""The apps gateway's Serve application (``/apps``), recorded like every platform app."""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from control_plane.integrations.serve_types import AppSpec, ServeGateway
from control_plane.services.serve_apps import ServeAppService, app_name, spec_hash
from control_plane.services.triton_models import model_app_name
from control_plane.settings import Settings
from deployments.contracts.app_args import GatewayAppArgs

OWNER = "gw"
ROUTE_PREFIX = "/apps"
UPSTREAM_TIMEOUT_S = 300.0


def gateway_app_name() -> str:
    """``p-gw-apps``."""
    return app_name(OWNER, "apps")


def gateway_spec(settings: Settings) -> AppSpec:
    """The gateway application: it reads the routing tables straight from the database."""
    return AppSpec(
        name=gateway_app_name(),
        route_prefix=ROUTE_PREFIX,
        args=GatewayAppArgs(
            database_url=settings.database_url,
            builtin_url=settings.public_url.rstrip("/"),
            # the gateway calls models on the built-in server through handles to these apps
            builtin_app=model_app_name("{model}"),
            routes_ttl_s=settings.serving.gateway_routes_ttl_s,
            upstream_timeout_s=UPSTREAM_TIMEOUT_S,
            max_ongoing_requests=max(64, settings.serving.max_ongoing_requests),
        ),
    )


def ensure_gateway_app(session: Session, gateway: ServeGateway, settings: Settings) -> bool:
    """Record (and apply) the gateway app unless the same spec is already recorded.

    Returns:
        True when the app was (re)recorded and applied now.
    """
    spec = gateway_spec(settings)
    service = ServeAppService(session, gateway)
    record = service.get(spec.name)
    if record is not None and record.spec_hash == spec_hash(spec):
        return False
    service.put(spec, owner=OWNER)
    return True


def routes_settle_s(settings: Settings) -> float:
    """How long a routing write waits after its commit before it answers (0: it does not).

    The gateway never routes with a snapshot whose read began more than ``routes_ttl_s`` before
    the request (``deployments/gateway_cache.py``); waiting that long after the commit makes
    every request that arrives after the answer see the write.
    """
    serving = settings.serving
    return serving.gateway_routes_ttl_s if serving.gateway_await_writes else 0.0


def settle_routes(seconds: float) -> None:
    """Block until a committed routing write is enforced by every gateway replica."""
    if seconds > 0:
        time.sleep(seconds)
