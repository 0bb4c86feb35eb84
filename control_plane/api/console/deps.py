"""Console dependencies: the session service and the logged-in admin of a page request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from control_plane.api.deps import SessionDep
from control_plane.errors import NotFoundError
from control_plane.services.console.sessions import (
    SESSION_COOKIE,
    ConsoleSessionService,
    SessionInfo,
)
from control_plane.services.mlserve.security import VerifiedCache
from control_plane.services.mlserve.users import Principal, UserService


async def console_sessions(session: SessionDep) -> ConsoleSessionService:
    """The console session service for this request."""
    return ConsoleSessionService(session)


async def console_users(session: SessionDep, request: Request) -> UserService:
    """The user service, sharing the replica's cache of verified passwords when there is one."""
    cache = getattr(request.app.state, "mlserve_credentials", None)
    return UserService(session, cache if isinstance(cache, VerifiedCache) else None)


ConsoleSessionsDep = Annotated[ConsoleSessionService, Depends(console_sessions)]
ConsoleUsersDep = Annotated[UserService, Depends(console_users)]


@dataclass(frozen=True)
class ConsoleLogin:
    """The admin behind a page request and the CSRF token the page embeds."""

    principal: Principal
    session: SessionInfo


def current_login(
    request: Request, sessions: ConsoleSessionsDep, users: ConsoleUsersDep
) -> ConsoleLogin | None:
    """The logged-in admin of a page request (cookie only: pages change nothing); None if none."""
    info = sessions.get(request.cookies.get(SESSION_COOKIE))
    if info is None:
        return None
    try:
        row = users.get_row(str(info.user_id))
    except NotFoundError:  # the user was deleted: the session is worthless
        return None
    if row.role != "admin":
        return None
    return ConsoleLogin(Principal(row.id, row.name, row.role), info)


LoginDep = Annotated[ConsoleLogin | None, Depends(current_login)]
