"""Unload what one test module left on the session platform, through the platform's own APIs.

Every loaded model, registered ``.mar`` and workflow keeps its replicas running: left in place,
a whole suite's worth of them (50+ idle replicas, each polled by the Serve controller) loads a
2-core CI machine for every later test, and a test that restores the whole Serve state has to
bring all of them back. The session fixture records which applications existed when a module
started; at its end, the new ones are unloaded as a user would: the v2 repository API,
TorchServe's management API. Workflows go first (they own their node models), then the rest
side by side.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx

logger = logging.getLogger(__name__)

# Applications that belong to the platform itself, not to a test.
PLATFORM_APPS = frozenset({"control-plane", "grpc", "p-gw-apps"})


def _unload_v2(client: httpx.Client, model: str) -> None:
    client.post(f"/v2/repository/models/{quote(model, safe='')}/unload")


def _unregister_ts(client: httpx.Client, model: str) -> None:
    name = quote(model, safe="")
    resp = client.get(f"/models/{name}/all")
    versions = [m.get("modelVersion") for m in resp.json()] if resp.status_code == 200 else []
    for version in versions or [None]:
        path = f"/models/{name}" + (f"/{quote(str(version), safe='')}" if version else "")
        client.delete(path)


def _unregister_wf(client: httpx.Client, workflow: str) -> None:
    client.delete(f"/workflows/{quote(workflow, safe='')}")


_BY_OWNER = {"v2": _unload_v2, "ts": _unregister_ts, "wf": _unregister_wf}


def unload_apps(base_url: str, apps: Iterable[str]) -> None:
    """Unload the platform resources behind ``apps`` (Serve application names); best effort."""
    jobs: dict[str, list[str]] = {owner: [] for owner in _BY_OWNER}
    for app in sorted(set(apps) - PLATFORM_APPS):
        owner, _, name = app.removeprefix("p-").partition("-")
        if app.startswith("p-") and owner in jobs and name:
            jobs[owner].append(name)

    def run(owner: str, name: str) -> None:
        try:
            with httpx.Client(base_url=base_url, timeout=120) as client:
                _BY_OWNER[owner](client, name)
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("could not unload %s %s: %r", owner, name, exc)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda name: run("wf", name), jobs["wf"]))
        rest = [(o, n) for o in ("v2", "ts") for n in jobs[o]]
        list(pool.map(lambda job: run(*job), rest))
