"""The object-store artifact store: publish from the control plane, materialize on a "node".

Against a ``file://`` location and a real S3 API (moto's server through s3fs). A "node" is a
separate cache directory with the control plane's store root deleted, so a model can only
come from the object store.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from control_plane.services.artifact_store import ArtifactStore
from control_plane.settings import Settings
from deployments.backends import load_backend
from deployments.contracts.artifacts import RemoteStore, materialize, resolve_local, tree_token
from deployments.contracts.specs import load_model_spec
from tests.model_repos import write_add_sub
from tests.s3_server import S3Server

pytestmark = pytest.mark.slow


@pytest.fixture(name="remote", params=["file", "s3"])
def remote_fixture(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[str, dict[str, str]]:
    """(url, storage options) of an empty object-store location."""
    if request.param == "file":
        return f"file://{tmp_path / 'bucket'}/platform", {}
    s3: S3Server = request.getfixturevalue("s3_server")
    bucket = s3.make_bucket(f"b-{tmp_path.name.lower().replace('_', '-')[-40:]}")
    return f"{bucket}/platform", s3.options()


def _infer(model_dir: Path, name: str) -> np.ndarray:
    from deployments.backends.base import InferenceRequest

    spec = load_model_spec(model_dir, name)
    backend = load_backend(spec, model_dir, 1, "cpu")
    ones = np.ones((1, 4), np.float32)
    [result] = backend.execute([InferenceRequest(inputs={"INPUT0": ones, "INPUT1": ones})])
    return np.asarray(result["OUTPUT0"])


def test_published_model_is_served_from_a_node_cache_only(
    remote: tuple[str, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, options = remote
    root = tmp_path / "cp-store"
    model = write_add_sub(root / "models", "m")
    store = ArtifactStore(root, url, options)
    args = {"spec": "{}", "model_dir": str(model), "options": {"num_replicas": 1}}

    staged = store.stage(args)
    assert staged["model_dir_uri"] == f"{url}/models/m"
    assert staged["model_dir_token"] == tree_token(model)
    assert staged["store_options"] == options
    assert staged["options"] == {"num_replicas": 1}
    # The control plane's disk is gone; a node with an empty cache still gets the model.
    shutil.rmtree(root)
    monkeypatch.setenv("PLATFORM_ARTIFACT_CACHE", str(tmp_path / "node-cache"))
    local = Path(resolve_local(staged)["model_dir"])
    assert local.is_relative_to(tmp_path / "node-cache")
    assert not (local / ".platform-token").exists()
    np.testing.assert_allclose(_infer(local, "m"), np.full((1, 4), 2.0))
    # Downloaded once: the second resolution is the same directory.
    assert Path(resolve_local(staged)["model_dir"]) == local


def test_a_changed_model_gets_a_new_token_and_cache_dir(
    remote: tuple[str, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, options = remote
    monkeypatch.setenv("PLATFORM_ARTIFACT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "store"
    model = write_add_sub(root / "models", "m")
    store = ArtifactStore(root, url, options)
    first = store.stage({"model_dir": str(model)})
    config = model / "config.pbtxt"
    config.write_text(config.read_text().replace("max_batch_size: 8", "max_batch_size: 4"))
    second = store.stage({"model_dir": str(model)})
    assert first["model_dir_token"] != second["model_dir_token"]
    old, new = Path(resolve_local(first)["model_dir"]), Path(resolve_local(second)["model_dir"])
    assert old != new
    assert "max_batch_size: 4" in (new / "config.pbtxt").read_text()


def test_nested_archive_paths_are_published_and_outside_paths_left_alone(
    remote: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, options = remote
    root = tmp_path / "store"
    archive = root / "model-store" / "echo.mar"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    outside = tmp_path / "elsewhere" / "x.mar"
    args = {
        "nodes": [
            {"archive": str(archive), "model_dir": str(root / "ts-extracted" / "never-made")},
            {"archive": str(outside)},
        ]
    }
    staged = ArtifactStore(root, url, options).stage(args)
    first, second = staged["nodes"]
    assert first["archive_uri"] == f"{url}/model-store/echo.mar"
    assert first["model_dir_uri"] == f"{url}/ts-extracted/never-made"
    assert "archive_uri" not in second
    node = materialize(first["archive_uri"], first["archive_token"], options)
    assert node.read_bytes() == archive.read_bytes()
    # Never published (not extracted yet): the cache path is handed back for the replica to fill.
    missing = materialize(first["model_dir_uri"], first["model_dir_token"], options)
    assert not missing.exists()


def test_fetch_mirrors_what_an_operator_put_in_the_object_store(
    remote: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, options = remote
    upload = write_add_sub(tmp_path / "operator", "from_bucket")
    RemoteStore(url, options).publish(upload, "models/from_bucket")
    store = ArtifactStore(tmp_path / "cp", url, options)
    assert "from_bucket" in store.list_dirs("models")
    assert store.fetch("models/from_bucket")
    assert (tmp_path / "cp" / "models" / "from_bucket" / "1" / "model.py").is_file()
    assert not store.fetch("models/nowhere")


@pytest.fixture(name="settings")
def s3_settings_fixture(tmp_path: Path, db_url: str, s3_server: S3Server) -> Settings:
    bucket = s3_server.make_bucket(f"cp-{tmp_path.name.lower().replace('_', '-')[-40:]}")
    return Settings(
        data_dir=str(tmp_path / "data"),
        db={"url": db_url},
        store={"url": f"{bucket}/store", "options": s3_server.options()},
    )


async def test_v2_load_of_a_model_only_in_s3_deploys_it_from_s3(
    client: httpx.AsyncClient, settings: Settings, gateway, tmp_path: Path
) -> None:
    upload = write_add_sub(tmp_path / "operator", "s3_only")
    remote = RemoteStore(settings.store.url, settings.store.options)
    remote.publish(upload, "models/s3_only")

    index = (await client.post("/v2/repository/index", json={})).json()
    assert {"name": "s3_only"} in [{"name": m["name"]} for m in index]
    resp = await client.post("/v2/repository/models/s3_only/load", json={})
    assert resp.status_code == 200, resp.text
    args = gateway.apps["p-v2-s3_only"].args_json()
    assert args["model_dir_uri"] == f"{settings.store.url}/models/s3_only"
    assert json.loads(args["spec"])["name"] == "s3_only"
    assert args["store_options"] == settings.store.options


async def test_mlserve_store_is_mirrored_to_s3_and_read_back_by_another_replica(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    from tests.integration.mlserve.conftest import ADMIN, add_sub_files

    client.auth = ADMIN
    remote = RemoteStore(settings.store.url, settings.store.options)
    files = add_sub_files("mirrored")
    created = await client.post("/api/models", data={"name": "mirrored"}, files=files)
    assert created.status_code == 201, created.text
    assert remote.exists("models/mirrored/1/model.py")
    upload = [("files[]", ("model.py", b"print('v2')\n"))]
    assert (await client.post("/api/models/mirrored/versions", files=upload)).status_code == 201
    assert remote.exists("models/mirrored/2/model.py")
    assert (await client.delete("/api/models/mirrored/versions/2")).status_code == 200
    assert not remote.exists("models/mirrored/2/model.py")

    # Another control-plane replica (no shared disk) serves the model's config from S3.
    local = settings.store_root / "models" / "mirrored"
    shutil.rmtree(local)
    detail = await client.get("/api/models/mirrored")
    assert detail.status_code == 200, detail.text
    assert (local / "config.pbtxt").is_file()

    assert (await client.delete("/api/models/mirrored")).status_code == 200
    assert not remote.exists("models/mirrored")
