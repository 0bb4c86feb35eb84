"""Token authorization answered by REAL TorchServe 0.12 (token auth on) and by this platform.

The same sequence of requests goes to both; each request names which key it carries (``none``,
``wrong``, one of the three key types, or the inference/management key from before a rotation),
and every status and body must match. The platform side is two control-plane replicas
(``create_app`` twice) on one database and one key file: requests alternate between them, and a
key rotated through one must be the key on the other at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bench.torchserve_peer import TorchServePeer, torchserve_available
from tests.integration.torchserve.builders import ECHO_HANDLER, make_mar
from tests.integration.torchserve.test_token_auth import platform, token_settings

pytestmark = [pytest.mark.compat, pytest.mark.slow]

# (method, path, params, key): key is a key type of key_file.json, "none", "wrong", or
# "old:<type>" (that type's key before the last rotation).
SEQUENCE = [
    ("GET", "/models", {}, "none"),
    ("GET", "/models", {}, "wrong"),
    ("GET", "/models", {}, "inference"),
    ("GET", "/models", {}, "API"),
    ("GET", "/models", {}, "management"),
    ("GET", "/workflows", {}, "none"),
    ("GET", "/workflows", {}, "management"),
    ("POST", "/models", {"url": "echo.mar"}, "none"),
    ("POST", "/models", {"url": "echo.mar"}, "management"),
    ("GET", "/models/echo", {}, "inference"),
    ("PUT", "/models/echo", {"min_worker": "1"}, "wrong"),
    ("GET", "/ping", {}, "none"),
    ("GET", "/ping", {}, "management"),
    ("GET", "/ping", {}, "inference"),
    ("POST", "/predictions/nosuch", {}, "none"),
    ("POST", "/predictions/nosuch", {}, "management"),
    ("POST", "/predictions/nosuch", {}, "inference"),
    ("POST", "/wfpredict/nosuch", {}, "none"),
    ("GET", "/token", {"type": "inference"}, "none"),
    ("GET", "/token", {"type": "inference"}, "management"),
    ("GET", "/token", {"type": "inference"}, "inference"),
    ("GET", "/token", {"type": "other"}, "API"),
    ("GET", "/token", {}, "API"),
    ("GET", "/token", {"type": "inference"}, "API"),
    ("GET", "/ping", {}, "old:inference"),
    ("GET", "/ping", {}, "inference"),
    ("POST", "/token", {"type": "management"}, "API"),
    ("GET", "/models", {}, "old:management"),
    ("GET", "/models", {}, "management"),
    ("DELETE", "/models/echo", {}, "old:management"),
    ("DELETE", "/models/echo", {}, "management"),
    ("GET", "/models", {}, "management"),
]


def _keys(path: Path) -> dict[str, str]:
    return {kind: entry["key"] for kind, entry in json.loads(path.read_text()).items()}


def _header(key: str, current: dict[str, str], old: dict[str, str]) -> dict[str, str]:
    if key == "none":
        return {}
    if key == "wrong":
        return {"Authorization": "Bearer wrongkey"}
    value = old[key[4:]] if key.startswith("old:") else current[key]
    return {"Authorization": f"Bearer {value}"}


def _shape(resp: httpx.Response) -> tuple[int, object, str]:
    try:
        body: object = resp.json()
    except ValueError:
        body = resp.text
    return resp.status_code, body, resp.headers.get("content-type", "").split(";")[0]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_token_authorization_matches_real_torchserve(settings, gateway, tmp_path):
    reason = torchserve_available()
    if reason:
        pytest.fail(f"real TorchServe needed for parity: {reason}")
    store = tmp_path / "archives"
    make_mar(store, "echo", ECHO_HANDLER, work=tmp_path / "e")
    ts = token_settings(settings)
    (ts.store_root / "model-store").mkdir(parents=True, exist_ok=True)
    (ts.store_root / "model-store" / "echo.mar").write_bytes((store / "echo.mar").read_bytes())
    mismatches = []
    with TorchServePeer(tmp_path / "ts", store, token_auth=True) as peer:
        real_file = peer.workdir / "key_file.json"
        async with platform(ts, gateway) as first, platform(ts, gateway) as second:
            replicas = [first, second]
            real_old, ours_old = _keys(real_file), _keys(ts.key_file)
            for index, (method, path, params, key) in enumerate(SEQUENCE):
                real_now, ours_now = _keys(real_file), _keys(ts.key_file)
                management = not path.startswith(("/ping", "/predictions", "/wfpredict"))
                base = peer.management_url if management else peer.inference_url
                real = httpx.request(
                    method,
                    base + path,
                    params=params,
                    headers=_header(key, real_now, real_old),
                    timeout=120,
                )
                mine = await replicas[index % 2].request(
                    method, path, params=params, headers=_header(key, ours_now, ours_old)
                )
                if _shape(real) != _shape(mine):
                    mismatches.append(
                        f"{method} {path} {params} key={key}\n"
                        f"  real {_shape(real)}\n  ours {_shape(mine)}"
                    )
                if real.status_code == 200:  # byte-exact success bodies ("\n" for /token)
                    assert real.content == mine.content, (method, path, params, key)
                if path == "/token" and real.status_code == 200:
                    real_old, ours_old = real_now, ours_now
    assert not mismatches, "\n".join(mismatches)
    assert sum(1 for *_, key in SEQUENCE if key in ("none", "wrong")) >= 8
