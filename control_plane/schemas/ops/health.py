"""Bodies of ``/healthz`` and ``/status``, and the platform error envelope they fail with."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class OpsSchema(BaseModel):
    """Base of the operational bodies: exactly the keys the platform writes."""

    model_config = ConfigDict(extra="forbid")


class HealthStatus(OpsSchema):
    """``GET /healthz``: the control plane and its database answered."""

    status: str = Field(description="Always ``ok`` (a failing database is a 503 error).")


class RayNode(OpsSchema):
    """A Ray node as the status view shows it."""

    # The gateway's node table may carry more fields than these four.
    model_config = ConfigDict(extra="allow")

    node_id: str = Field(description="Ray node id.")
    address: str = Field(description="Node manager address.")
    alive: bool = Field(description="Whether Ray reports the node alive.")
    resources_total: dict[str, float] = Field(
        description="Total resources (CPU, GPU, memory, custom), without ``node:`` entries."
    )


class RayStatus(OpsSchema):
    """Whether Ray answered, and its nodes."""

    reachable: bool = Field(description="False when Ray (or the Serve controller) is down.")
    error: str | None = Field(description="Why Ray could not be asked; null when reachable.")
    nodes: list[RayNode] = Field(description="Nodes (empty when unreachable).")


class DeploymentStatus(OpsSchema):
    """One deployment of an application."""

    status: str = Field(description="Serve's deployment status, e.g. HEALTHY.")
    message: str = Field(description="Serve's message (empty when healthy).")
    replicas: dict[str, int] = Field(description="Replica count by replica state.")


class ApplicationStatus(OpsSchema):
    """A Serve application: desired (recorded) and/or running."""

    name: str = Field(description="Application name, e.g. ``p-v2-<model>``.")
    owner: str | None = Field(description="Surface that recorded it (null if not desired).")
    route_prefix: str | None = Field(description="Route prefix (null if not desired or none).")
    desired: bool = Field(description="Whether the platform's database wants it.")
    status: str = Field(description="Serve's status, or MISSING when desired but not running.")
    message: str = Field(description="Serve's message, or the last apply error.")
    deployments: dict[str, DeploymentStatus] = Field(description="Deployments by name.")


class ReconcilerReport(OpsSchema):
    """The reconciler's last pass."""

    # The report is the reconciler's dataclass as a dict; new fields appear here as they are.
    model_config = ConfigDict(extra="allow")

    started_at: str = Field(description="When the pass started (ISO-8601).")
    applied: list[str] = Field(description="Applications (re)applied.")
    deleted: list[str] = Field(description="Applications deleted.")
    failed: list[str] = Field(description="Applications that failed to apply.")
    error: str | None = Field(description="Why the pass could not run (Ray down); else null.")
    skipped: bool = Field(description="True when another replica holds the reconciler lease.")


class PlatformStatus(OpsSchema):
    """``GET /status``: Ray nodes, each application and the reconciler's last run."""

    ray: RayStatus = Field(description="Ray reachability and nodes.")
    applications: list[ApplicationStatus] = Field(description="Applications, by name.")
    reconciler: ReconcilerReport | None = Field(
        description="The last reconciler pass (null before the first one)."
    )


class PlatformErrorDetail(OpsSchema):
    """The inside of the platform error envelope."""

    code: str = Field(description="Stable snake_case code, e.g. ``route_not_found``.")
    message: str = Field(description="Human-readable message (generic for 5xx).")
    details: dict[str, Any] = Field(description="Structured details (validation errors...).")
    request_id: str = Field(description="The request id (also the x-request-id header).")


class PlatformError(OpsSchema):
    """``{"error": {code, message, details, request_id}}``: errors outside the API surfaces."""

    error: PlatformErrorDetail = Field(description="The error.")
