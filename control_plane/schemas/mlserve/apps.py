"""Contracts of ``/api/apps``: gateway apps, their routes to models and their consumers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from control_plane.schemas.mlserve.common import BaseSchema, UtcDatetime

Protocol = Literal["http", "https"]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _port(value: object) -> object:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if value == "":
        return None
    return value


class ClientAppCreate(BaseSchema):
    """Body of ``POST /api/apps``; ``host``/``ip`` + ``port`` optionally pin one upstream."""

    name: str = Field(description="Unique app name (^[A-Za-z0-9_.-]{1,128}$).")
    host: str | None = Field(default=None, max_length=255, description="Upstream override host.")
    ip: str | None = Field(default=None, max_length=255, description="Alias of ``host``.")
    port: int | None = Field(default=None, ge=1, le=65535, description="Upstream override port.")
    gpus: int = Field(default=1, ge=0, description="Resource hint, stored as given.")
    retries: int = Field(
        default=5, ge=0, le=32767, description="Extra attempts on 502/503/504/connect errors."
    )

    _port = field_validator("port", mode="before")(_port)

    @model_validator(mode="after")
    def _aliases(self) -> ClientAppCreate:
        if self.host and self.ip and self.host != self.ip:
            raise ValueError(
                f"Got host={self.host!r} and ip={self.ip!r}; they are aliases and must agree"
            )
        self.host = self.host or self.ip or None
        if (self.host is None) != (self.port is None):
            raise ValueError("Got only one of host and port; an upstream override needs both")
        return self


class ClientAppUpdate(BaseSchema):
    """Body of ``PATCH /api/apps/{id}`` (send host "" to clear the override)."""

    name: str | None = Field(default=None, description="New unique name.")
    host: str | None = Field(default=None, max_length=255, description="Upstream override host.")
    ip: str | None = Field(default=None, max_length=255, description="Alias of ``host``.")
    port: int | None = Field(default=None, ge=1, le=65535, description="Upstream override port.")
    gpus: int | None = Field(default=None, ge=0, description="Resource hint.")
    retries: int | None = Field(default=None, ge=0, le=32767, description="Retry budget.")

    _port = field_validator("port", mode="before")(_port)


class RouteCreate(BaseSchema):
    """Body of ``POST /api/apps/{id}/routes/{model}`` (all optional; re-POST updates)."""

    paths: list[str] | None = Field(
        default=None, description="Path prefixes (default ['/<model>'])."
    )
    protocols: list[Protocol] | None = Field(default=None, description="Subset of http, https.")
    methods: list[Method] | None = Field(
        default=None, description="Allowed methods (default GET, POST)."
    )
    strip_path: bool = Field(default=True, description="Remove the matched path before proxying.")
    url: str | None = Field(default=None, description="Ignored: the public URL is computed.")

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = []
        for path in value:
            if not path.startswith("/") or "//" in path or ".." in path.split("/"):
                raise ValueError(
                    f"Got path {path!r}; paths start with '/' and have no empty or '..' segment"
                )
            out.append(path.rstrip("/") or "/")
        if not out:
            raise ValueError("Got an empty paths list")
        return out


class RouteRead(BaseSchema):
    """A route: a model exposed by an app."""

    model_name: str = Field(description="Model served by the route.")
    model_id: int = Field(description="Model id.")
    protocols: list[str] = Field(description="Allowed schemes.")
    methods: list[str] = Field(description="Allowed methods.")
    paths: list[str] = Field(description="Path prefixes under /apps/<app>.")
    strip_path: bool = Field(description="Whether the matched path is removed before proxying.")
    url: str = Field(description="Public invoke URL (read-only).")
    create_at: UtcDatetime = Field(description="Creation time (UTC).")


class ConsumerRead(BaseSchema):
    """A consumer of an app (a user)."""

    id: int = Field(description="User id.")
    name: str = Field(description="User name.")
    tags: list[str] = Field(description="User tags.")
    cteate_at: UtcDatetime = Field(description="Membership time (the seed's spelling).")
    create_at: UtcDatetime = Field(description="Membership time (UTC).")


class ClientAppRead(BaseSchema):
    """An app with its routes and consumers."""

    id: int = Field(description="App id.")
    name: str = Field(description="App name.")
    host: str | None = Field(description="Upstream override host.")
    ip: str | None = Field(description="Same as host.")
    port: str | None = Field(description="Upstream override port, as a string.")
    gpus: int = Field(description="Resource hint.")
    retries: int = Field(description="Retry budget.")
    url: str = Field(description="Public base URL of the app.")
    routes: list[RouteRead] = Field(description="Routes.")
    consumers: list[ConsumerRead] = Field(description="Consumers.")
    update_at: UtcDatetime = Field(description="Last change (UTC).")
    create_at: UtcDatetime = Field(description="Creation time (UTC).")


class ClientAppList(BaseSchema):
    """``GET /api/apps``."""

    apps: list[ClientAppRead] = Field(description="Every app with its routes and consumers.")


class ClientAppCreated(ClientAppRead):
    """``201`` answer of ``POST /api/apps``: the new app plus ``status``."""

    status: str = Field(default="ok", description="Always ``ok``.")


class ClientAppDetail(ClientAppRead):
    """``GET /api/apps/{id}``: the app's fields, and the same object under ``data``."""

    data: ClientAppRead = Field(description="The app (seed 'Response Now' envelope).")


class ClientAppUpdated(ClientAppRead):
    """``PATCH /api/apps/{id}`` answer: ``status`` plus the updated app."""

    status: str = Field(default="ok", description="Always ``ok``.")


class RouteList(BaseSchema):
    """``GET /api/apps/{id}/routes``."""

    routes: list[RouteRead] = Field(description="The app's routes.")


class ConsumerList(BaseSchema):
    """``GET /api/apps/{id}/consumers``."""

    consumers: list[ConsumerRead] = Field(description="Users allowed to consume the app.")
