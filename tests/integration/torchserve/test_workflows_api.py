import contextlib
import functools
import http.server
import json
import threading
import zipfile

import pytest

from control_plane.services.torchserve.apps import model_app, workflow_app
from tests.conftest import free_port
from tests.integration.torchserve.builders import DIAMOND_FUNCTIONS, make_war
from tests.integration.torchserve.test_models_api import ts_error

REGISTERED = {"status": "Workflow diamond has been registered and scaled successfully."}


@contextlib.contextmanager
def http_server(directory):
    """A real HTTP server on a free loopback port serving ``directory``."""
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


async def test_register_describe_list_unregister_workflow(client, gateway, stores):
    resp = await client.post("/workflows", params={"url": "diamond.war"})
    assert resp.status_code == 200
    assert resp.json() == REGISTERED
    spec = gateway.apps[workflow_app("diamond")]
    assert spec.route_prefix == "/wfpredict/diamond"
    assert spec.builder == "deployments.workflow:build_workflow"
    # fused by default: no node needs its own scaling
    assert set(spec.args.inline) == {"m1", "m2"}
    assert spec.args.deployments == {}
    assert spec.args.function_nodes == ["pre", "post"]
    assert spec.args.node_configs["m1"].retry_attempts == 0

    assert (await client.get("/workflows/diamond")).json() == [
        {
            "workflowName": "diamond",
            "workflowUrl": "diamond.war",
            "minWorkers": 1,
            "maxWorkers": 1,
            "batchSize": 1,
            "maxBatchDelay": 50,
            "workflowDag": "{pre=[m1, m2], m1=[post], m2=[post]}",
        }
    ]
    await client.post("/workflows", params={"url": "diamond.war", "workflow_name": "second"})
    listing = (await client.get("/workflows", params={"limit": 1})).json()
    assert listing == {
        "nextPageToken": "1",
        "workflows": [{"workflowName": "diamond", "workflowUrl": "diamond.war"}],
    }
    assert len((await client.get("/workflows")).json()["workflows"]) == 2
    listed = [m["modelName"] for m in (await client.get("/models")).json()["models"]]
    assert listed == ["diamond__m1", "diamond__m2", "second__m1", "second__m2"]
    (node,) = (await client.get("/models/diamond__m1")).json()
    assert (node["modelName"], node["modelUrl"], node["minWorkers"]) == (
        "diamond__m1",
        "sleepy1.mar",
        1,
    )
    ts_error(await client.get("/models/diamond__pre"), 404, "ModelNotFoundException")

    resp = await client.delete("/workflows/diamond")
    assert resp.json() == {"status": 'Workflow "diamond" unregistered'}
    assert workflow_app("diamond") not in gateway.apps
    assert (stores["workflows"] / "diamond.war").exists()  # a store archive is kept
    for method, path in [
        ("GET", "/workflows/diamond"),
        ("DELETE", "/workflows/diamond"),
        ("POST", "/wfpredict/diamond"),
    ]:
        ts_error(
            await client.request(method, path),
            404,
            "WorkflowNotFoundException",
            "Workflow not found: diamond",
        )


async def test_separate_execution_and_scaling_extension(client, gateway, stores):
    resp = await client.post("/workflows", params={"url": "diamond.war", "execution": "separate"})
    assert resp.status_code == 200
    args = gateway.apps[workflow_app("diamond")].args
    assert set(args.deployments) == {"m1", "m2"}
    assert args.inline == {}
    resp = await client.put(
        "/workflows/diamond", params={"min_worker": 1, "max_worker": 3, "node": "m1"}
    )
    assert resp.status_code == 202
    assert gateway.apps[workflow_app("diamond")].args.deployments["m1"].max_workers == 3
    await client.put("/workflows/diamond", params={"min_worker": 2, "max_worker": 2})
    assert gateway.apps[workflow_app("diamond")].args.driver_max_workers == 2
    ts_error(
        await client.put("/workflows/diamond", params={"node": "nope"}),
        404,
        "ModelNotFoundException",
    )


async def test_auto_execution_splits_nodes_that_need_scaling(client, gateway, stores, tmp_path):
    spec = (
        "models:\n  m1:\n    url: sleepy1.mar\n    min-workers: 1\n    max-workers: 3\n"
        "    batch-size: 4\n  m2:\n    url: sleepy2.mar\n"
        "dag:\n  pre: [m1, m2]\n  m1: [post]\n  m2: [post]\n"
    )
    make_war(stores["workflows"], "scaled", spec, DIAMOND_FUNCTIONS, work=tmp_path / "scaled")
    assert (await client.post("/workflows", params={"url": "scaled.war"})).status_code == 200
    args = gateway.apps[workflow_app("scaled")].args
    assert set(args.deployments) == {"m1"}
    assert set(args.inline) == {"m2"}
    m1 = args.deployments["m1"]
    assert (m1.min_workers, m1.max_workers, m1.batch_size) == (1, 3, 4)


async def test_workflow_reuses_registered_model(client, gateway, stores):
    assert (
        await client.post(
            "/models", params={"url": "sleepy1.mar", "model_name": "m1", "initial_workers": 1}
        )
    ).status_code == 200
    assert (await client.post("/workflows", params={"url": "diamond.war"})).status_code == 200
    args = gateway.apps[workflow_app("diamond")].args
    assert args.shared == {"m1": model_app("m1")}
    assert set(args.inline) == {"m2"}
    ts_error(await client.delete("/models/m1"), 409, "ConflictStatusException")
    await client.delete("/workflows/diamond")
    assert (await client.delete("/models/m1")).status_code == 200


def _war_with(path, manifest=None, files=None):
    with zipfile.ZipFile(path, "w") as zf:
        if manifest is not None:
            zf.writestr("WAR-INF/MANIFEST.json", json.dumps(manifest))
        for name, text in (files or {}).items():
            zf.writestr(name, text)
    return path


GOOD_MANIFEST = {
    "createdOn": "01/01/2024 00:00:00",
    "archiverVersion": "0.2.15",
    "workflow": {"workflowName": "w", "specFile": "spec.yaml", "handler": "h.py"},
}


@pytest.mark.parametrize(
    ("files", "manifest", "code", "ts_type", "message"),
    [
        (
            {},
            {"workflow": {"workflowName": "w"}},
            500,
            "InvalidWorkflowException",
            "Workflow archive version is not defined.",
        ),
        ({}, None, 500, "InvalidWorkflowException", "Missing Workflow entry in manifest file."),
        ({"h.py": ""}, GOOD_MANIFEST, 500, "NoSuchFileException", "spec.yaml"),
        (
            {"spec.yaml": "models: [", "h.py": ""},
            GOOD_MANIFEST,
            500,
            "InvalidWorkflowException",
            "Failed to parse yaml.",
        ),
        (
            {"spec.yaml": "models: {}\ndag:\n  a: [b]\n  b: [c]\n  c: [b]\n", "h.py": ""},
            GOOD_MANIFEST,
            400,
            "InvalidDAGException",
            "Not a valid DAG",
        ),
        (
            {"spec.yaml": "models: {}\ndag:\n  a: [a]\n", "h.py": ""},
            GOOD_MANIFEST,
            400,
            "InvalidDAGException",
            "Self loop exception",
        ),
        (
            {"spec.yaml": "models: {}\ndag:\n  a: [b]\n", "h.py": "def a(d, c):\n    return d\n"},
            GOOD_MANIFEST,
            500,
            "WorkflowException",
            "Workflow w has failed to register. Failures: [Workflow Node w__b failed to register. "
            "Details: no function b (and no single handler class) in h.py]",
        ),
        (
            {
                "spec.yaml": "models:\n  m:\n    url: nonexistent.mar\ndag:\n  a: [m]\n",
                "h.py": "def a(d, c):\n    return d\n",
            },
            GOOD_MANIFEST,
            500,
            "WorkflowException",
            "Workflow w has failed to register. Failures: [Workflow Node w__m failed to register. "
            "Details: Model not found at: nonexistent.mar]",
        ),
    ],
)
@pytest.mark.parametrize(
    "db_url", ["sqlite"], indirect=True
)  # pure archive checks: one DB is enough
async def test_register_workflow_archive_errors(
    client, gateway, stores, files, manifest, code, ts_type, message
):
    _war_with(stores["workflows"] / "bad.war", manifest, files)
    ts_error(await client.post("/workflows", params={"url": "bad.war"}), code, ts_type, message)
    assert (await client.get("/workflows")).json() == {"workflows": []}
    assert not [a for a in gateway.apps if a.startswith(("p-wf-", "p-ts-"))]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # request checks: one DB suffices
async def test_register_workflow_request_errors(client, stores):
    ts_error(
        await client.post("/workflows"), 400, "BadRequestException", "Parameter url is required."
    )
    ts_error(
        await client.post("/workflows", params={"url": "InvalidUrl"}),
        404,
        "WorkflowNotFoundException",
        "Workflow not found in workflow store: InvalidUrl",
    )
    ts_error(
        await client.post("/workflows", params={"url": "../fake.war"}),
        404,
        "WorkflowNotFoundException",
        "Relative path is not allowed in url: ../fake.war",
    )
    assert (await client.post("/workflows", params={"url": "diamond.war"})).status_code == 200
    ts_error(
        await client.post("/workflows", params={"url": "diamond.war"}),
        409,
        "ConflictStatusException",
        "Workflow diamond is already registered.",
    )
    ts_error(
        await client.post("/workflows", params={"url": "http://localhost:aaaa/x.war"}),
        400,
        "DownloadArchiveException",
        "Failed to download archive from: http://localhost:aaaa/x.war",
    )
    ts_error(
        await client.post("/workflows", params={"url": "file:///InvalidUrl"}),
        400,
        "DownloadArchiveException",
    )
    ts_error(await client.put("/workflows"), 405, "MethodNotAllowedException")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # request checks: one DB suffices
async def test_register_workflow_from_url_download(client, stores, archive_cache, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "remote.war").write_bytes(archive_cache["diamond.war"].read_bytes())
    with http_server(served) as base:
        url = f"{base}/remote.war"
        resp = await client.post("/workflows", params={"url": url, "workflow_name": "remote"})
        assert resp.status_code == 200, resp.text
        assert (stores["workflows"] / "remote.war").exists()
        assert (await client.get("/workflows/remote")).json()[0]["workflowUrl"] == url
        # re-registering the same URL fails before the duplicate check, as in TorchServe
        ts_error(
            await client.post("/workflows", params={"url": url}),
            500,
            "FileAlreadyExistsException",
            "remote.war",
        )
        ts_error(
            await client.post("/workflows", params={"url": f"{base}/missing.war"}),
            400,
            "DownloadArchiveException",
            f"Failed to download archive from: {base}/missing.war",
        )
        assert (await client.delete("/workflows/remote")).status_code == 200
        assert not (stores["workflows"] / "remote.war").exists()  # downloaded copy removed


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # request checks: one DB suffices
async def test_url_allow_list_and_download_limit(client, settings, stores, archive_cache, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "big.war").write_bytes(archive_cache["diamond.war"].read_bytes())
    settings.torchserve.allowed_urls = [r"http://127\.0\.0\.1:\d+/.*"]
    settings.torchserve.max_download_bytes = 100
    ts_error(
        await client.post("/workflows", params={"url": "https://example.com/x.war"}),
        404,
        "WorkflowNotFoundException",
        "Given URL https://example.com/x.war does not match any allowed URL(s)",
    )
    ts_error(
        await client.post("/models", params={"url": "file:///etc/passwd"}),
        404,
        "ModelNotFoundException",
        "Given URL file:///etc/passwd does not match any allowed URL(s)",
    )
    with http_server(served) as base:
        body = ts_error(
            await client.post("/workflows", params={"url": f"{base}/big.war"}),
            400,
            "DownloadArchiveException",
        )
        assert "exceeds the 100-byte limit" in body["message"]
    assert not (stores["workflows"] / "big.war").exists()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # request checks: one DB suffices
async def test_workflow_handler_class_fallback_and_function_sharing(
    client, gateway, stores, tmp_path
):
    make_war(
        stores["workflows"],
        "single",
        "models: {}\ndag:\n  only: []\n",
        "class Node:\n    def initialize(self, c):\n        pass\n"
        "    def handle(self, d, c):\n        return d\n",
        work=tmp_path / "single",
    )
    assert (await client.post("/workflows", params={"url": "single.war"})).status_code == 200
    assert (await client.get("/workflows/single")).json()[0]["workflowDag"] == "{only=[]}"
