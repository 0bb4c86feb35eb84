"""Test doubles for boundaries that are also tested for real (tests/serve, tests/compat)."""

from __future__ import annotations

from typing import Any

from control_plane.integrations.serve_types import AppSpec, AppState, DeploymentState
from deployments.contracts.app_args import JobRunnerArgs, args_for_builder


def placeholder_spec(name: str, route_prefix: str | None = None) -> AppSpec:
    """An application spec with valid (runner) arguments, for tests of the app bookkeeping."""
    args = JobRunnerArgs(url="http://127.0.0.1:1", workflow_id=1, log_dir="/tmp/placeholder")
    return AppSpec(name, route_prefix, args)


class FakeServeGateway:
    """Records applications in memory; every applied app is reported RUNNING."""

    def __init__(self, resources: dict[str, float] | None = None) -> None:
        self.apps: dict[str, AppSpec] = {}
        self.deleted: list[str] = []
        self.resources = resources or {"CPU": 2.0}
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []
        self.call_results: dict[tuple[str, str], Any] = {}
        self.fail_apply: set[str] = set()
        self.stats: dict[str, dict[str, Any]] = {}
        self.retired: list[tuple[str, str]] = []
        self.handler_records: list[dict[str, Any]] = []

    def apply(self, spec: AppSpec) -> None:
        if spec.name in self.fail_apply:
            from control_plane.errors import UpstreamUnavailableError

            raise UpstreamUnavailableError(f"Ray Serve refused application {spec.name}")
        # What the real builder will receive must validate against the same typed model.
        args_for_builder(spec.builder, spec.args_json())
        self.apps[spec.name] = spec

    def delete(self, name: str) -> None:
        self.apps.pop(name, None)
        self.deleted.append(name)

    def retire(self, name: str, scope: str = "") -> bool:
        self.retired.append((name, scope))
        return True

    def status(self) -> dict[str, AppState]:
        return {
            name: AppState(
                name=name, status="RUNNING", deployments={"d": DeploymentState("HEALTHY")}
            )
            for name in self.apps
        }

    def cluster_resources(self) -> dict[str, float]:
        return dict(self.resources)

    def call(self, app_name: str, method: str, *args: Any) -> Any:
        self.calls.append((app_name, method, args))
        return self.call_results.get((app_name, method))

    def inference_stats(self) -> dict[str, dict[str, Any]]:
        return dict(self.stats)

    def handler_metrics(self) -> list[dict[str, Any]]:
        return list(self.handler_records)

    def cluster_nodes(self) -> list[dict[str, Any]]:
        return [{"node_id": "fake-node", "address": "127.0.0.1", "alive": True,
                 "resources_total": dict(self.resources)}]
