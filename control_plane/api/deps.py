"""FastAPI dependencies: typed aliases so route signatures read like prose."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from control_plane.integrations.serve_types import ServeGateway
from control_plane.settings import Settings


async def get_settings_dep(request: Request) -> Settings:
    """The settings the app was built with.

    Dependencies that do no blocking I/O are ``async``: a sync one costs a worker-thread hop
    per request (TorchServe's ``GET /models`` made eight before), and on a loaded machine a hop
    costs more than the work it carries.
    """
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session per request; services commit, this only rolls back and closes.

    ``async``: a sync generator dependency costs two worker-thread hops per request (enter and
    exit each run in the threadpool), and on a loaded machine each hop costs more than the query
    (docs/benchmarks.md, "Control plane"). Making a session does no I/O (it connects on first
    use, in the route's thread); closing it hands the connection back to the pool, a local
    rollback on SQLite and one loopback round trip on PostgreSQL, cheaper than a hop.
    """
    session: Session = request.app.state.session_factory()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def get_gateway(request: Request) -> ServeGateway:
    """The Serve gateway created in the lifespan."""
    gateway: ServeGateway = request.app.state.gateway
    return gateway


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_session)]
GatewayDep = Annotated[ServeGateway, Depends(get_gateway)]
