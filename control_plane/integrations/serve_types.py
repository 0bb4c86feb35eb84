"""Ray-free value types exchanged with the Serve gateway."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from deployments.contracts.app_args import AppArgs


@dataclass(frozen=True)
class AppSpec:
    """One Serve application the control plane wants running.

    Attributes:
        name: Serve application name (unique in the cluster).
        route_prefix: HTTP route prefix the Serve ingress routes straight to the app.
        args: the builder's typed arguments; their class names the builder.
    """

    name: str
    route_prefix: str | None
    args: AppArgs

    @property
    def builder(self) -> str:
        """Import path of the typed application builder, ``module:function``."""
        return self.args.builder

    def args_json(self) -> dict[str, Any]:
        """The arguments as recorded and sent to Serve."""
        return self.args.to_json()


@dataclass
class DeploymentState:
    """Status of one deployment inside an application."""

    status: str
    message: str = ""
    replica_states: dict[str, int] = field(default_factory=dict)


@dataclass
class AppState:
    """Status of one Serve application as Ray reports it."""

    name: str
    status: str
    message: str = ""
    deployments: dict[str, DeploymentState] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        """True when Serve reports the application RUNNING."""
        return self.status == "RUNNING"


class ServeGateway(Protocol):
    """Every call the control plane makes into Ray Serve."""

    def apply(self, spec: AppSpec) -> None:
        """Deploy or update an application without waiting for it to be ready."""

    def delete(self, name: str) -> None:
        """Remove an application; returns once none of its replicas answers requests."""

    def retire(self, name: str, scope: str = "") -> bool:
        """Make the app's replicas refuse ``scope`` (a version; "" = all); True if confirmed."""

    def status(self) -> dict[str, AppState]:
        """Every application's state, by name."""

    def cluster_resources(self) -> dict[str, float]:
        """Total resources of the Ray cluster (``CPU``, ``GPU``, ``memory``...)."""

    def call(self, app_name: str, method: str, *args: Any) -> Any:
        """Call a method on an application's ingress deployment and return the result."""

    def cluster_nodes(self) -> list[dict[str, Any]]:
        """Alive Ray nodes: ``{node_id, address, alive, resources_total}``."""

    def inference_stats(self) -> dict[str, dict[str, Any]]:
        """Cluster-wide inference counters keyed ``"<model>/<version>"`` (contracts.stats)."""

    def handler_metrics(self) -> list[dict[str, Any]]:
        """Summed TorchServe handler-metric series (``contracts.ts_metrics`` records)."""
