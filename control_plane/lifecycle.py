"""Startup hooks run in the app's lifespan, in order (reconciler, bootstrap admin, ...).

A hook takes the FastAPI app (with ``state.settings``, ``state.session_factory`` and
``state.gateway`` set) and may return an awaitable. Long-running work goes into
``app.state.background_tasks`` so the lifespan cancels it on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from control_plane.errors import DomainError
from control_plane.services.reconciler import Reconciler

logger = logging.getLogger(__name__)

StartupHook = Callable[[FastAPI], Awaitable[Any] | None]


def start_reconciler(app: FastAPI) -> None:
    """Bring Serve in line with the DB now, then keep doing so in the background."""
    reconciler = Reconciler(
        app.state.session_factory,
        app.state.gateway,
        app.state.settings.serving.reconcile_period_s,
    )
    app.state.reconciler = reconciler
    app.state.background_tasks.append(asyncio.create_task(reconciler.run_forever()))


def _load_startup_models(app: FastAPI) -> None:
    from control_plane.services.triton_models import TritonModelService

    settings = app.state.settings
    with app.state.session_factory() as session:
        service = TritonModelService(session, app.state.gateway, settings)
        for name in settings.serving.startup_models:
            row = service.get(name)
            if row is not None and row.loaded:
                continue
            try:
                service.load(name, wait=False)
            except DomainError as exc:
                logger.warning("startup model %s not loaded: %s", name, exc.message)


async def load_startup_models(app: FastAPI) -> None:
    """Load the repository models named in ``serving.startup_models`` (Triton's --load-model)."""
    if app.state.settings.serving.startup_models:
        await asyncio.to_thread(_load_startup_models, app)


async def register_torchserve_archives(app: FastAPI) -> None:
    """Register the TorchServe models/workflows named in settings (skipping registered ones)."""
    from control_plane.services.torchserve.startup import register_startup_archives

    settings = app.state.settings
    if settings.torchserve.load_models or settings.torchserve.load_workflows:
        await asyncio.to_thread(
            register_startup_archives, app.state.session_factory, app.state.gateway, settings
        )


def _ensure_torchserve_keys(app: FastAPI) -> None:
    from control_plane.services.torchserve.tokens import TorchServeTokenService

    with app.state.session_factory() as session:
        TorchServeTokenService(session, app.state.settings).ensure_keys()


async def ensure_torchserve_keys(app: FastAPI) -> None:
    """TorchServe token authorization: keep or make the keys (and key_file.json); off: drop them."""
    await asyncio.to_thread(_ensure_torchserve_keys, app)


async def start_mlserve(app: FastAPI) -> None:
    """MLServe: bootstrap admin, the guard's admin check, the /apps gateway, load re-checks."""
    from control_plane.api.mlserve.startup import mlserve_startup

    await mlserve_startup(app)


STARTUP_HOOKS: list[StartupHook] = [
    ensure_torchserve_keys,
    load_startup_models,
    start_reconciler,
    register_torchserve_archives,
    start_mlserve,
]
