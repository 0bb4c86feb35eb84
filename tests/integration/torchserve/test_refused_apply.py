"""Serve refuses an application: registration answers Serve's error at once and rolls back."""

from __future__ import annotations

import time

import pytest

from control_plane.services.serve_apps import ServeAppService
from control_plane.services.torchserve.apps import model_app, workflow_app
from tests.integration.torchserve.test_models_api import ts_error

# Short enough that waiting it out (the defect) fails the 10 s bound quickly, long enough to tell.
WAIT_S = 15


def _recorded(client, gateway, name):
    with client.app.state.session_factory() as session:
        return ServeAppService(session, gateway).get(name)


def _extracted(settings, kind):
    folder = settings.store_root / "ts-extracted" / kind
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # one DB shows the rollback
async def test_register_workflow_answers_serve_refusal_without_waiting(
    client, gateway, settings, stores
):
    settings.serving.load_timeout_s = WAIT_S
    gateway.fail_apply.add(workflow_app("diamond"))

    started = time.monotonic()
    resp = await client.post("/workflows", params={"url": "diamond.war"})
    elapsed = time.monotonic() - started

    assert elapsed < 10, f"waited {elapsed:.1f}s for an application Serve had refused"
    ts_error(
        resp,
        500,
        "WorkflowException",
        "Workflow diamond has failed to register. Failures: [Failed to start workers for "
        "workflow diamond: Ray Serve refused application p-wf-diamond]",
    )
    assert (await client.get("/workflows")).json() == {"workflows": []}
    assert _recorded(client, gateway, workflow_app("diamond")) is None
    assert _extracted(settings, "workflows") == []
    assert _extracted(settings, "models") == []
    assert (stores["workflows"] / "diamond.war").exists()  # a store archive is kept
    # nothing half-registered: the same archive registers once Serve accepts it
    gateway.fail_apply.clear()
    assert (await client.post("/workflows", params={"url": "diamond.war"})).status_code == 200


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # one DB shows the rollback
async def test_register_model_synchronously_answers_serve_refusal_without_waiting(
    client, gateway, settings, stores
):
    gateway.fail_apply.add(model_app("echo"))

    started = time.monotonic()
    resp = await client.post(
        "/models",
        params={"url": "echo.mar", "initial_workers": 1, "startup_timeout": WAIT_S},
    )
    elapsed = time.monotonic() - started

    assert elapsed < 10, f"waited {elapsed:.1f}s for an application Serve had refused"
    ts_error(
        resp,
        500,
        "InternalServerException",
        "Failed to start workers for model echo version: 1.0. "
        "Details: Ray Serve refused application p-ts-echo",
    )
    ts_error(await client.get("/models/echo"), 404, "ModelNotFoundException")
    assert _recorded(client, gateway, model_app("echo")) is None
    assert _extracted(settings, "models") == []
    gateway.fail_apply.clear()
    resp = await client.post("/models", params={"url": "echo.mar", "initial_workers": 1})
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_register_model_asynchronously_keeps_the_registration_for_the_reconciler(
    client, gateway, stores
):
    gateway.fail_apply.add(model_app("echo"))
    resp = await client.post(
        "/models", params={"url": "echo.mar", "initial_workers": 1, "synchronous": "false"}
    )
    assert resp.status_code == 202
    assert resp.json() == {"status": "Processing worker updates..."}
    record = _recorded(client, gateway, model_app("echo"))
    assert record is not None
    assert record.last_error == "Ray Serve refused application p-ts-echo"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_synchronous_scale_answers_serve_refusal_without_waiting(
    client, gateway, settings, stores
):
    assert (
        await client.post("/models", params={"url": "echo.mar", "initial_workers": 1})
    ).status_code == 200
    gateway.fail_apply.add(model_app("echo"))
    started = time.monotonic()
    resp = await client.put(
        "/models/echo", params={"min_worker": 2, "synchronous": "true", "timeout": WAIT_S}
    )
    assert time.monotonic() - started < 10
    ts_error(
        resp,
        500,
        "InternalServerException",
        "Failed to start workers for model echo version: 1.0. "
        "Details: Ray Serve refused application p-ts-echo",
    )
