"""The control plane as a Serve application: the builder `serve_config.yaml` names.

The one module that imports both planes: `control_plane` (the FastAPI app) and Ray Serve. Keeping it
outside both packages lets import-linter forbid `deployments -> control_plane` and `control_plane ->
ray` without exceptions.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application


def build_control_plane(args: dict[str, Any]) -> Application:
    """The control-plane ingress: the FastAPI app of every management API at route ``/``.

    Args:
        args: ``serve_config.yaml`` application args; layered over ``CP_*`` environment settings.
            ``num_replicas`` (default 1) is read here, everything else goes to ``Settings``.
    """
    from control_plane.app import create_app
    from control_plane.settings import build_settings

    args = dict(args or {})
    num_replicas = int(args.pop("num_replicas", 1))
    settings = build_settings(args)

    @serve.deployment(
        name="ControlPlane",
        num_replicas=num_replicas,
        max_ongoing_requests=256,
        ray_actor_options={"num_cpus": 0},
    )
    # Serve's RequestIdMiddleware (outside the app, in both ingress modes) echoes X-Request-ID.
    @serve.ingress(lambda: create_app(settings, echo_request_id=False))
    class ControlPlane:
        """The management APIs, one FastAPI app."""

    app: Application = ControlPlane.bind()  # type: ignore[attr-defined]
    return app
