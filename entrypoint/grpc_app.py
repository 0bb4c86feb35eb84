"""The gRPC ingress as a Serve application: the builder ``serve_config.yaml``'s ``grpc`` app names.

Joins the planes like ``control_plane_app``: the control plane's ``grpc`` settings (``CP_GRPC__*``
environment, then the app's ``args``) become the data plane's typed ``GrpcIngressArgs``.
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application


def build_grpc_app(args: dict[str, Any] | None = None) -> Application:
    """The ``inference.GRPCInferenceService`` endpoint (Triton's port 8001 by default).

    Args:
        args: ``serve_config.yaml`` app args: any ``grpc`` setting (``host``, ``port``,
            ``max_receive_message_bytes``, ...), layered over ``CP_GRPC__*``; ``public_url``
            (or ``CP_PUBLIC_URL``) is where management RPCs reach the control plane unless
            ``control_plane_url`` is set.
    """
    from control_plane.settings import build_settings
    from deployments.contracts.grpc import GrpcIngressArgs
    from deployments.grpc_ingress import build_grpc_ingress

    args = dict(args or {})
    top = {k: args.pop(k) for k in ("public_url",) if k in args}
    settings = build_settings({**top, "grpc": args} if args else top)
    grpc = settings.grpc
    return build_grpc_ingress(
        GrpcIngressArgs(
            host=grpc.host,
            port=grpc.port,
            max_receive_message_bytes=grpc.max_receive_message_bytes,
            max_send_message_bytes=grpc.max_send_message_bytes,
            num_replicas=grpc.num_replicas,
            front=grpc.front,
            control_plane_url=grpc.control_plane_url or settings.public_url,
            management_allow_remote=grpc.management_allow_remote,
        )
    )
