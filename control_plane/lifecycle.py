"""Startup hooks run in the app's lifespan, in order (reconciler, bootstrap admin, ...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

StartupHook = Callable[[FastAPI], Awaitable[Any] | None]

STARTUP_HOOKS: list[StartupHook] = []
