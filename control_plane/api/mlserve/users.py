"""``/api/users``: users (never with passwords), API keys, app memberships."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from control_plane.api.mlserve.deps import (
    AdminDep,
    SessionDep,
    SettingsDep,
    UserServiceDep,
    lower_headers,
)
from control_plane.api.mlserve.envelopes import with_data
from control_plane.schemas.mlserve.common import StatusOk
from control_plane.schemas.mlserve.users import KeyRotated, UserCreate, UserCreated, UserUpdate
from control_plane.services.mlserve.apps import ClientAppService

router = APIRouter(tags=["mlserve: users"])


@router.get("/users", operation_id="apiUserList")
def list_users(_admin: AdminDep, users: UserServiceDep) -> dict[str, Any]:
    """List users."""
    return {"users": [u.model_dump(mode="json") for u in users.list()]}


@router.post("/users", status_code=201, operation_id="apiUserCreate")
def create_user(body: UserCreate, _admin: AdminDep, users: UserServiceDep) -> UserCreated:
    """Create a user; the API key is returned this once."""
    user_id, key = users.create(body)
    return UserCreated(id=user_id, key=key)


@router.get("/users/{ident}", operation_id="apiUserGet")
def get_user(ident: str, request: Request, users: UserServiceDep) -> dict[str, Any]:
    """One user (admins: anyone; users: themselves)."""
    users.require_self_or_admin(lower_headers(request), ident)
    return with_data(users.get(ident).model_dump(mode="json"))


@router.patch("/users/{ident}", operation_id="apiUserUpdate")
def update_user(
    ident: str, body: UserUpdate, _admin: AdminDep, users: UserServiceDep
) -> KeyRotated:
    """Change name, password, role or tags; ``rotate_key`` issues a new key."""
    return KeyRotated(key=users.update(ident, body))


@router.delete("/users/{ident}", operation_id="apiUserDelete")
def delete_user(ident: str, _admin: AdminDep, users: UserServiceDep) -> StatusOk:
    """Delete a user and its memberships."""
    users.delete(ident)
    return StatusOk()


@router.get("/users/{ident}/apps", operation_id="apiUserAppList")
def list_user_apps(
    ident: str, request: Request, users: UserServiceDep, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Apps the user may consume (admins: anyone; users: themselves)."""
    users.require_self_or_admin(lower_headers(request), ident)
    apps = ClientAppService(session, settings).apps_of_user(ident)
    return {"apps": [a.model_dump(mode="json") for a in apps]}


@router.post("/users/{ident}/apps/{app}/auth", operation_id="apiUserAppAuth")
def auth_user_app(
    ident: str, app: str, _admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> StatusOk:
    """Make the user a consumer of the app."""
    ClientAppService(session, settings).authorize(app, ident)
    return StatusOk()


@router.post("/users/{ident}/apps/{app}/unauth", operation_id="apiUserAppUnauth")
def unauth_user_app(
    ident: str, app: str, _admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> StatusOk:
    """Remove the user's membership of the app."""
    ClientAppService(session, settings).unauthorize(app, ident)
    return StatusOk()
