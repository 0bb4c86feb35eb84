import httpx

from control_plane.app import create_app
from control_plane.services.torchserve.apps import model_app, workflow_app


async def test_models_and_workflows_registered_from_config_once(settings, gateway, stores):
    settings.torchserve.load_models = ["echo.mar", "alias=echo.mar"]
    settings.torchserve.load_workflows = ["flow=diamond.war"]
    for _ in range(2):  # a second start (restart) skips what is registered
        app = create_app(settings, gateway_factory=lambda: gateway)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        ):
            names = [m["modelName"] for m in (await client.get("/models")).json()["models"]]
            assert names == ["alias", "echo", "flow__m1", "flow__m2"]
            (desc,) = (await client.get("/models/alias")).json()
            assert desc["loadedAtStartup"] is True
            assert desc["minWorkers"] == 1
            assert (await client.get("/workflows/flow")).status_code == 200
    assert {model_app("echo"), model_app("alias"), workflow_app("flow")} <= set(gateway.apps)
