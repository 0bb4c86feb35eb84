"""A model replica's own gRPC server for unary ``ModelInfer``, behind the ingress's HAProxy.

``tritonclient.grpc`` sends every model's requests on one connection to port 8001, so something
must read the model name out of each request; HAProxy does that (``ungrpc``) in the gRPC front
(:mod:`deployments.grpc_front`) and forwards the request here, to the replica that runs the
model, instead of through a Python ingress and a DeploymentHandle. The server listens on an
ephemeral loopback port and is entered in the node's route book (:mod:`deployments.grpc_routes`)
once it serves; it answers exactly what the handle path's ``grpc_infer`` answers (the same
method, counted in the same statistics). Streams and every other RPC stay on the ingress.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from deployments.grpc_routes import Route, register, unregister

logger = logging.getLogger(__name__)
SERVICE = "inference.GRPCInferenceService"
UNLIMITED = 2**31 - 1  # the front routes here only requests that fit HAProxy's buffer

InferCall = Callable[[bytes], Awaitable[tuple[str, bytes | str]]]


class DirectGrpcServer:
    """``ModelInfer`` for one model on ``127.0.0.1:<ephemeral>``, registered while it serves."""

    def __init__(self, model: str, infer: InferCall, directory: Path) -> None:
        self.model = model
        self.infer = infer
        self.directory = directory
        self.server: Any = None
        self.route_file: Path | None = None
        self.port = 0
        self._stopping: asyncio.Task[None] | None = None

    async def _model_infer(self, raw: bytes, context: Any) -> bytes:
        code, payload = await self.infer(raw)
        if code != "OK":
            await context.abort(getattr(grpc.StatusCode, code), str(payload))
        return bytes(payload)  # type: ignore[arg-type]

    async def start(self) -> None:
        """Serve and register; a failure is logged and leaves inference on the ingress path."""
        try:
            server = grpc.aio.server(
                options=[
                    ("grpc.max_receive_message_length", UNLIMITED),
                    ("grpc.max_send_message_length", UNLIMITED),
                ]
            )
            handler = grpc.unary_unary_rpc_method_handler(self._model_infer)
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(SERVICE, {"ModelInfer": handler}),)
            )
            self.port = server.add_insecure_port("127.0.0.1:0")
            if self.port == 0:
                raise RuntimeError("could not bind a loopback port")
            await server.start()
            self.server = server
            route = Route(model=self.model, port=self.port, pid=os.getpid())
            self.route_file = await asyncio.to_thread(register, self.directory, route)
        except Exception:
            logger.warning("model %s: no direct gRPC server", self.model, exc_info=True)
            return
        logger.info("model %s: direct gRPC ModelInfer on 127.0.0.1:%d", self.model, self.port)

    def withdraw(self) -> None:
        """Leave the route book (the front stops routing here within its poll period)."""
        if self.route_file is not None:
            unregister(self.route_file)
            self.route_file = None

    def close(self) -> None:
        """Withdraw and stop serving (from a synchronous ``__del__``: best effort)."""
        self.withdraw()
        server, self.server = self.server, None
        if server is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # the process is ending: its socket closes with it
        self._stopping = loop.create_task(server.stop(grace=1.0))
