import pytest

from control_plane.services.torchserve.apps import model_app


def ts_error(resp, code, ts_type, message=None):
    body = resp.json()
    assert resp.status_code == code, resp.text
    assert body["code"] == code, body
    assert body["type"] == ts_type, body
    if message is not None:
        assert body["message"] == message, body
    return body


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # request checks: one DB suffices
async def test_ping(client):
    resp = await client.get("/ping")
    assert resp.json() == {"status": "Healthy"}
    assert resp.text.endswith("\n")


async def test_register_describe_scale_unregister_model(client, gateway, stores):
    resp = await client.post("/models", params={"url": "echo.mar", "initial_workers": 1})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": 'Model "echo" Version: 1.0 registered with 1 initial workers'}
    spec = gateway.apps[model_app("echo")]
    assert spec.route_prefix == "/predictions/echo"
    assert spec.builder == "deployments.ts_model:build_ts_model"
    assert spec.args.versions["1.0"].handler == "handler.py"

    (desc,) = (await client.get("/models/echo")).json()
    assert (desc["modelName"], desc["modelVersion"], desc["modelUrl"]) == (
        "echo",
        "1.0",
        "echo.mar",
    )
    assert (desc["minWorkers"], desc["maxWorkers"], desc["batchSize"], desc["maxBatchDelay"]) == (
        1,
        1,
        1,
        100,
    )

    resp = await client.put("/models/echo", params={"min_worker": 2, "max_worker": 4})
    assert resp.status_code == 202
    assert resp.json() == {"status": "Processing worker updates..."}
    assert gateway.apps[model_app("echo")].args.max_workers == 4
    resp = await client.put("/models/echo", params={"min_worker": 3, "synchronous": "true"})
    assert resp.json() == {"status": "Workers scaled to 3 for model: echo"}
    ts_error(
        await client.put("/models/echo", params={"min_worker": 3, "max_worker": 1}),
        400,
        "BadRequestException",
        "max_worker cannot be less than min_worker.",
    )

    resp = await client.delete("/models/echo")
    assert resp.json() == {"status": 'Model "echo" unregistered'}
    assert model_app("echo") not in gateway.apps
    ts_error(
        await client.get("/models/echo"), 404, "ModelNotFoundException", "Model not found: echo"
    )


async def test_zero_workers_registers_without_app_then_503(client, gateway, stores):
    resp = await client.post("/models", params={"url": "echo.mar", "model_name": "lazy"})
    assert resp.json()["status"] == (
        'Model "lazy" Version: 1.0 registered with 0 initial workers. '
        "Use scale workers API to add workers for the model."
    )
    assert model_app("lazy") not in gateway.apps
    body = ts_error(
        await client.post("/predictions/lazy", content=b"x"), 503, "ServiceUnavailableException"
    )
    assert "has no worker" in body["message"]
    ts_error(
        await client.post("/predictions/nope"),
        404,
        "ModelNotFoundException",
        "Model not found: nope",
    )
    ts_error(await client.post("/predictions/lazy/9.9"), 404, "ModelVersionNotFoundException")


async def test_versions_list_pagination_and_set_default(client, gateway, stores):
    await client.post("/models", params={"url": "echo.mar", "initial_workers": 1})
    await client.post("/models", params={"url": "echo-v2.mar", "initial_workers": 1})
    for i in range(3):
        await client.post("/models", params={"url": "echo.mar", "model_name": f"m{i}"})
    assert set(gateway.apps[model_app("echo")].args.versions) == {"1.0", "2.0"}
    all_versions = (await client.get("/models/echo/all")).json()
    assert [d["modelVersion"] for d in all_versions] == ["1.0", "2.0"]

    page = (await client.get("/models", params={"limit": 2})).json()
    assert page == {
        "nextPageToken": "2",
        "models": [
            {"modelName": "echo", "modelUrl": "echo.mar"},
            {"modelName": "m0", "modelUrl": "echo.mar"},
        ],
    }
    page = (await client.get("/models", params={"limit": 2, "next_page_token": 2})).json()
    assert page["nextPageToken"] == "4"
    assert [m["modelName"] for m in page["models"]] == ["m1", "m2"]
    page = (await client.get("/models", params={"limit": 2, "next_page_token": 4})).json()
    assert page == {"models": []}

    resp = await client.put("/models/echo/2.0/set-default")
    assert resp.json() == {
        "status": 'Default version successfully updated for model "echo" to "2.0"'
    }
    assert gateway.apps[model_app("echo")].args.default_version == "2.0"
    ts_error(
        await client.put("/models/echo/7.0/set-default"),
        404,
        "ModelVersionNotFoundException",
        "Model version 7.0 does not exist for model echo",
    )
    ts_error(await client.delete("/models/echo/2.0"), 403, "InvalidModelVersionException")
    assert (await client.delete("/models/echo/1.0")).status_code == 200
    assert set(gateway.apps[model_app("echo")].args.versions) == {"2.0"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # request checks: one DB suffices
async def test_register_model_errors(client, stores):
    ts_error(await client.post("/models"), 400, "BadRequestException", "Parameter url is required.")
    ts_error(
        await client.post("/models", params={"url": ""}), 404, "ModelNotFoundException", "empty url"
    )
    ts_error(
        await client.post("/models", params={"url": "missing.mar"}),
        404,
        "ModelNotFoundException",
        "Model not found at: missing.mar",
    )
    ts_error(
        await client.post("/models", params={"url": "../echo.mar"}),
        404,
        "ModelNotFoundException",
        "Relative path is not allowed in url: ../echo.mar",
    )
    ts_error(
        await client.post("/models", params={"url": "echo.mar", "runtime": "java"}),
        400,
        "BadRequestException",
        "Invalid RuntimeType value: java",
    )
    ts_error(
        await client.post("/models", params={"url": "echo.mar", "initial_workers": "x"}),
        400,
        "BadRequestException",
    )
    assert (await client.post("/models", params={"url": "echo.mar"})).status_code == 200
    ts_error(
        await client.post("/models", params={"url": "echo.mar"}),
        409,
        "ConflictStatusException",
        "Model version 1.0 is already registered for model echo",
    )
    (stores["models"] / "junk.mar").write_bytes(b"not a zip")
    ts_error(await client.post("/models", params={"url": "junk.mar"}), 500, "InvalidModelException")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # request checks: one DB suffices
async def test_register_model_from_json_body(client, stores):
    resp = await client.post(
        "/models", json={"url": "echo.mar", "model_name": "viajson", "batch_size": 4}
    )
    assert resp.status_code == 200
    (desc,) = (await client.get("/models/viajson")).json()
    assert desc["batchSize"] == 4


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # request checks: one DB suffices
async def test_failed_start_rolls_back(client, gateway, stores, monkeypatch):
    from control_plane.integrations.serve_types import AppState

    def deploy_failed():  # Serve accepted the app, but its replicas never start
        return {n: AppState(name=n, status="DEPLOY_FAILED", message="boom") for n in gateway.apps}

    monkeypatch.setattr(gateway, "status", deploy_failed)
    resp = await client.post(
        "/models", params={"url": "echo.mar", "initial_workers": 1, "startup_timeout": 1}
    )
    ts_error(
        resp, 500, "InternalServerException", "Failed to start workers for model echo version: 1.0"
    )
    ts_error(await client.get("/models/echo"), 404, "ModelNotFoundException")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # request checks: one DB suffices
async def test_requirements_installed_only_when_enabled(client, settings, stores, tmp_path):
    from tests.integration.torchserve.builders import ECHO_HANDLER, make_mar

    make_mar(
        stores["models"],
        "withdeps",
        ECHO_HANDLER,
        requirements="this is not a requirement !!\n",
        work=tmp_path / "deps",
    )
    # disabled (the default): requirements.txt is ignored, as in TorchServe
    assert (await client.post("/models", params={"url": "withdeps.mar"})).status_code == 200
    assert (await client.delete("/models/withdeps")).status_code == 200
    settings.torchserve.install_py_dep_per_model = True
    ts_error(
        await client.post("/models", params={"url": "withdeps.mar"}),
        500,
        "ModelException",
        "Custom pip package installation failed for model withdeps",
    )
    ts_error(await client.get("/models/withdeps"), 404, "ModelNotFoundException")
