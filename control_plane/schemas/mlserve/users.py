"""Contracts of ``/api/users``: users are admin-API callers and gateway consumers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from control_plane.schemas.mlserve.common import BaseSchema, UtcDatetime

Role = Literal["admin", "user"]


def _tags(value: object) -> object:
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    return value


class UserCreate(BaseSchema):
    """Body of ``POST /api/users``."""

    name: str = Field(description="Unique user name (^[A-Za-z0-9_.-]{1,128}$).")
    password: str = Field(
        min_length=1, max_length=1024, description="Password (hashed with argon2)."
    )
    role: Role = Field(default="user", description="``admin`` or ``user``.")
    tags: list[str] = Field(
        default_factory=list, description="Free tags (a comma string is split)."
    )

    _split_tags = field_validator("tags", mode="before")(_tags)


class UserUpdate(BaseSchema):
    """Body of ``PATCH /api/users/{id}``; ``rotate_key`` issues a new API key."""

    name: str | None = Field(default=None, description="New unique name.")
    password: str | None = Field(
        default=None, min_length=1, max_length=1024, description="New password."
    )
    role: Role | None = Field(default=None, description="``admin`` or ``user``.")
    tags: list[str] | None = Field(default=None, description="Replacement tags.")
    rotate_key: bool = Field(default=False, description="Issue a new API key (returned once).")

    _split_tags = field_validator("tags", mode="before")(_tags)


class UserRead(BaseSchema):
    """A user as every endpoint shows it: never a password, hash or full key."""

    id: int = Field(description="User id.")
    name: str = Field(description="User name.")
    role: str = Field(description="``admin`` or ``user``.")
    tags: list[str] = Field(description="Tags.")
    apps: list[str] = Field(description="Names of the apps this user may consume.")
    key_prefix: str = Field(description="First characters of the API key, to tell keys apart.")
    create_at: UtcDatetime = Field(description="Creation time (UTC).")


class UserCreated(BaseSchema):
    """``201`` answer of ``POST /api/users``: the API key is shown this once."""

    id: int = Field(description="New user id.")
    key: str = Field(description="The user's API key (send as ``apikey`` header).")
    status: str = Field(default="ok", description="Always ``ok``.")


class KeyRotated(BaseSchema):
    """``PATCH /api/users/{id}`` answer; ``key`` is set when a new key was issued."""

    status: str = Field(default="ok", description="Always ``ok``.")
    key: str | None = Field(
        default=None, description="The new API key when rotated, null otherwise."
    )


class UserAppRead(BaseSchema):
    """One app a user may consume (``GET /api/users/{id}/apps``)."""

    id: int = Field(description="App id.")
    name: str = Field(description="App name.")
    routes: list[str] = Field(description="Public invoke URLs of the app's routes.")


class UserList(BaseSchema):
    """``GET /api/users``."""

    users: list[UserRead] = Field(description="Every user, by id.")


class UserDetail(UserRead):
    """``GET /api/users/{id}``: the user's fields, and the same object under ``data``."""

    data: UserRead = Field(description="The user (seed 'Response Now' envelope).")


class UserAppList(BaseSchema):
    """``GET /api/users/{id}/apps``."""

    apps: list[UserAppRead] = Field(description="Apps the user may consume.")
