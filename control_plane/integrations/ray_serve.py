"""RayServeGateway: the one place in the control plane that calls Ray Serve.

Ray is imported lazily inside methods so the control plane imports (and its unit tests run)
without a Ray runtime.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from control_plane.errors import UpstreamUnavailableError
from control_plane.integrations.serve_types import AppSpec, AppState, DeploymentState
from deployments.contracts.retire import (
    RETIRE_REGISTRY_NAME,
    RETIRE_REGISTRY_NAMESPACE,
    WATCH_PERIOD_S,
    WHOLE_APP,
)
from deployments.contracts.stats import STATS_STORE_NAME, STATS_STORE_NAMESPACE
from deployments.contracts.ts_metrics import HANDLER_METRICS_NAMESPACE, HANDLER_METRICS_STORE_NAME

logger = logging.getLogger(__name__)

_INSTALL_HINT = "Ray Serve is not installed: pip install 'ray[serve]'"
# How long a delete waits for Serve to remove an app whose replicas could not all confirm their
# retirement (no registry yet, or a replica that did not answer): then no replica is left.
_GONE_TIMEOUT_S = 60.0


def _serve() -> Any:
    try:
        from ray import serve
    except ImportError as exc:  # pragma: no cover - exercised only without ray installed
        raise UpstreamUnavailableError(_INSTALL_HINT) from exc
    return serve


def _import_builder(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _plain(resources: dict[str, Any]) -> dict[str, float]:
    """Resources without Ray's per-node ``node:<ip>`` markers."""
    return {k: float(v) for k, v in resources.items() if not k.startswith("node:")}


def _available_per_node() -> dict[str, dict[str, Any]]:
    """Free resources by node id from the GCS (empty when this Ray build does not offer it)."""
    try:
        from ray._private.state import available_resources_per_node

        return dict(available_resources_per_node())  # type: ignore[no-untyped-call]
    except Exception:  # a private API: the status view then shows totals only
        logger.debug("free resources per node unavailable", exc_info=True)
        return {}


class _HandleLoop:
    """One private event loop thread for DeploymentHandle calls made from synchronous code.

    With ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` (the default of ``make run``) a handle only works
    inside a running event loop; services run in the threadpool, so every handle call goes
    through this loop, which works in both loop modes.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="serve-handle-loop", daemon=True
                ).start()
                self._loop = loop
            return self._loop

    def run(self, make: Callable[[], Coroutine[Any, Any, Any]], timeout_s: float) -> Any:
        """Run ``make()`` on the loop and wait for its result (never call from that loop)."""
        future = asyncio.run_coroutine_threadsafe(make(), self._running_loop())
        try:
            return future.result(timeout=timeout_s)
        except BaseException:
            future.cancel()
            raise


class RayServeGateway:
    """Deploys applications with the Serve Python API from inside the control-plane replica."""

    def __init__(self) -> None:
        self._handles = _HandleLoop()

    def apply(self, spec: AppSpec) -> None:
        """Build the application from its builder and run it without blocking.

        Raises:
            UpstreamUnavailableError: Serve refused the application.
        """
        serve = _serve()
        try:
            app = _import_builder(spec.builder)(spec.args_json())
            self._restore(spec.name)  # replicas of this new app serve (old ones keep refusing)
            serve._run(app, name=spec.name, route_prefix=spec.route_prefix, _blocking=False)
        except Exception as exc:
            raise UpstreamUnavailableError(
                f"Ray Serve refused application {spec.name}: {exc}"
            ) from exc

    def delete(self, name: str) -> None:
        """Delete an application; returns once no replica of it answers a request any more.

        Every replica is first told to refuse the app (it answers the surface's 404 from then
        on, while Serve drains and removes it). When some replica could not confirm that, the
        call waits until Serve has removed the app instead. A missing app is not an error.
        """
        serve = _serve()
        confirmed = self.retire(name, WHOLE_APP)
        try:
            serve.delete(name, _blocking=False)
        except Exception as exc:
            logger.warning("serve.delete(%s) failed: %s", name, exc)
            return
        if not confirmed:
            self._wait_removed(name, _GONE_TIMEOUT_S)

    def retire(self, name: str, scope: str = WHOLE_APP) -> bool:
        """Make every replica of ``name`` refuse ``scope`` (a version; "" = all) and wait.

        Returns:
            True when every live replica confirmed (or the app has none registered).
        """
        registry = self._registry()
        if registry is None:
            return False
        import ray

        timeout_s = 2 * WATCH_PERIOD_S + 1
        try:
            confirmed, targeted = ray.get(
                registry.retire.remote(name, scope, timeout_s), timeout=timeout_s + 10
            )
        except Exception as exc:
            logger.warning("retiring %s (%r) failed: %s", name, scope, exc)
            return False
        if confirmed < targeted:
            logger.warning("retiring %s: %d of %d replicas confirmed", name, confirmed, targeted)
        return bool(confirmed >= targeted)

    def _restore(self, name: str) -> None:
        """Lift the whole-app tombstone before an app of that name is applied again."""
        registry = self._registry()
        if registry is None:
            return
        import ray

        try:
            ray.get(registry.restore.remote(name), timeout=10)
        except Exception as exc:
            logger.warning("restoring %s in the retirement registry failed: %s", name, exc)

    @staticmethod
    def _registry() -> Any:
        """The retirement registry actor; None before any replica has created it."""
        import ray

        try:
            return ray.get_actor(RETIRE_REGISTRY_NAME, namespace=RETIRE_REGISTRY_NAMESPACE)
        except ValueError:
            return None

    def _wait_removed(self, name: str, timeout_s: float) -> None:
        """Poll ``serve.status()`` until ``name`` is gone (bounded)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if name not in self.status():
                    return
            except UpstreamUnavailableError:
                pass
            time.sleep(0.2)
        logger.warning("application %s still listed %gs after its delete", name, timeout_s)

    def status(self) -> dict[str, AppState]:
        """Every application's state from ``serve.status()``."""
        serve = _serve()
        try:
            overview = serve.status()
        except Exception as exc:
            raise UpstreamUnavailableError(f"Ray Serve status unavailable: {exc}") from exc
        result: dict[str, AppState] = {}
        for name, app in overview.applications.items():
            deployments = {
                dname: DeploymentState(
                    status=str(getattr(d.status, "value", d.status)),
                    message=d.message or "",
                    replica_states={
                        str(getattr(k, "value", k)): int(v) for k, v in d.replica_states.items()
                    },
                )
                for dname, d in app.deployments.items()
            }
            result[name] = AppState(
                name=name,
                status=str(getattr(app.status, "value", app.status)),
                message=app.message or "",
                deployments=deployments,
            )
        return result

    def cluster_resources(self) -> dict[str, float]:
        """Total cluster resources from ``ray.cluster_resources()``."""
        import ray

        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
        return {k: float(v) for k, v in resources.items()}

    def cluster_nodes(self) -> list[dict[str, Any]]:
        """Ray's node table, trimmed to what the status view shows, with free resources."""
        import ray

        available = _available_per_node()
        return [
            {
                "node_id": node["NodeID"],
                "address": node.get("NodeManagerAddress", ""),
                "alive": bool(node.get("Alive")),
                "resources_total": _plain(node.get("Resources", {})),
                **(
                    {"resources_available": _plain(available[node["NodeID"]])}
                    if node["NodeID"] in available
                    else {}
                ),
            }
            for node in ray.nodes()  # type: ignore[no-untyped-call]
        ]

    def call(self, app_name: str, method: str, *args: Any) -> Any:
        """Call ``method`` on the app's ingress through a DeploymentHandle and wait (any thread)."""
        serve = _serve()

        async def _call() -> Any:
            handle = serve.get_app_handle(app_name)
            return await getattr(handle, method).remote(*args)

        try:
            return self._handles.run(_call, timeout_s=30)
        except Exception as exc:
            raise UpstreamUnavailableError(f"application {app_name} did not answer: {exc}") from exc

    def inference_stats(self) -> dict[str, dict[str, Any]]:
        """Totals from the cluster's statistics actor (empty before the first model loads)."""
        import ray

        try:
            store = ray.get_actor(STATS_STORE_NAME, namespace=STATS_STORE_NAMESPACE)
        except ValueError:  # no model replica has started the actor yet
            return {}
        try:
            result: Any = ray.get(store.get.remote(None), timeout=10)
        except Exception as exc:
            raise UpstreamUnavailableError(f"inference statistics unavailable: {exc}") from exc
        return dict(result)

    def handler_metrics(self) -> list[dict[str, Any]]:
        """TorchServe handler metrics summed by their actor (empty before the first record)."""
        import ray

        try:
            store = ray.get_actor(HANDLER_METRICS_STORE_NAME, namespace=HANDLER_METRICS_NAMESPACE)
        except ValueError:  # no TorchServe replica has recorded a metric yet
            return []
        try:
            result: Any = ray.get(store.get.remote(), timeout=10)
        except Exception as exc:
            raise UpstreamUnavailableError(f"handler metrics unavailable: {exc}") from exc
        return list(result)
