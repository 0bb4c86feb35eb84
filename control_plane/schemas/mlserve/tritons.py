"""Contracts of ``/api/tritons``: registered v2 inference servers (and the built-in one)."""

from __future__ import annotations

import ipaddress
import re

from pydantic import Field, field_validator, model_validator

from control_plane.schemas.mlserve.common import BaseSchema, UtcDatetime

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def _host(value: object) -> object:
    """A DNS name or an IP literal (IPv6 optionally bracketed); anything else is refused."""
    if not isinstance(value, str) or not value:
        return value
    literal = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(literal)
        return value
    except ValueError:
        pass
    if len(value) <= 253 and all(_LABEL.match(label) for label in value.rstrip(".").split(".")):
        return value
    raise ValueError(f"Got host {value!r}; a host name or an IP address is required")


def _port(value: object) -> object:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


class TritonCreate(BaseSchema):
    """Body of ``POST /api/tritons``: ``host`` or its alias ``ip`` is required."""

    name: str | None = Field(
        default=None, max_length=200, description="Display name (default host:port)."
    )
    host: str | None = Field(default=None, max_length=255, description="Host name or IP address.")
    ip: str | None = Field(
        default=None, max_length=255, description="Alias of ``host`` (seed 'Now')."
    )
    port: int = Field(ge=1, le=65535, description="HTTP port of the v2 endpoint (int or string).")
    gpus: int = Field(default=0, ge=0, description="GPU count of the server (informational).")
    path: str | None = Field(
        default=None,
        max_length=1000,
        description="The triton's model repository, if the platform can write it.",
    )

    _port = field_validator("port", mode="before")(_port)
    _host = field_validator("host", "ip", mode="after")(_host)

    @model_validator(mode="after")
    def _host_or_ip(self) -> TritonCreate:
        if self.host and self.ip and self.host != self.ip:
            raise ValueError(
                f"Got host={self.host!r} and ip={self.ip!r}; they are aliases and must agree"
            )
        self.host = self.host or self.ip
        if not self.host:
            raise ValueError("Got no host; 'host' (or 'ip') is required")
        return self


class TritonUpdate(BaseSchema):
    """Body of ``PATCH /api/tritons/{id}``."""

    name: str | None = Field(default=None, max_length=200, description="Display name.")
    host: str | None = Field(default=None, max_length=255, description="Host name or IP address.")
    ip: str | None = Field(default=None, max_length=255, description="Alias of ``host``.")
    port: int | None = Field(default=None, ge=1, le=65535, description="HTTP port.")
    gpus: int | None = Field(default=None, ge=0, description="GPU count.")
    path: str | None = Field(default=None, max_length=1000, description="Model repository path.")

    _port = field_validator("port", mode="before")(_port)
    _host = field_validator("host", "ip", mode="after")(_host)

    @model_validator(mode="after")
    def _host_or_ip(self) -> TritonUpdate:
        if self.host and self.ip and self.host != self.ip:
            raise ValueError(
                f"Got host={self.host!r} and ip={self.ip!r}; they are aliases and must agree"
            )
        self.host = self.host or self.ip
        return self


class TritonRead(BaseSchema):
    """A triton with the union of the seed's planned and "Now" fields."""

    id: int = Field(description="Triton id (0 is the built-in server).")
    name: str = Field(description="Display name.")
    builtin: bool = Field(description="True for the platform's own server.")
    host: str = Field(description="Host.")
    ip: str = Field(description="Same as host.")
    port: str = Field(description="HTTP port, as a string (seed type).")
    gpus: int = Field(description="GPU count.")
    path: str | None = Field(description="Model repository path, if known.")
    state: str = Field(description="ready | live | offline, from a live probe.")
    models: list[str] = Field(description="Models loaded there (load records).")
    create_at: UtcDatetime = Field(description="Registration time (UTC).")


class TritonList(BaseSchema):
    """``GET /api/tritons``."""

    tritons: list[TritonRead] = Field(description="Every triton, the built-in one (id 0) first.")


class TritonCreated(TritonRead):
    """``201`` answer of ``POST /api/tritons``: the new triton plus ``status`` (not probed)."""

    status: str = Field(default="ok", description="Always ``ok``.")


class TritonDetail(TritonRead):
    """``GET /api/tritons/{id}``: the triton's fields, and the same object under ``data``."""

    data: TritonRead = Field(description="The triton (seed 'Response Now' envelope).")


class TritonUpdated(TritonRead):
    """``PATCH /api/tritons/{id}`` answer: ``status`` plus the updated triton (not probed)."""

    status: str = Field(default="ok", description="Always ``ok``.")
