"""MLServe startup hook.

Bootstrap admin, the management guard's admin check, the gateway app, and a background
re-check of external load records.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError

from control_plane.db.session import session_scope
from control_plane.errors import DomainError
from control_plane.services.mlserve.gateway_app import ensure_gateway_app
from control_plane.services.mlserve.loads import LoadService
from control_plane.services.mlserve.security import VerifiedCache
from control_plane.services.mlserve.users import UserService, credentials_presented

logger = logging.getLogger(__name__)


def _admin_check(app: FastAPI, cache: VerifiedCache):  # type: ignore[no-untyped-def]
    def check(headers: dict[str, str]) -> bool:
        if not credentials_presented(headers):
            return False
        with session_scope(app.state.session_factory) as session:
            try:
                return UserService(session, cache).require_admin(headers).is_admin
            except DomainError:
                return False

    return check


async def _recheck_loads(app: FastAPI) -> None:
    def run() -> None:
        with session_scope(app.state.session_factory) as session:
            outcome = LoadService(session, app.state.gateway, app.state.settings).recheck()
        if outcome:
            logger.info("mlserve load records re-checked: %s", outcome)

    try:
        await asyncio.to_thread(run)
    except Exception:
        logger.exception("re-checking mlserve load records failed")


async def mlserve_startup(app: FastAPI) -> None:
    """Run once per control-plane replica start."""
    settings = app.state.settings
    cache = VerifiedCache()
    app.state.mlserve_credentials = cache

    def bootstrap() -> None:
        with session_scope(app.state.session_factory) as session:
            try:
                if UserService(session, cache).ensure_bootstrap_admin(
                    settings.auth.admin_user, settings.auth.admin_password
                ):
                    logger.info("created bootstrap admin %r", settings.auth.admin_user)
            except IntegrityError:
                session.rollback()  # another replica created it first
            try:
                ensure_gateway_app(session, app.state.gateway, settings)
            except IntegrityError:
                session.rollback()  # another control-plane replica recorded it at the same time
            except DomainError as exc:
                logger.warning("recording the apps gateway failed: %s", exc.message)

    await asyncio.to_thread(bootstrap)
    app.state.admin_check = _admin_check(app, cache)
    app.state.background_tasks.append(asyncio.create_task(_recheck_loads(app)))
