"""Repository extension bodies: ``/v2/repository/index``, ``.../load``, ``.../unload``."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from control_plane.schemas.kserve_v2.common import V2Schema


class V2RepositoryIndexEntry(V2Schema):
    """One entry of the repository index (one per model version; ``{name}`` if never loaded).

    Keys are absent, never null, when they do not apply: the route serialises only the keys
    the service set.
    """

    name: str = Field(description="Model name (its repository directory).")
    state: str | SkipJsonSchema[None] = Field(
        default=None,
        description="READY, LOADING or UNAVAILABLE; absent for a model never loaded.",
    )
    reason: str | SkipJsonSchema[None] = Field(
        default=None,
        description="Why the version is in that state (``unloaded``, a deploy error; empty"
        " when READY); absent for a model never loaded.",
    )
    version: str | SkipJsonSchema[None] = Field(
        default=None, description="Version, as a string; absent when no version is known."
    )


class V2RepositoryIndexRequest(V2Schema):
    """Body of ``POST /v2/repository/index`` (may be empty; tritonclient sends none)."""

    ready: bool = Field(default=False, description="List only READY models.")


class V2LoadParameters(V2Schema):
    """``parameters`` of a load request; ``file:<version>/<path>`` keys carry base64 files."""

    model_config = ConfigDict(extra="allow")

    config: str | dict[str, Any] | None = Field(
        default=None,
        description="Triton JSON ModelConfig (a string, or an object) overriding config.pbtxt.",
    )


class V2LoadRequest(V2Schema):
    """Body of ``POST /v2/repository/models/{m}/load`` (may be empty)."""

    parameters: V2LoadParameters | None = Field(
        default=None, description="``config`` and ``file:`` overrides."
    )


class V2UnloadParameters(V2Schema):
    """``parameters`` of an unload request."""

    model_config = ConfigDict(extra="allow")

    unload_dependents: bool = Field(
        default=False,
        description="Unloading an ensemble also unloads the steps its load brought up.",
    )


class V2UnloadRequest(V2Schema):
    """Body of ``POST /v2/repository/models/{m}/unload`` (may be empty)."""

    parameters: V2UnloadParameters | None = Field(default=None, description="Unload options.")
