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

from control_plane.services import triton_models
from control_plane.services.serve_apps import MANAGED_APP_PREFIX
from control_plane.services.torchserve.apps import MODEL_OWNER, WORKFLOW_OWNER

logger = logging.getLogger(__name__)


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


# Owners of the applications a test creates (serve_apps.app_name: "p-<owner>-<name>"); the
# platform's own applications (control plane, gRPC ingress, apps gateway) have no entry here.
_BY_OWNER = {
    triton_models.OWNER: _unload_v2,
    MODEL_OWNER: _unregister_ts,
    WORKFLOW_OWNER: _unregister_wf,
}


def unload_apps(base_url: str, apps: Iterable[str]) -> None:
    """Unload the platform resources behind ``apps`` (Serve application names); best effort."""
    jobs: dict[str, list[str]] = {owner: [] for owner in _BY_OWNER}
    for app in sorted(set(apps)):
        owner, _, name = app.removeprefix(MANAGED_APP_PREFIX).partition("-")
        if app.startswith(MANAGED_APP_PREFIX) and owner in jobs and name:
            jobs[owner].append(name)

    def run(owner: str, name: str) -> None:
        try:
            with httpx.Client(base_url=base_url, timeout=120) as client:
                _BY_OWNER[owner](client, name)
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("could not unload %s %s: %r", owner, name, exc)

    with ThreadPoolExecutor(max_workers=8) as pool:
        # workflows first: they own their node models
        list(pool.map(lambda name: run(WORKFLOW_OWNER, name), jobs[WORKFLOW_OWNER]))
        rest = [(o, n) for o in (triton_models.OWNER, MODEL_OWNER) for n in jobs[o]]
        list(pool.map(lambda job: run(*job), rest))
