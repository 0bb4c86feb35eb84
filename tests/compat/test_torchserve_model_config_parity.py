"""model-config.yaml options on the real Ray Serve platform, against REAL TorchServe 0.12.

``responseTimeout``: a prediction running past it answers TorchServe's 500 "Worker died." on
both, and the next request is served. ``jobQueueSize``: requests beyond the queue are refused
with 503 (Serve's router; TorchServe's own 503 body differs, so only the status is compared).
"""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import httpx
import pytest

from bench.torchserve_peer import TorchServePeer, torchserve_available
from tests.integration.torchserve.builders import make_mar

pytestmark = [pytest.mark.ray, pytest.mark.compat, pytest.mark.slow]

SLOW = """
import time


def handle(data, context):
    if data is None:
        return None
    time.sleep(float(bytes(data[0].get("body") or b"0").decode() or 0))
    return ["done"]
"""
OCTET = {"content-type": "application/octet-stream"}


def _shape(resp: httpx.Response) -> tuple[int, object]:
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, resp.text


def test_response_timeout_and_job_queue_size(platform, tmp_path):
    reason = torchserve_available()
    if reason:
        pytest.fail(f"real TorchServe needed for parity: {reason}")
    store = tmp_path / "store"
    make_mar(store, "slowcfg", SLOW, config="responseTimeout: 2\n", work=tmp_path / "s")
    make_mar(store, "queued", SLOW, config="jobQueueSize: 1\nmaxWorkers: 1\n", work=tmp_path / "q")
    ours = Path(platform.data_dir) / "store" / "model-store"
    ours.mkdir(parents=True, exist_ok=True)
    for archive in store.iterdir():
        (ours / archive.name).write_bytes(archive.read_bytes())
    url = platform.url
    with TorchServePeer(tmp_path / "ts", store) as peer:
        for name in ("slowcfg", "queued"):
            params = {"url": f"{name}.mar", "initial_workers": 1, "synchronous": "true"}
            assert httpx.post(
                peer.management_url + "/models", params=params, timeout=120
            ).is_success
            resp = httpx.post(url + "/models", params=params, timeout=300)
            assert resp.status_code == 200, resp.text
        try:
            deadline = time.monotonic() + 30
            while httpx.post(
                url + "/predictions/slowcfg", content=b"0", headers=OCTET
            ).status_code in (404, 503):
                assert time.monotonic() < deadline
                time.sleep(0.3)
            (real_desc,) = httpx.get(peer.management_url + "/models/slowcfg").json()
            (our_desc,) = httpx.get(url + "/models/slowcfg").json()
            assert real_desc["responseTimeout"] == our_desc["responseTimeout"] == 2
            for base in (peer.inference_url, url):
                started = time.monotonic()
                slow = httpx.post(
                    base + "/predictions/slowcfg", content=b"4", headers=OCTET, timeout=60
                )
                took = time.monotonic() - started
                assert _shape(slow) == (
                    500,
                    {"code": 500, "type": "InternalServerException", "message": "Worker died."},
                ), base
                assert 1.9 < took < 3.9, (base, took)
                deadline = time.monotonic() + 30
                while True:  # TorchServe restarts the worker it killed
                    after = httpx.post(
                        base + "/predictions/slowcfg", content=b"0", headers=OCTET, timeout=60
                    )
                    if after.status_code == 200 or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                assert (after.status_code, after.text) == (200, "done"), base
            # one request running, one queued: further requests are refused with 503
            statuses: dict[str, list[int]] = {}
            for base in (peer.inference_url, url):
                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    futures = [
                        pool.submit(
                            httpx.post,
                            base + "/predictions/queued",
                            content=b"1.5",
                            headers=OCTET,
                            timeout=60,
                        )
                        for _ in range(8)
                    ]
                    statuses[base] = sorted(f.result().status_code for f in futures)
            # TorchServe: one running, one queued, six refused
            assert statuses[url] == statuses[peer.inference_url], statuses
        finally:
            for name in ("slowcfg", "queued"):
                httpx.delete(f"{url}/models/{name}", timeout=60)
