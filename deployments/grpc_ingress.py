"""The gRPC ingress: a ``grpc.aio`` server on Triton's port inside a Serve deployment.

Ray Serve's own gRPC proxy routes by the ``application`` metadata, which ``tritonclient.grpc``
never sends, and with more than one application it answers NOT_FOUND without it; so the
platform runs ``inference.GRPCInferenceService`` itself, in the replicas of one Serve
application (``grpc``, no HTTP route) that ``serve run serve_config.yaml`` deploys beside the
control plane. The server runs on the replica's event loop (model handles need one). With the
HAProxy front (the default) HAProxy binds ``host:port`` and sends unary inference straight to
the model's replicas (:mod:`deployments.grpc_front`), everything else to this server on a
loopback port; with ``front: python`` this server binds ``host:port`` itself. Either way the
port is shared by the replicas of one node (SO_REUSEPORT), and the replica refuses to start when
another process already listens there. See docs/architecture.md "gRPC".
"""

from __future__ import annotations

import errno
import logging
import shutil
import socket
from typing import Any

import grpc
from ray import serve
from ray.serve import Application

from deployments.contracts.grpc import (
    DEFAULT_MAX_MESSAGE_BYTES,
    GRPC_INGRESS_DEPLOYMENT,
    GrpcIngressArgs,
)
from deployments.grpc_front import (
    MAP_FILE,
    FrontConfig,
    HaproxyFront,
    front_workdir,
    haproxy_binary,
)
from deployments.grpc_routes import cluster_identity, direct_enabled, routes_dir
from deployments.grpc_servicer import InferenceServicer, method_handlers

__all__ = ["GrpcIngress", "build_grpc_ingress", "cluster_identity"]

logger = logging.getLogger(__name__)
IDENTITY_METHOD = "/platform.GrpcIngress/Identity"


def _port_taken(host: str, port: int) -> bool:
    """True when something listens on ``host:port`` (a plain bind, no SO_REUSEPORT, fails)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


async def _listener_is_sibling(host: str, port: int, identity: str) -> bool:
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(IDENTITY_METHOD)
        try:
            answer = await call(b"", timeout=5)
        except grpc.aio.AioRpcError:
            return False
    return bool(answer == identity.encode())


def _identity_handler(identity: str) -> grpc.GenericRpcHandler:
    async def identify(_request: bytes, _context: Any) -> bytes:
        return identity.encode()

    handler = grpc.unary_unary_rpc_method_handler(identify)
    return grpc.method_handlers_generic_handler("platform.GrpcIngress", {"Identity": handler})


@serve.deployment(
    name=GRPC_INGRESS_DEPLOYMENT,
    # Serve's handle channels receive at most 4 MiB unless told (read at import, hence the
    # replica's environment): model answers may be as large as gRPC allows.
    ray_actor_options={
        "num_cpus": 0,
        "runtime_env": {"env_vars": {"RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH": "2147483647"}},
    },
    max_ongoing_requests=8,  # Serve calls only health checks here; gRPC has its own server
)
class GrpcIngress:
    """Runs ``inference.GRPCInferenceService`` on ``args.host:args.port``."""

    async def __init__(self, args: GrpcIngressArgs | dict[str, Any]) -> None:  # type: ignore[misc]
        self.args = GrpcIngressArgs.parse(args)
        identity = cluster_identity()
        host, port = self.args.host, self.args.port
        if _port_taken(host, port) and not await _listener_is_sibling(host, port, identity):
            raise RuntimeError(
                f"gRPC port {host}:{port} is in use by another process; set grpc.port "
                "(CP_GRPC__PORT) to a free port"
            )
        binary = haproxy_binary() if self.args.front == "haproxy" else None
        if self.args.front == "haproxy" and binary is None:
            logger.warning("no HAProxy binary: the gRPC front is this Python server alone")
        self.front: HaproxyFront | None = None
        self.servicer = InferenceServicer(self.args, behind_front=binary is not None)
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", self.args.max_receive_message_bytes),
                ("grpc.max_send_message_length", self.args.max_send_message_bytes),
                ("grpc.so_reuseport", 1),
            ]
        )
        self.server.add_generic_rpc_handlers(
            (method_handlers(self.servicer), _identity_handler(identity))
        )
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        bound = self.server.add_insecure_port("127.0.0.1:0" if binary else target)
        if bound == 0:
            raise RuntimeError(f"gRPC server could not bind {target}")
        await self.server.start()
        if binary is not None:
            book = routes_dir(identity)
            workdir = front_workdir(book)
            config = FrontConfig(
                host=host,
                port=port,
                fallback_port=bound,
                map_file=workdir / MAP_FILE,
                direct=self._direct_routes(),
                max_receive=self.args.max_receive_message_bytes,
            )
            self.front = HaproxyFront(binary, config, book, workdir)
            await self.front.start()
        front = "haproxy" if binary else "python"
        logger.info("gRPC inference server on %s (front: %s)", target, front)

    def _direct_routes(self) -> bool:
        """Whether the front may send inference to model replicas (they send up to INT32_MAX)."""
        return direct_enabled() and self.args.max_send_message_bytes == DEFAULT_MAX_MESSAGE_BYTES

    async def check_health(self) -> None:
        """Serve's health check: the server must still be serving.

        Raises:
            RuntimeError: the gRPC server stopped.
        """
        # grpc.aio has no public "is serving": waiting for termination times out (returns
        # True) while the server runs, and returns False at once once it stopped.
        if not await self.server.wait_for_termination(timeout=0.01):
            raise RuntimeError("the gRPC server stopped")
        if self.front is not None and not self.front.alive():
            raise RuntimeError(f"the gRPC front (HAProxy) stopped: {self.front.log_tail()}")

    async def __call__(self) -> str:
        """Where the gRPC server listens (a Serve entry point for operators and tests)."""
        return f"{self.args.host}:{self.args.port}"

    async def __del__(self) -> None:
        front = getattr(self, "front", None)
        if front is not None:
            front.stop()
            shutil.rmtree(front.workdir, ignore_errors=True)
        server = getattr(self, "server", None)
        if server is not None:
            await server.stop(grace=1.0)
        servicer = getattr(self, "servicer", None)
        if servicer is not None:
            await servicer.control.close()


def build_grpc_ingress(args: GrpcIngressArgs | dict[str, Any] | None = None) -> Application:
    """Application builder of the gRPC ingress (``serve_config.yaml``'s ``grpc`` app).

    Args:
        args: :class:`GrpcIngressArgs` (or its JSON, as Serve passes it).

    Raises:
        pydantic.ValidationError: the args do not fit the model.
    """
    parsed = GrpcIngressArgs.parse(args)
    deployment = GrpcIngress.options(num_replicas=parsed.num_replicas)  # type: ignore[attr-defined]
    app: Application = deployment.bind(parsed.model_dump())
    return app
