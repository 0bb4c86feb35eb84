"""``/api/users``: users (never with passwords), API keys, app memberships."""

from __future__ import annotations

from fastapi import Request

from control_plane.api.gated_router import GatedRouter
from control_plane.api.mlserve.deps import (
    AdminDep,
    AppServiceDep,
    UserServiceDep,
    lower_headers,
)
from control_plane.api.mlserve.envelopes import with_data
from control_plane.schemas.mlserve.common import StatusOk
from control_plane.schemas.mlserve.users import (
    KeyRotated,
    UserAppList,
    UserCreate,
    UserCreated,
    UserDetail,
    UserList,
    UserUpdate,
)

router = GatedRouter(tags=["mlserve: users"])


@router.get("/users", operation_id="apiUserList")
def list_users(_admin: AdminDep, users: UserServiceDep) -> UserList:
    """List users."""
    return UserList(users=users.list())


@router.post("/users", status_code=201, operation_id="apiUserCreate")
def create_user(body: UserCreate, _admin: AdminDep, users: UserServiceDep) -> UserCreated:
    """Create a user; the API key is returned this once."""
    user_id, key = users.create(body)
    return UserCreated(id=user_id, key=key)


@router.get("/users/{ident}", operation_id="apiUserGet")
def get_user(ident: str, request: Request, users: UserServiceDep) -> UserDetail:
    """One user (admins: anyone; users: themselves)."""
    users.require_self_or_admin(lower_headers(request), ident)
    return with_data(users.get(ident), UserDetail)


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
    ident: str, request: Request, users: UserServiceDep, apps: AppServiceDep
) -> UserAppList:
    """Apps the user may consume (admins: anyone; users: themselves)."""
    users.require_self_or_admin(lower_headers(request), ident)
    return UserAppList(apps=apps.apps_of_user(ident))


@router.post("/users/{ident}/apps/{app}/auth", operation_id="apiUserAppAuth")
def auth_user_app(ident: str, app: str, _admin: AdminDep, apps: AppServiceDep) -> StatusOk:
    """Make the user a consumer of the app."""
    apps.authorize(app, ident)
    return StatusOk()


@router.post("/users/{ident}/apps/{app}/unauth", operation_id="apiUserAppUnauth")
def unauth_user_app(ident: str, app: str, _admin: AdminDep, apps: AppServiceDep) -> StatusOk:
    """Remove the user's membership of the app."""
    apps.unauthorize(app, ident)
    return StatusOk()
