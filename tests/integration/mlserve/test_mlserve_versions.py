"""Versions: plain upload, resumable chunked upload with offset/check, delete rules."""

from __future__ import annotations

import hashlib
import os

import httpx

from tests.integration.mlserve.conftest import ADD_SUB, create_model

MODEL_PY = (ADD_SUB / "1" / "model.py").read_bytes()


async def test_plain_version_upload_list_and_conflicts(admin: httpx.AsyncClient):
    await create_model(admin, "vm")
    resp = await admin.post("/api/models/vm/versions", files=[("Files[]", ("model.py", MODEL_PY))])
    assert resp.status_code == 201, resp.text
    assert resp.json() == {"version": 2, "status": "ok"}
    sha = hashlib.sha256(MODEL_PY).hexdigest()
    resp = await admin.post(
        "/api/models/vm/versions",
        data={"version": "5", "check": f"sha256:{sha}"},
        files=[("files[]", ("model.py", MODEL_PY))],
    )
    assert resp.status_code == 201
    assert resp.json()["version"] == 5
    versions = (await admin.get("/api/models/vm/versions")).json()["versions"]
    assert [(v["version"], v["state"]) for v in versions] == [
        (1, "ready"),
        (2, "ready"),
        (5, "ready"),
    ]
    assert versions[1]["files"] == [{"name": "model.py", "size": len(MODEL_PY)}]
    dup = await admin.post(
        "/api/models/vm/versions", data={"version": "2"}, files=[("files[]", ("model.py", b"x"))]
    )
    assert dup.status_code == 409
    bad = await admin.post(
        "/api/models/vm/versions",
        data={"check": "md5:" + "0" * 32},
        files=[("files[]", ("model.py", MODEL_PY))],
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "checksum_mismatch"
    assert [
        v["version"] for v in (await admin.get("/api/models/vm/versions")).json()["versions"]
    ] == [1, 2, 5]
    unsafe = await admin.post("/api/models/vm/versions", files=[("files[]", ("../x.py", b"x"))])
    assert unsafe.status_code == 400
    assert (await admin.get("/api/models/vm")).json()["data"]["latest_version"] == 5


async def test_chunked_upload_with_offsets_and_check(admin: httpx.AsyncClient):
    await create_model(admin, "chunky")
    payload = os.urandom(3 * 1024 * 1024 + 12345)
    chunks = [payload[i : i + 1024 * 1024] for i in range(0, len(payload), 1024 * 1024)]
    assert len(chunks) >= 3
    offset = 0
    version = None
    for index, chunk in enumerate(chunks):
        data = {"offset": str(offset)}
        if version is not None:
            data["version"] = str(version)
        if index == len(chunks) - 1:
            data["check"] = "md5:" + hashlib.md5(payload).hexdigest()
        if index == 1:
            # a wrong offset answers 409 with the current offset, and writes nothing
            wrong = await admin.post(
                "/api/models/chunky/versions",
                data={**data, "offset": "7"},
                files=[("files[]", ("weights.bin", chunk))],
            )
            assert wrong.status_code == 409, wrong.text
            assert wrong.json()["offset"] == offset
            listed = (await admin.get("/api/models/chunky/versions")).json()["versions"]
            assert [(v["version"], v["state"]) for v in listed] == [(1, "ready"), (2, "uploading")]
        resp = await admin.post(
            "/api/models/chunky/versions", data=data, files=[("files[]", ("weights.bin", chunk))]
        )
        offset += len(chunk)
        if index < len(chunks) - 1:
            assert resp.status_code == 202, resp.text
            assert resp.json()["status"] == "partial"
            assert resp.json()["offset"] == offset
            version = resp.json()["version"]
        else:
            assert resp.status_code == 201, resp.text
            assert resp.json()["status"] == "ok"
    store = admin.app.state.settings.store_root  # type: ignore[attr-defined]
    assert (store / "models" / "chunky" / "2" / "weights.bin").read_bytes() == payload
    versions = (await admin.get("/api/models/chunky/versions")).json()["versions"]
    assert [(v["version"], v["state"]) for v in versions] == [(1, "ready"), (2, "ready")]


async def test_chunked_upload_with_wrong_digest_leaves_no_version(admin: httpx.AsyncClient):
    await create_model(admin, "digest")
    part1, part2 = os.urandom(1000), os.urandom(500)
    resp = await admin.post(
        "/api/models/digest/versions", data={"offset": "0"}, files=[("files[]", ("w.bin", part1))]
    )
    assert resp.status_code == 202
    resp = await admin.post(
        "/api/models/digest/versions",
        data={"offset": "1000", "check": "sha256:" + hashlib.sha256(b"other").hexdigest()},
        files=[("files[]", ("w.bin", part2))],
    )
    assert resp.status_code == 400
    assert resp.json()["code"] == "checksum_mismatch"
    versions = (await admin.get("/api/models/digest/versions")).json()["versions"]
    assert [v["version"] for v in versions] == [1]
    store = admin.app.state.settings.store_root  # type: ignore[attr-defined]
    assert not (store / "models" / "digest" / "2").exists()
    # a fresh upload starts over at offset 0
    resp = await admin.post(
        "/api/models/digest/versions",
        data={"offset": "0", "check": hashlib.sha256(part1).hexdigest()},
        files=[("files[]", ("w.bin", part1))],
    )
    assert resp.status_code == 201
    assert resp.json()["version"] == 2
    bad = await admin.post(
        "/api/models/digest/versions",
        data={"offset": "0", "check": "sha1:abc"},
        files=[("files[]", ("x.bin", b"x"))],
    )
    assert bad.status_code == 400


async def test_chunked_upload_respects_the_size_limit(admin: httpx.AsyncClient):
    await create_model(admin, "limited")
    admin.app.state.settings.store.max_upload_bytes = 1500  # type: ignore[attr-defined]
    ok = await admin.post(
        "/api/models/limited/versions",
        data={"offset": "0"},
        files=[("files[]", ("w", b"a" * 1000))],
    )
    assert ok.status_code == 202
    over = await admin.post(
        "/api/models/limited/versions",
        data={"offset": "1000"},
        files=[("files[]", ("w", b"a" * 1000))],
    )
    assert over.status_code == 413, over.text


async def test_delete_versions(admin: httpx.AsyncClient):
    await create_model(admin, "dv")
    await admin.post("/api/models/dv/versions", files=[("files[]", ("model.py", MODEL_PY))])
    assert (await admin.delete("/api/models/dv/versions/2")).status_code == 200
    assert (await admin.delete("/api/models/dv/versions/2")).status_code == 404
    last = await admin.delete("/api/models/dv/versions/1")
    assert last.status_code == 409
    assert last.json()["code"] == "last_version"
    await admin.post(
        "/api/models/dv/versions", data={"offset": "0"}, files=[("files[]", ("w", b"abc"))]
    )
    assert (await admin.delete("/api/models/dv/versions?version=2")).status_code == 200
    assert [
        v["version"] for v in (await admin.get("/api/models/dv/versions")).json()["versions"]
    ] == [1]
    assert (await admin.delete("/api/models/dv/versions")).status_code == 400
