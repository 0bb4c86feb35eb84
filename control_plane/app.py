"""Composition root: ``create_app(settings)`` builds the control-plane FastAPI application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from control_plane.api.errors import install_error_handlers
from control_plane.api.middleware import ManagementGuardMiddleware, RequestContextMiddleware
from control_plane.api.routers import include_routers
from control_plane.db.session import make_engine, make_session_factory, upgrade_database
from control_plane.integrations.serve_types import ServeGateway
from control_plane.lifecycle import STARTUP_HOOKS
from control_plane.metrics import PlatformMetrics
from control_plane.settings import Settings
from deployments.contracts.allocator import pin_mmap_threshold, trim_free_memory, trim_loop

logger = logging.getLogger(__name__)

GatewayFactory = Callable[[], ServeGateway]


def _default_gateway() -> ServeGateway:
    from control_plane.integrations.ray_serve import RayServeGateway

    return RayServeGateway()


def create_app(
    settings: Settings,
    *,
    gateway_factory: GatewayFactory | None = None,
    run_startup_hooks: bool = True,
    echo_request_id: bool = True,
) -> FastAPI:
    """Build the control-plane app; engines and clients are created in its lifespan.

    Args:
        settings: the platform settings (tests build them directly).
        gateway_factory: how to reach Ray Serve; tests pass a fake.
        run_startup_hooks: run background startup work (reconciler, bootstrap users).
        echo_request_id: answer with ``x-request-id``; False behind Ray Serve, whose own
            middleware appends it (it would otherwise reach the client twice).

    Returns:
        The FastAPI application, ready to wrap with ``serve.ingress``.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.enforce_production_secrets()
        pin_mmap_threshold()  # argon2's buffers would otherwise stay in thread arenas
        settings.store_root.mkdir(parents=True, exist_ok=True)
        engine = make_engine(
            settings.database_url,
            echo=settings.db.echo,
            pool_size=settings.db.pool_size,
            prepare_threshold=settings.db.prepare_threshold,
        )
        await asyncio.to_thread(upgrade_database, engine)
        app.state.engine = engine
        app.state.session_factory = make_session_factory(engine)
        app.state.gateway = (gateway_factory or _default_gateway)()
        app.state.metrics = PlatformMetrics(
            app.state.session_factory, app.state.gateway, settings.metrics_torc_workflows
        )
        background: list[asyncio.Task[Any]] = []
        app.state.background_tasks = background
        if trim_free_memory() is not None:  # glibc: bursts leave free memory in thread arenas
            background.append(asyncio.create_task(trim_loop(), name="malloc-trim"))
        if run_startup_hooks:
            for hook in STARTUP_HOOKS:
                result: Awaitable[Any] | None = hook(app)
                if result is not None:
                    await result
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            engine.dispose()

    app = FastAPI(
        title="Ray Serve model platform",
        version="0.1.0",
        description="TorchServe, Triton/KServe v2, Torc and MLServe APIs on one port.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    include_routers(app)
    app.add_middleware(
        ManagementGuardMiddleware,
        allow_remote=settings.auth.management_allow_remote,
        require_auth=settings.auth.management_require_auth,
        state=app.state,
    )
    app.add_middleware(
        RequestContextMiddleware, state=app.state, echo_request_id=echo_request_id
    )
    return app
