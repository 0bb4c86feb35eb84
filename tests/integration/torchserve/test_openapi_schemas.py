"""Real management responses validate against the response schemas /openapi.json publishes."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from control_plane.integrations.serve_types import AppState, DeploymentState

TORCHSERVE_PATHS = [
    ("get", "/ping"),
    ("post", "/models"),
    ("get", "/models"),
    ("get", "/models/{model_name}"),
    ("get", "/models/{model_name}/{model_version}"),
    ("put", "/models/{model_name}"),
    ("put", "/models/{model_name}/{model_version}"),
    ("put", "/models/{model_name}/{model_version}/set-default"),
    ("delete", "/models/{model_name}"),
    ("delete", "/models/{model_name}/{model_version}"),
    ("post", "/workflows"),
    ("get", "/workflows"),
    ("get", "/workflows/{workflow_name}"),
    ("put", "/workflows/{workflow_name}"),
    ("delete", "/workflows/{workflow_name}"),
]


class PublishedSchemas:
    """The response schemas of one OpenAPI document, as JSON Schema validators."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def response_schema(self, method: str, template: str, status: int) -> dict[str, Any]:
        responses = self.document["paths"][template][method]["responses"]
        assert str(status) in responses, (method, template, status, sorted(responses))
        schema = responses[str(status)]["content"]["application/json"]["schema"]
        assert schema, f"{method.upper()} {template} {status} documents no body"
        return dict(schema)

    def validate(self, resp: Any, method: str, template: str) -> Any:
        """Check ``resp`` (an httpx response) against what the document says it returns."""
        body = resp.json()
        schema = self.response_schema(method, template, resp.status_code)
        # "#/components/..." references resolve inside the schema's own document.
        root = {**schema, "components": self.document["components"]}
        jsonschema.Draft202012Validator(root).validate(body)
        return body


@pytest.fixture(name="published")
async def published_fixture(client) -> PublishedSchemas:
    resp = await client.get("/openapi.json")
    assert resp.status_code == 200
    return PublishedSchemas(resp.json())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the document is DB-independent
async def test_every_torchserve_management_route_documents_its_body(published):
    for method, template in TORCHSERVE_PATHS:
        schema = published.response_schema(method, template, 200)
        assert "$ref" in schema or schema.get("type") == "array", (method, template, schema)
    for method, template in [
        ("post", "/models"),
        ("put", "/models/{model_name}"),
        ("put", "/workflows/{workflow_name}"),
    ]:
        published.response_schema(method, template, 202)
    described = published.document["components"]["schemas"]["TorchServeModelRead"]
    assert "modelName" in described["properties"]  # TorchServe's wire names, not snake_case
    assert all(p.get("description") for p in described["properties"].values())


def _report_running_replicas(gateway, monkeypatch, replicas=2):
    """Serve reports every applied app RUNNING with ``replicas`` replicas (describe shows them)."""

    def status():
        return {
            name: AppState(
                name=name,
                status="RUNNING",
                deployments={"d": DeploymentState("HEALTHY", replica_states={"RUNNING": replicas})},
            )
            for name in gateway.apps
        }

    monkeypatch.setattr(gateway, "status", status)


async def test_model_responses_validate_against_published_schemas(
    client, gateway, stores, published, monkeypatch
):
    _report_running_replicas(gateway, monkeypatch)
    ok = published.validate
    ok(await client.get("/ping"), "get", "/ping")
    ok(await client.get("/models"), "get", "/models")
    resp = await client.post("/models", params={"url": "echo.mar", "initial_workers": 1})
    assert ok(resp, "post", "/models")["status"].startswith('Model "echo"')
    resp = await client.post("/models", params={"url": "echo-v2.mar", "initial_workers": 1})
    ok(resp, "post", "/models")
    resp = await client.post(
        "/models",
        params={"url": "echo.mar", "model_name": "bg", "initial_workers": 1, "synchronous": "0"},
    )
    assert resp.status_code == 202
    ok(resp, "post", "/models")
    resp = await client.post("/models", params={"url": "echo.mar", "model_name": "lazy"})
    ok(resp, "post", "/models")

    page = ok(await client.get("/models", params={"limit": 1}), "get", "/models")
    assert page["nextPageToken"] == "1"
    assert "nextPageToken" not in ok(await client.get("/models"), "get", "/models")
    (desc,) = ok(await client.get("/models/echo"), "get", "/models/{model_name}")
    assert len(desc["workers"]) == 2  # the nested worker schema is exercised too
    versions = ok(
        await client.get("/models/echo/all"), "get", "/models/{model_name}/{model_version}"
    )
    assert len(versions) == 2
    ok(await client.get("/models/echo/2.0"), "get", "/models/{model_name}/{model_version}")

    resp = await client.put("/models/echo", params={"min_worker": 2, "max_worker": 3})
    assert resp.status_code == 202
    ok(resp, "put", "/models/{model_name}")
    resp = await client.put("/models/echo", params={"min_worker": 1, "synchronous": "true"})
    assert resp.status_code == 200
    ok(resp, "put", "/models/{model_name}")
    resp = await client.put("/models/echo/1.0", params={"min_worker": 1, "synchronous": "true"})
    ok(resp, "put", "/models/{model_name}/{model_version}")
    resp = await client.put("/models/echo/2.0/set-default")
    ok(resp, "put", "/models/{model_name}/{model_version}/set-default")

    resp = await client.delete("/models/echo/1.0")
    assert resp.status_code == 200
    ok(resp, "delete", "/models/{model_name}/{model_version}")
    for name in ("echo", "bg", "lazy"):
        ok(await client.delete(f"/models/{name}"), "delete", "/models/{model_name}")


async def test_workflow_responses_validate_against_published_schemas(client, stores, published):
    ok = published.validate
    ok(await client.get("/workflows"), "get", "/workflows")
    resp = await client.post("/workflows", params={"url": "diamond.war"})
    assert resp.status_code == 200
    ok(resp, "post", "/workflows")
    resp = await client.post(
        "/workflows",
        params={"url": "diamond.war", "workflow_name": "copy", "execution": "separate"},
    )
    ok(resp, "post", "/workflows")
    page = ok(await client.get("/workflows", params={"limit": 1}), "get", "/workflows")
    assert page["nextPageToken"] == "1"
    ok(await client.get("/workflows"), "get", "/workflows")
    (desc,) = ok(await client.get("/workflows/diamond"), "get", "/workflows/{workflow_name}")
    assert desc["workflowDag"] == "{pre=[m1, m2], m1=[post], m2=[post]}"
    # workflow node models are described through the model routes
    ok(await client.get("/models/copy__m1"), "get", "/models/{model_name}")
    ok(await client.get("/models"), "get", "/models")

    resp = await client.put("/workflows/copy", params={"min_worker": 1, "max_worker": 2})
    assert resp.status_code == 202
    ok(resp, "put", "/workflows/{workflow_name}")
    resp = await client.put(
        "/workflows/copy", params={"min_worker": 1, "max_worker": 3, "node": "m1"}
    )
    ok(resp, "put", "/workflows/{workflow_name}")
    for name in ("copy", "diamond"):
        ok(await client.delete(f"/workflows/{name}"), "delete", "/workflows/{workflow_name}")
