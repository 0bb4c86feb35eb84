"""The management API answered by REAL TorchServe 0.12 and by this platform, call for call.

Both get the same archives (made by the real archivers) and the same sequence of requests; the
status codes and the exact response bodies must match.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import httpx
import pytest

from bench.torchserve_peer import TorchServePeer, torchserve_available
from tests.integration.torchserve.builders import (
    DIAMOND_FUNCTIONS,
    DIAMOND_SPEC,
    ECHO_HANDLER,
    SLEEPY_MODEL,
    make_mar,
    make_war,
)

pytestmark = [pytest.mark.compat, pytest.mark.slow]

MANIFEST = {
    "createdOn": "01/01/2024 00:00:00",
    "archiverVersion": "0.2.15",
    "workflow": {"workflowName": "bad", "specFile": "spec.yaml", "handler": "h.py"},
}


def _war(path: Path, manifest: dict, files: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("WAR-INF/MANIFEST.json", json.dumps(manifest))
        for name, text in files.items():
            zf.writestr(name, text)


@pytest.fixture(scope="module", name="archives")
def archives_fixture(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parity")
    store = root / "store"
    make_mar(store, "echo", ECHO_HANDLER, work=root / "e")
    make_mar(store, "sleepy1", SLEEPY_MODEL, work=root / "s1")
    make_mar(store, "sleepy2", SLEEPY_MODEL, work=root / "s2")
    make_war(store, "diamond", DIAMOND_SPEC, DIAMOND_FUNCTIONS, work=root / "d")
    handler = (
        "def a(d, c):\n    return d\n\ndef b(d, c):\n    return d\n\ndef c(d, c2):\n    return d\n"
    )
    _war(
        store / "cycle.war",
        MANIFEST,
        {"spec.yaml": "models: {}\ndag:\n  a: [b]\n  b: [c]\n  c: [b]\n", "h.py": handler},
    )
    _war(
        store / "selfloop.war",
        MANIFEST,
        {"spec.yaml": "models: {}\ndag:\n  a: [a]\n", "h.py": handler},
    )
    _war(
        store / "twostarts.war",
        MANIFEST,
        {"spec.yaml": "models: {}\ndag:\n  a: [c]\n  b: [c]\n", "h.py": handler},
    )
    _war(store / "badyaml.war", MANIFEST, {"spec.yaml": "models: [\n", "h.py": handler})
    no_version = {k: v for k, v in MANIFEST.items() if k != "archiverVersion"}
    _war(
        store / "noversion.war",
        no_version,
        {"spec.yaml": "models: {}\ndag:\n  a: []\n", "h.py": handler},
    )
    return store


SEQUENCE = [
    ("GET", "/ping", {}),
    ("POST", "/workflows", {}),
    ("POST", "/workflows", {"url": "InvalidUrl"}),
    ("POST", "/workflows", {"url": "../fake.war"}),
    ("POST", "/workflows", {"url": "diamond.war"}),
    ("POST", "/workflows", {"url": "diamond.war"}),
    ("GET", "/workflows/diamond", {}),
    ("POST", "/workflows", {"url": "diamond.war", "workflow_name": "copy"}),
    ("GET", "/workflows", {}),
    ("GET", "/workflows", {"limit": "1"}),
    ("GET", "/workflows", {"limit": "1", "next_page_token": "1"}),
    ("GET", "/workflows", {"limit": "2"}),
    ("GET", "/workflows/nope", {}),
    ("DELETE", "/workflows/nope", {}),
    ("PUT", "/workflows", {}),
    ("POST", "/workflows", {"url": "cycle.war"}),
    ("POST", "/workflows", {"url": "selfloop.war"}),
    ("POST", "/workflows", {"url": "twostarts.war"}),
    ("POST", "/workflows", {"url": "badyaml.war"}),
    ("POST", "/workflows", {"url": "noversion.war"}),
    ("POST", "/models", {}),
    ("POST", "/models", {"url": "missing.mar"}),
    ("POST", "/models", {"url": "echo.mar", "initial_workers": "1"}),
    ("POST", "/models", {"url": "echo.mar"}),
    ("POST", "/models", {"url": "echo.mar", "model_name": "lazy"}),
    ("GET", "/models", {}),
    ("GET", "/models", {"limit": "2"}),
    ("GET", "/models", {"limit": "2", "next_page_token": "2"}),
    ("GET", "/models/nope", {}),
    ("PUT", "/models/echo", {"min_worker": "2", "max_worker": "1"}),
    ("PUT", "/models/nope", {"min_worker": "1"}),
    ("PUT", "/models/echo/9.9/set-default", {}),
    ("PUT", "/models/echo/1.0/set-default", {}),
    ("DELETE", "/workflows/copy", {}),
    ("DELETE", "/workflows/diamond", {}),
    ("DELETE", "/models/lazy", {}),
    ("DELETE", "/models/echo", {}),
    ("GET", "/models", {}),
    ("GET", "/workflows", {}),
]


def _normalise(resp: httpx.Response) -> tuple[int, object]:
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, resp.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_management_api_matches_real_torchserve(client, settings, archives, tmp_path):
    reason = torchserve_available()
    if reason:
        pytest.fail(f"real TorchServe needed for parity: {reason}")
    for kind in ("model-store", "wf-store"):
        target = settings.store_root / kind
        target.mkdir(parents=True, exist_ok=True)
        for archive in archives.iterdir():
            shutil.copy(archive, target / archive.name)
    ours, theirs = [], []
    with TorchServePeer(tmp_path / "ts", archives) as peer:
        for method, path, params in SEQUENCE:
            base = peer.inference_url if path == "/ping" else peer.management_url
            real = httpx.request(method, base + path, params=params, timeout=300)
            mine = await client.request(method, path, params=params)
            theirs.append((method, path, params, *_normalise(real)))
            ours.append((method, path, params, *_normalise(mine)))
            if real.status_code == 200:
                assert real.text == mine.text, (method, path, params)  # byte-exact pretty JSON
    mismatches = [(o, t) for o, t in zip(ours, theirs, strict=True) if o != t]
    assert not mismatches, "\n".join(f"ours  {o}\ntheirs {t}" for o, t in mismatches)
