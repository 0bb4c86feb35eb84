"""Model store: multipart/archive uploads, safety (traversal, links, size), patch, delete."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import httpx

from tests.integration.mlserve.conftest import ADD_SUB, add_sub_files, create_model, zip_bytes

CONFIG = (ADD_SUB / "config.pbtxt").read_bytes()
MODEL_PY = (ADD_SUB / "1" / "model.py").read_bytes()


def _store(client: httpx.AsyncClient) -> Path:
    return client.app.state.settings.store_root  # type: ignore[attr-defined]


def _all_files(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*") if p.is_file()}


async def test_create_model_from_files_lays_out_triton_repository(admin: httpx.AsyncClient):
    model_id = await create_model(admin, "add_sub")
    model_dir = _store(admin) / "models" / "add_sub"
    assert (model_dir / "config.pbtxt").is_file()
    assert (model_dir / "1" / "model.py").is_file()
    by_id = (await admin.get(f"/api/models/{model_id}")).json()["data"]
    by_name = (await admin.get("/api/models/add_sub")).json()["data"]
    assert by_id["id"] == by_name["id"] == model_id
    assert by_id["versions"] == [1]
    assert by_id["latest_version"] == 1
    assert by_id["config"]["max_batch_size"] == 8
    assert by_id["config"]["input"][0]["dims"] == [4]
    assert by_id["state"] == "UNAVAILABLE"
    assert by_id["tritons"] == []
    listed = (await admin.get("/api/models")).json()["models"]
    assert [m["name"] for m in listed] == ["add_sub"]
    # a bare file name goes to version 1, config at the root
    resp = await admin.post(
        "/api/models",
        data={"name": "bare"},
        files=[
            ("files[]", ("config.pbtxt", CONFIG.replace(b"add_sub", b"bare"))),
            ("files[]", ("model.py", MODEL_PY)),
        ],
    )
    assert resp.status_code == 201, resp.text
    assert (_store(admin) / "models" / "bare" / "1" / "model.py").is_file()
    # a directory upload: every part under "<model>/", the name taken from the directory
    resp = await admin.post(
        "/api/models",
        files=[
            ("files[]", ("dirup/config.pbtxt", CONFIG.replace(b"add_sub", b"dirup"))),
            ("files[]", ("dirup/1/model.py", MODEL_PY)),
        ],
    )
    assert resp.status_code == 201, resp.text
    assert (_store(admin) / "models" / "dirup" / "1" / "model.py").is_file()


async def test_create_model_from_zip_and_tar_archives(admin: httpx.AsyncClient):
    archive = zip_bytes(
        {
            "zipped/config.pbtxt": CONFIG.replace(b"add_sub", b"zipped"),
            "zipped/1/model.py": MODEL_PY,
        }
    )
    resp = await admin.post("/api/models", files=[("files[]", ("zipped.zip", archive))])
    assert resp.status_code == 201, resp.text
    assert (await admin.get("/api/models/zipped")).status_code == 200
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in {
            "config.pbtxt": CONFIG.replace(b"add_sub", b"tarred"),
            "1/model.py": MODEL_PY,
            "2/model.py": MODEL_PY,
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    resp = await admin.post(
        "/api/models", data={"name": "tarred"}, files=[("files[]", ("m.tar.gz", buf.getvalue()))]
    )
    assert resp.status_code == 201, resp.text
    assert (await admin.get("/api/models/tarred")).json()["data"]["versions"] == [1, 2]


def _symlink_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.pbtxt", CONFIG)
        link = zipfile.ZipInfo("1/model.py")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    return buf.getvalue()


def _tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("config.pbtxt")
        info.size = len(CONFIG)
        tf.addfile(info, io.BytesIO(CONFIG))
        tf.addfile(member, io.BytesIO(data) if data else None)
    return buf.getvalue()


async def test_unsafe_uploads_are_refused_and_write_nothing_outside(
    admin: httpx.AsyncClient, tmp_path: Path
):
    before = _all_files(tmp_path)
    sym = tarfile.TarInfo("1/model.py")
    sym.type, sym.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hard = tarfile.TarInfo("1/model.py")
    hard.type, hard.linkname = tarfile.LNKTYPE, "config.pbtxt"
    slip = tarfile.TarInfo("../../escaped.py")
    slip.size = 4
    cases = {
        "dotdot file": [
            ("files[]", ("config.pbtxt", CONFIG)),
            ("files[]", ("../escaped.py", b"x")),
        ],
        "nested dotdot": [
            ("files[]", ("config.pbtxt", CONFIG)),
            ("files[]", ("1/../../escaped.py", b"x")),
        ],
        "absolute": [("files[]", ("config.pbtxt", CONFIG)), ("files[]", ("/tmp/escaped.py", b"x"))],
        "zip slip": [
            ("files[]", ("m.zip", zip_bytes({"config.pbtxt": CONFIG, "../../escaped.py": b"x"})))
        ],
        "zip absolute": [
            ("files[]", ("m.zip", zip_bytes({"config.pbtxt": CONFIG, "/tmp/escaped.py": b"x"})))
        ],
        "zip symlink": [("files[]", ("m.zip", _symlink_zip()))],
        "tar symlink": [("files[]", ("m.tar.gz", _tar_with(sym)))],
        "tar hardlink": [("files[]", ("m.tar.gz", _tar_with(hard)))],
        "tar slip": [("files[]", ("m.tar.gz", _tar_with(slip, b"evil")))],
    }
    for case, files in cases.items():
        resp = await admin.post("/api/models", data={"name": "evil"}, files=files)
        assert resp.status_code == 400, (case, resp.text)
        assert resp.json()["code"] == "unsafe_path", case
    after = _all_files(tmp_path)
    new = {f for f in after - before if "/store/models/" in f or "escaped" in f}
    assert not new, new
    assert not (_store(admin) / "models" / "evil").exists()
    assert (await admin.get("/api/models")).json()["models"] == []


async def test_upload_over_the_size_limit_is_413(admin: httpx.AsyncClient):
    admin.app.state.settings.store.max_upload_bytes = 2000  # type: ignore[attr-defined]
    big = [("files[]", ("config.pbtxt", CONFIG)), ("files[]", ("1/model.py", b"#" * 5000))]
    resp = await admin.post("/api/models", data={"name": "big"}, files=big)
    assert resp.status_code == 413, resp.text
    # a zip bomb-ish archive: small compressed, large uncompressed
    bomb = zip_bytes({"config.pbtxt": CONFIG, "1/model.py": b"\0" * 200_000})
    assert len(bomb) < 2000
    resp = await admin.post(
        "/api/models", data={"name": "bomb"}, files=[("files[]", ("b.zip", bomb))]
    )
    assert resp.status_code == 413, resp.text
    assert not (_store(admin) / "models" / "big").exists()
    assert not (_store(admin) / "models" / "bomb").exists()


async def test_model_validation_errors(admin: httpx.AsyncClient):
    async def post(name, files):
        return await admin.post("/api/models", data={"name": name} if name else {}, files=files)

    assert (await post("noconf", [("files[]", ("1/model.py", MODEL_PY))])).json()[
        "code"
    ] == "config_required"
    mismatch = await post("other", add_sub_files("add_sub"))
    assert mismatch.status_code == 400
    assert "must match" in mismatch.json()["error"]
    resp = await post(
        "nover", [("files[]", ("config.pbtxt", CONFIG.replace(b"add_sub", b"nover")))]
    )
    assert resp.status_code == 400
    assert resp.json()["code"] == "no_version"
    assert (await post("bad name!", add_sub_files("x"))).status_code == 400
    bad_config = [
        ("files[]", ("config.pbtxt", b"this is { not pbtxt")),
        ("files[]", ("1/model.py", MODEL_PY)),
    ]
    assert (await post("badcfg", bad_config)).json()["code"] == "invalid_config"
    assert (await admin.post("/api/models", data={"name": "empty"})).status_code == 400
    await create_model(admin, "dup")
    assert (await post("dup", add_sub_files("dup"))).status_code == 409
    assert (await admin.get("/api/models/404404")).status_code == 404


async def test_patch_config_root_files_and_delete(admin: httpx.AsyncClient):
    model_id = await create_model(admin, "patched")
    resp = await admin.patch(
        f"/api/models/{model_id}", json={"config": {"max_batch_size": 4}, "description": "d"}
    )
    assert resp.status_code == 200, resp.text
    data = (await admin.get("/api/models/patched")).json()["data"]
    assert data["config"]["max_batch_size"] == 4
    assert data["description"] == "d"
    assert (
        "max_batch_size: 4" in (_store(admin) / "models" / "patched" / "config.pbtxt").read_text()
    )
    resp = await admin.patch("/api/models/patched", files=[("files[]", ("labels.txt", b"a\nb\n"))])
    assert resp.status_code == 200, resp.text
    assert (_store(admin) / "models" / "patched" / "labels.txt").read_text() == "a\nb\n"
    resp = await admin.patch("/api/models/patched", files=[("files[]", ("1/model.py", b"x"))])
    assert resp.status_code == 400
    assert (
        await admin.patch("/api/models/patched", json={"config": {"no_such_field": 1}})
    ).status_code == 400
    assert (await admin.patch("/api/models/patched", json={"name": "renamed"})).status_code == 200
    assert (_store(admin) / "models" / "renamed" / "1" / "model.py").is_file()
    assert 'name: "renamed"' in (_store(admin) / "models" / "renamed" / "config.pbtxt").read_text()
    assert (await admin.delete("/api/models/renamed")).status_code == 200
    assert not (_store(admin) / "models" / "renamed").exists()
    assert (await admin.get(f"/api/models/{model_id}")).status_code == 404
