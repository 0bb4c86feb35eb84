"""Contracts of ``/api/models`` and ``/api/models/{id}/versions``: the versioned model store."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from control_plane.schemas.mlserve.common import BaseSchema, UtcDatetime


class ModelTritonRef(BaseSchema):
    """A triton where a model is loaded (list view)."""

    id: int = Field(description="Triton id.")
    ip: str = Field(description="Triton host.")
    host: str = Field(description="Triton host.")
    port: str = Field(description="Triton HTTP port.")
    version: int | None = Field(default=None, description="Pinned version, if any.")
    state: str = Field(default="READY", description="Recorded load state.")


class VersionRead(BaseSchema):
    """One version of a stored model."""

    version: int = Field(description="Version number (directory name).")
    state: str = Field(description="ready | uploading.")
    files: list[dict[str, Any]] = Field(
        description="``{name, size}`` of each file (or part so far)."
    )
    create_at: UtcDatetime | None = Field(description="When the version was created (UTC).")
    inference_count: int = Field(
        default=0, description="Inferences counted by the tritons' /stats."
    )
    execution_count: int = Field(
        default=0, description="Executions counted by the tritons' /stats."
    )
    last_inference: UtcDatetime | None = Field(default=None, description="Latest inference (UTC).")


class ModelRead(BaseSchema):
    """A stored model: union of the seed's planned and "Now" fields."""

    id: int = Field(description="Model id (the registered_models id).")
    name: str = Field(description="Unique model name.")
    description: str = Field(default="", description="Free text.")
    path: str = Field(description="Directory in the store.")
    versions: list[int] = Field(description="Ready versions, ascending.")
    latest_version: int | None = Field(description="Highest ready version.")
    tritons: list[ModelTritonRef] = Field(description="Tritons where the model is loaded.")
    state: str = Field(description="READY if ready on at least one triton, else UNAVAILABLE.")
    inference_count: int = Field(description="Sum of inference_count over the loaded tritons.")
    last_inference: UtcDatetime | None = Field(
        description="Latest inference over the loaded tritons."
    )
    create_at: UtcDatetime = Field(description="Creation time (UTC).")


class ModelTritonDetail(BaseSchema):
    """Per-triton view of a model in ``GET /api/models/{id}``."""

    id: int = Field(description="Triton id.")
    name: str = Field(description="Triton name.")
    ip: str = Field(description="Triton host.")
    host: str = Field(description="Triton host.")
    port: str = Field(description="Triton HTTP port.")
    version: int | None = Field(default=None, description="Pinned version, if any.")
    state: str = Field(description="READY or UNAVAILABLE (live /ready check).")
    metadata: dict[str, Any] | None = Field(
        description="The triton's ``GET /v2/models/{name}`` answer."
    )
    config: dict[str, Any] | None = Field(
        default=None, description="The triton's ``/config`` answer."
    )
    stats: list[dict[str, Any]] = Field(
        default_factory=list, description="The triton's ``/stats`` entries."
    )
    error: str | None = Field(default=None, description="Why the triton could not be asked.")


class ModelDetail(ModelRead):
    """``GET /api/models/{id}``: the model plus its store config and per-triton metadata."""

    config: dict[str, Any] = Field(description="The store's config.pbtxt as Triton JSON config.")
    version_details: list[VersionRead] = Field(
        description="Every version with its state and files."
    )
    servers: dict[str, dict[str, Any] | None] = Field(
        description="Seed 'Now' shape: ``{\"host:port\": metadata}`` for each loaded triton."
    )
    tritons: list[ModelTritonDetail] = Field(  # type: ignore[assignment]
        description="Per loaded triton: state, metadata, config and stats (or the error)."
    )


class ModelPatch(BaseSchema):
    """JSON body of ``PATCH /api/models/{id}``."""

    config: dict[str, Any] | None = Field(
        default=None, description="Partial Triton JSON config merged in."
    )
    name: str | None = Field(default=None, description="New name (only while not loaded anywhere).")
    description: str | None = Field(default=None, max_length=2000, description="Free text.")


class LoadRequest(BaseSchema):
    """Body of ``POST /api/models/{id}/load`` and ``/unload``."""

    triton_id: int | str = Field(
        description="Triton id or name; 0 / 'builtin' is the built-in server."
    )
    version: int | None = Field(
        default=None, ge=1, description="Serve only this version (load only)."
    )


class VersionUploaded(BaseSchema):
    """``201``/``202`` answer of ``POST /api/models/{id}/versions``."""

    version: int = Field(description="The version written to.")
    status: str = Field(description="ok (ready) or partial (chunked upload in progress).")
    # Absent (never null) when unset: the route drops None values, so the published schema
    # shows these as optional, not nullable.
    offset: int | SkipJsonSchema[None] = Field(
        default=None, description="Bytes received so far for the file (partial)."
    )
    file: str | SkipJsonSchema[None] = Field(
        default=None, description="The file a chunk was appended to (partial)."
    )


class ModelList(BaseSchema):
    """``GET /api/models``."""

    models: list[ModelRead] = Field(description="Every stored model, by id.")


class ModelCreated(ModelRead):
    """``201`` answer of ``POST /api/models``: the new model plus ``status``."""

    status: str = Field(default="ok", description="Always ``ok``.")


class ModelDetailEnvelope(ModelDetail):
    """``GET /api/models/{id}``: the seed's planned shape at the top level, the detail in ``data``.

    At the top level ``versions`` holds version objects and ``config`` the seed's "Now"
    ``{"host:port": metadata}``; ``data`` holds the detail with ``versions`` as numbers and
    ``config`` as the store's Triton config.
    """

    versions: list[VersionRead] = Field(  # type: ignore[assignment]
        description="Every version with its state, files and counts (same as version_details)."
    )
    config: dict[str, dict[str, Any] | None] = Field(
        description="Seed 'Now' shape: ``{\"host:port\": metadata}`` (same as servers)."
    )
    data: ModelDetail = Field(description="The model detail (reference shape).")


class VersionList(BaseSchema):
    """``GET /api/models/{id}/versions``."""

    versions: list[VersionRead] = Field(description="Ready versions and uploads, ascending.")
