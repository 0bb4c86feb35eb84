"""Token authorization in the model and workflow replicas (real Ray Serve) vs REAL TorchServe.

``/predictions/<m>`` and ``/wfpredict/<w>`` are their own Serve applications, so they check the
inference key themselves, reading its digest from the platform database. The session platform
runs with token authorization off; this test turns it on the way a control-plane replica does
(the keys' rows in the shared database, which the replicas read), compares, then turns it off.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from bench.torchserve_peer import TorchServePeer, torchserve_available
from control_plane.db.session import make_engine, make_session_factory
from control_plane.services.torchserve.tokens import TorchServeTokenService
from control_plane.settings import Settings
from tests.integration.torchserve.builders import ECHO_HANDLER, make_mar, make_war

pytestmark = [pytest.mark.ray, pytest.mark.compat, pytest.mark.slow]

FUNCTIONS = """
def pre(data, context):
    if data is None:
        return None
    return [bytes(row.get("body") or row.get("data") or b"") for row in data]
"""
SPEC = "models:\n  enode:\n    url: echo.mar\ndag:\n  pre: [enode]\n"
KEYS = ["none", "wrong", "management", "API", "inference"]


def _shape(resp: httpx.Response) -> tuple[int, object]:
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, resp.text


def _header(key: str, keys: dict[str, str]) -> dict[str, str]:
    if key == "none":
        return {}
    if key == "wrong":
        return {"Authorization": "Bearer wrongkey"}
    return {"Authorization": f"Bearer {keys[key]}"}


def _keys(path: Path) -> dict[str, str]:
    return {kind: entry["key"] for kind, entry in json.loads(path.read_text()).items()}


def test_replicas_check_inference_key_like_real_torchserve(platform, tmp_path):
    reason = torchserve_available()
    if reason:
        pytest.fail(f"real TorchServe needed for parity: {reason}")
    store = tmp_path / "store"
    make_mar(store, "echo", ECHO_HANDLER, work=tmp_path / "e")
    make_war(store, "tokchain", SPEC, FUNCTIONS, work=tmp_path / "w")
    ours = Path(platform.data_dir) / "store"
    for kind in ("model-store", "wf-store"):
        (ours / kind).mkdir(parents=True, exist_ok=True)
        for archive in store.iterdir():
            target = (
                ours / kind / (f"tok_{archive.name}" if kind == "model-store" else archive.name)
            )
            target.write_bytes(archive.read_bytes())
        if kind == "model-store":
            (ours / kind / "echo.mar").write_bytes((store / "echo.mar").read_bytes())
    url = platform.url
    settings = Settings(
        data_dir=str(platform.data_dir),
        torchserve={"token_auth": True, "key_file": str(tmp_path / "our_key_file.json")},
    )
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    mismatches: list[str] = []
    with TorchServePeer(tmp_path / "ts", store, token_auth=True) as peer:
        real_keys = peer.keys()
        auth = {"Authorization": f"Bearer {real_keys['management']}"}
        for path, params in (
            ("/models", {"url": "echo.mar", "model_name": "tokecho", "initial_workers": 1}),
            ("/workflows", {"url": "tokchain.war"}),
        ):
            resp = httpx.post(peer.management_url + path, params=params, headers=auth, timeout=300)
            assert resp.status_code == 200, resp.text
        for path, params in (
            ("/models", {"url": "tok_echo.mar", "model_name": "tokecho", "initial_workers": 1}),
            ("/workflows", {"url": "tokchain.war"}),
        ):
            resp = httpx.post(url + path, params=params, timeout=300)
            assert resp.status_code == 200, resp.text
        try:
            with sessions() as session:
                TorchServeTokenService(session, settings).ensure_keys()
            our_keys = _keys(settings.key_file)
            time.sleep(settings.torchserve.token_cache_ttl_s + 0.2)  # replicas saw "off" last
            for _rotation in range(2):
                for path in ("/predictions/tokecho", "/wfpredict/tokchain"):
                    for key in KEYS:
                        real = httpx.post(
                            peer.inference_url + path,
                            content=b"hi",
                            headers=_header(key, real_keys),
                            timeout=60,
                        )
                        mine = httpx.post(
                            url + path, content=b"hi", headers=_header(key, our_keys), timeout=60
                        )
                        if _shape(real) != _shape(mine) or (
                            real.status_code == 400 and real.content != mine.content
                        ):
                            mismatches.append(
                                f"{path} {key}: real {_shape(real)} ours {_shape(mine)}"
                            )
                # rotate the inference key on both; the old key must stop working
                api = {"Authorization": f"Bearer {real_keys['API']}"}
                assert (
                    httpx.get(
                        peer.management_url + "/token", params={"type": "inference"}, headers=api
                    ).status_code
                    == 200
                )
                with sessions() as session:
                    TorchServeTokenService(session, settings).rotate(
                        "inference", f"Bearer {our_keys['API']}"
                    )
                old_real, old_ours = real_keys["inference"], our_keys["inference"]
                real_keys, our_keys = peer.keys(), _keys(settings.key_file)
                # a new key works at once; the old one at most token_cache_ttl_s longer
                resp = httpx.post(
                    url + "/predictions/tokecho",
                    content=b"hi",
                    headers=_header("inference", our_keys),
                    timeout=60,
                )
                assert resp.status_code == 200, resp.text
                time.sleep(settings.torchserve.token_cache_ttl_s + 0.2)
                for path in ("/predictions/tokecho", "/wfpredict/tokchain"):
                    real = httpx.post(
                        peer.inference_url + path,
                        content=b"hi",
                        headers={"Authorization": f"Bearer {old_real}"},
                    )
                    mine = httpx.post(
                        url + path, content=b"hi", headers={"Authorization": f"Bearer {old_ours}"}
                    )
                    assert real.status_code == mine.status_code == 400
                    assert real.content == mine.content
        finally:
            with sessions() as session:
                TorchServeTokenService(
                    session,
                    settings.model_copy(
                        update={
                            "torchserve": settings.torchserve.model_copy(
                                update={"token_auth": False}
                            )
                        }
                    ),
                ).ensure_keys()
            engine.dispose()
            httpx.delete(url + "/workflows/tokchain", timeout=60)
            httpx.delete(url + "/models/tokecho", timeout=60)
    assert not mismatches, "\n".join(mismatches)
