"""TorchServe .mar models on real Ray Serve: hot-path predictions, versions, batching, 404s."""

from __future__ import annotations

import concurrent.futures
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.torchserve.builders import (
    BATCH_SIZE_MODEL,
    CLASS_HANDLER,
    ECHO_HANDLER,
    TORCHSCRIPT_HANDLER,
    make_mar,
    make_torchscript,
)

pytestmark = pytest.mark.ray


def model_store(platform) -> Path:
    return Path(platform.data_dir) / "store" / "model-store"


def wait_route(
    url: str, *, method: str = "POST", timeout_s: float = 30, **kwargs
) -> httpx.Response:
    """Call until the proxy routes to the new application (not the control plane's 503/404)."""
    deadline = time.monotonic() + timeout_s
    while True:
        resp = httpx.request(method, url, timeout=30, **kwargs)
        if resp.status_code not in (404, 503) or time.monotonic() > deadline:
            return resp
        time.sleep(0.3)


def test_mar_models_serve_on_their_own_route(platform, tmp_path):
    store = model_store(platform)
    make_mar(store, "ts_echo", ECHO_HANDLER, work=tmp_path / "e1")
    make_mar(tmp_path / "v2", "ts_echo", CLASS_HANDLER, version="2.0", work=tmp_path / "e2")
    (store / "ts_echo_v2.mar").write_bytes((tmp_path / "v2" / "ts_echo.mar").read_bytes())
    weights = make_torchscript(tmp_path / "tiny.pt")
    make_mar(store, "ts_tiny", TORCHSCRIPT_HANDLER, serialized=weights, work=tmp_path / "t")

    url = platform.url
    resp = httpx.post(
        f"{url}/models", params={"url": "ts_echo.mar", "initial_workers": 1}, timeout=180
    )
    assert resp.status_code == 200, resp.text
    resp = httpx.post(
        f"{url}/models", params={"url": "ts_echo_v2.mar", "initial_workers": 1}, timeout=180
    )
    assert resp.status_code == 200, resp.text
    resp = httpx.post(
        f"{url}/models",
        params={"url": "ts_tiny.mar", "initial_workers": 1, "batch_size": 4, "max_batch_delay": 20},
        timeout=180,
    )
    assert resp.status_code == 200, resp.text

    resp = wait_route(f"{url}/predictions/ts_echo", content=b"hello")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"model": "ts_echo", "echo": "hello", "request_id": True}
    resp = httpx.post(
        f"{url}/predictions/ts_echo", files={"data": ("x.txt", b"filed", "text/plain")}
    )
    assert resp.json()["echo"] == "filed"
    resp = httpx.post(f"{url}/predictions/ts_echo/2.0", content=b"21")
    assert resp.status_code == 200
    assert resp.text == "42.0"
    assert resp.headers["content-type"].startswith("text/plain")
    resp = httpx.post(f"{url}/predictions/ts_echo/9.9", content=b"21")
    assert resp.status_code == 404
    assert resp.json()["message"] == "Model version: 9.9 does not exist for model: ts_echo"

    # TorchScript through ts.torch_handler.base_handler, batched across concurrent clients
    wait_route(f"{url}/predictions/ts_tiny", json={"input": [1, 2, 3, 4]})

    def infer(i: int) -> dict:
        r = httpx.post(f"{url}/predictions/ts_tiny", json={"input": [i, 1, 1, 1]}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(infer, range(8)))
    assert [r["output"] for r in results] == [[i + 3.0, i + 3.0] for i in range(8)]

    # batch_size/max_batch_delay: concurrent requests are handed to the handler together
    make_mar(store, "ts_batch", BATCH_SIZE_MODEL, work=tmp_path / "b")
    resp = httpx.post(
        f"{url}/models",
        timeout=180,
        params={
            "url": "ts_batch.mar",
            "initial_workers": 1,
            "batch_size": 4,
            "max_batch_delay": 300,
        },
    )
    assert resp.status_code == 200, resp.text
    wait_route(f"{url}/predictions/ts_batch", content=b"1")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        sizes = list(
            pool.map(
                lambda _: httpx.post(
                    f"{url}/predictions/ts_batch", content=b"1", timeout=30
                ).json(),
                range(4),
            )
        )
    assert all(s["batch_size"] == 4 for s in sizes)
    assert max(s["batch"] for s in sizes) > 1, sizes
    assert httpx.delete(f"{url}/models/ts_batch", timeout=60).status_code == 200

    # unknown names reach the control plane and get TorchServe's 404
    resp = httpx.post(f"{url}/predictions/never_registered", content=b"x")
    assert resp.status_code == 404
    assert resp.json()["type"] == "ModelNotFoundException"
    (desc,) = httpx.get(f"{url}/models/ts_echo").json()
    assert len(desc["workers"]) == 1

    for name in ("ts_echo", "ts_tiny"):
        assert httpx.delete(f"{url}/models/{name}", timeout=60).status_code == 200
    resp = wait_route(f"{url}/predictions/ts_tiny", json={"input": [1, 2, 3, 4]}, timeout_s=0)
    deadline = time.monotonic() + 30
    while resp.status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.5)
        resp = httpx.post(f"{url}/predictions/ts_tiny", json={"input": [1, 2, 3, 4]})
    assert resp.status_code == 404
    assert json.loads(resp.text)["message"] == "Model not found: ts_tiny"
