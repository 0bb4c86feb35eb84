"""Retirement: the replicas of a deleted application refuse it before Serve removes them.

Serve deletes an application asynchronously, and its ingress keeps routing to draining replicas
(the HAProxy ingress for ``RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S``, proxies until their
route table updates). A DeploymentHandle call reaches one replica, so the news travels by a
shared tombstone instead: the registry actor keeps, per application, every replica watching it
(each holds one long-poll call open from a thread) and the scopes it must refuse. The control
plane retires a scope (the whole app, or one version) and waits until every live watcher has
confirmed; only then does the delete answer. A replica reads its tombstones from an attribute
(no remote call on the request path) and answers with the surface's 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import ray
from starlette.responses import JSONResponse, Response

from deployments.contracts.errors import ModelVersionNotServed, TorchServeReplicaError
from deployments.contracts.retire import (
    RETIRE_REGISTRY_NAME,
    RETIRE_REGISTRY_NAMESPACE,
    WATCH_PERIOD_S,
    WHOLE_APP,
)

logger = logging.getLogger(__name__)


@dataclass
class _Watcher:
    """One replica's tombstones and how far it has confirmed them."""

    scopes: set[str]
    generation: int = 0
    acked: int = -1
    seen: float = field(default_factory=time.monotonic)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class TombstoneBook:
    """Tombstones per application and the replicas watching them (the registry actor's state)."""

    def __init__(self) -> None:
        self.watchers: dict[str, dict[str, _Watcher]] = {}
        self.gone: set[str] = set()  # wholly retired apps: replicas that start late refuse too

    async def watch(
        self, app: str, replica: str, acked: int, wait_s: float = WATCH_PERIOD_S
    ) -> tuple[int, list[str]]:
        """Confirm ``acked`` and wait (at most ``wait_s``) for newer tombstones of ``replica``."""
        watcher = self.watchers.setdefault(app, {}).get(replica)
        if watcher is None:
            watcher = _Watcher(scopes={WHOLE_APP} if app in self.gone else set())
            self.watchers[app][replica] = watcher
        watcher.acked = max(watcher.acked, acked)
        watcher.seen = time.monotonic()
        if watcher.generation <= acked:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watcher.changed.wait(), wait_s)
        watcher.seen = time.monotonic()
        return watcher.generation, sorted(watcher.scopes)

    async def retire(self, app: str, scope: str, timeout_s: float) -> tuple[int, int]:
        """Make every replica of ``app`` refuse ``scope``; wait for their confirmations.

        Returns:
            ``(confirmed, targeted)``: replicas that confirmed, replicas told (live ones).
        """
        if scope == WHOLE_APP:
            self.gone.add(app)
        self._prune()
        targets = []
        for watcher in self.watchers.get(app, {}).values():
            watcher.scopes.add(scope)
            watcher.generation += 1
            event, watcher.changed = watcher.changed, asyncio.Event()
            event.set()
            targets.append((watcher, watcher.generation))
        deadline = time.monotonic() + timeout_s
        while True:
            stale = time.monotonic() - 2 * WATCH_PERIOD_S
            pending = [w for w, gen in targets if w.acked < gen and w.seen > stale]
            if not pending or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        confirmed = sum(1 for w, gen in targets if w.acked >= gen)
        return confirmed, len(targets)

    def restore(self, app: str) -> None:
        """A new application of this name is applied: replicas starting from now serve it.

        Replicas of the old application keep their tombstones (they never forget one).
        """
        self.gone.discard(app)

    def _prune(self) -> None:
        """Forget watchers silent for longer than two watch periods (dead replicas)."""
        stale = time.monotonic() - 2 * WATCH_PERIOD_S
        for app in list(self.watchers):
            alive = {r: w for r, w in self.watchers[app].items() if w.seen > stale}
            if alive:
                self.watchers[app] = alive
            else:
                del self.watchers[app]


RetireRegistry = ray.remote(num_cpus=0)(TombstoneBook)  # an async actor (its methods are)


def get_registry() -> Any:
    """The cluster's retirement registry, created on first use (detached: it outlives apps)."""
    return RetireRegistry.options(
        name=RETIRE_REGISTRY_NAME,
        namespace=RETIRE_REGISTRY_NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
    ).remote()


def _replica_identity() -> tuple[str, str] | None:
    """``(app name, replica id)`` inside a Serve replica; None elsewhere (plain-class tests)."""
    if not ray.is_initialized():
        return None
    from ray import serve

    try:
        context = serve.get_replica_context()
    except Exception:  # not inside a replica
        return None
    return context.app_name, f"{context.deployment}#{context.replica_id.unique_id}"


class Retirement:
    """This replica's tombstones. ``scopes`` is read per request; a thread keeps it current.

    The first registration happens in the constructor, before the replica takes traffic, so a
    replica that starts while its application is being deleted refuses from its first request.
    """

    def __init__(self) -> None:
        self.scopes: frozenset[str] = frozenset()
        identity = _replica_identity()
        if identity is None:
            return
        app, replica = identity
        acked = self._poll(app, replica, -1, wait_s=0.0, timeout_s=30.0)
        threading.Thread(
            target=self._watch_forever, args=(app, replica, acked), daemon=True,
            name="retire-watch",
        ).start()

    def refuses(self, scope: str = WHOLE_APP) -> bool:
        """True when the whole application, or ``scope`` (a version), has been retired."""
        return bool(self.scopes) and (WHOLE_APP in self.scopes or scope in self.scopes)

    def _poll(self, app: str, replica: str, acked: int, wait_s: float, timeout_s: float) -> int:
        """One watch call; returns the generation now confirmed (``acked`` on failure)."""
        try:
            generation, scopes = ray.get(
                get_registry().watch.remote(app, replica, acked, wait_s), timeout=timeout_s
            )
        except Exception as exc:  # registry restarting or the node busy: try again
            logger.warning("retirement registry unavailable: %r", exc)
            time.sleep(1.0)
            return -1  # register again: the registry may have lost its state
        self.scopes = self.scopes | frozenset(scopes)  # tombstones are never forgotten
        return int(generation)

    def _watch_forever(self, app: str, replica: str, acked: int) -> None:
        while True:
            acked = self._poll(app, replica, acked, WATCH_PERIOD_S, WATCH_PERIOD_S + 30.0)


def _ts_not_found(message: str, ts_type: str) -> TorchServeReplicaError:
    """A TorchServe 404 body (the status of an unserved version, with the surface's type)."""
    error = ModelVersionNotServed(message)
    error.ts_type = ts_type
    return error


def ts_model_gone(retirement: Retirement, name: str, version: str) -> TorchServeReplicaError | None:
    """The control plane's 404 for a deleted model or deleted version; None while served."""
    if not retirement.refuses(version):
        return None
    if retirement.refuses():
        return _ts_not_found(f"Model not found: {name}", "ModelNotFoundException")
    return ModelVersionNotServed(f"Model version: {version} does not exist for model: {name}")


def ts_workflow_gone(retirement: Retirement, name: str) -> TorchServeReplicaError | None:
    """TorchServe's 404 for an unregistered workflow; None while it is served."""
    if not retirement.refuses():
        return None
    return _ts_not_found(f"Workflow not found: {name}", "WorkflowNotFoundException")


def v2_gone(retirement: Retirement, name: str, path: str) -> Response | None:
    """Triton's answer for an unloaded model (ready 400 empty, stats 400, else 404); or None."""
    if not retirement.refuses():
        return None
    tail = path.rstrip("/")
    if tail.endswith("/ready"):
        return Response(status_code=400)
    if tail.endswith("/stats"):
        return JSONResponse({"error": f"requested model '{name}' is not available"}, 400)
    message = f"Request for unknown model: '{name}' has no available versions"
    return JSONResponse({"error": message}, 404)
