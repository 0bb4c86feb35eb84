"""The gRPC ingress on the session platform (what ``serve_config.yaml``'s ``grpc`` app runs)."""

from __future__ import annotations

from typing import Any

from tests.conftest import PlatformHandle, free_port

GRPC_APP = "grpc"


def ensure_grpc_ingress(platform: PlatformHandle, **overrides: Any) -> str:
    """Deploy the gRPC ingress on the platform unless it runs; returns ``host:port``.

    The port is chosen once per session and kept on the handle, so a test that deleted every
    application (tests/serve/test_v2_lifecycle.py) gets the same endpoint back.
    """
    from ray import serve

    from entrypoint.grpc_app import build_grpc_app

    port = getattr(platform, "grpc_port", None)
    if port is None:
        port = free_port()
        platform.grpc_port = port  # type: ignore[attr-defined]
    running = serve.status().applications.get(GRPC_APP)
    if running is None or overrides:
        args = {"port": port, "public_url": platform.url, **overrides}
        serve.run(build_grpc_app(args), name=GRPC_APP, route_prefix=None)
    return f"127.0.0.1:{port}"
