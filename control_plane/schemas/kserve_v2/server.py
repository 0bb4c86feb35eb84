"""``GET /v2``: server metadata."""

from __future__ import annotations

from pydantic import Field

from control_plane.schemas.kserve_v2.common import V2Schema


class V2ServerMetadata(V2Schema):
    """Server metadata (KServe v2 ``$metadata_server_response``)."""

    name: str = Field(description="Server name.")
    version: str = Field(description="Server version.")
    extensions: list[str] = Field(
        description="Supported protocol extensions, e.g. ``model_repository``, ``statistics``."
    )
