"""Startup hooks run in the app's lifespan, in order (reconciler, bootstrap admin, ...).

A hook takes the FastAPI app (with ``state.settings``, ``state.session_factory`` and
``state.gateway`` set) and may return an awaitable. Long-running work goes into
``app.state.background_tasks`` so the lifespan cancels it on shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from control_plane.services.reconciler import Reconciler

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


async def register_torchserve_archives(app: FastAPI) -> None:
    """Register the TorchServe models/workflows named in settings (skipping registered ones)."""
    from control_plane.services.torchserve.startup import register_startup_archives

    settings = app.state.settings
    if settings.torchserve.load_models or settings.torchserve.load_workflows:
        await asyncio.to_thread(
            register_startup_archives, app.state.session_factory, app.state.gateway, settings
        )


async def start_mlserve(app: FastAPI) -> None:
    """MLServe: bootstrap admin, the guard's admin check, the /apps gateway, load re-checks."""
    from control_plane.api.mlserve.startup import mlserve_startup

    await mlserve_startup(app)


STARTUP_HOOKS: list[StartupHook] = [start_reconciler, register_torchserve_archives, start_mlserve]
