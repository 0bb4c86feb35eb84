import io
import json
import tarfile
import zipfile

import pytest

from control_plane.services.torchserve.pagination import paginate
from deployments.backends.torchserve_handler import (
    TorchServeHandler,
    decode_param,
    encode_output,
)
from deployments.contracts.archives import (
    ArchiveRequestError,
    ArchiveTooLargeError,
    InvalidArchiveError,
    UnsafeArchiveError,
    read_mar_manifest,
    read_war_manifest,
    safe_extract,
)
from deployments.contracts.errors import HandlerError, HandlerPredictionError
from tests.integration.torchserve.builders import (
    CLASS_HANDLER,
    ECHO_HANDLER,
    FAILING_HANDLER,
    make_mar,
    make_war,
)


def test_safe_extract_rejects_traversal(tmp_path):
    bad = tmp_path / "bad.war"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../escape.py", "x")
    with pytest.raises(UnsafeArchiveError, match="escapes"):
        safe_extract(bad, tmp_path / "out", 1000)
    assert not (tmp_path / "escape.py").exists()

    tar = tmp_path / "link.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        info = tarfile.TarInfo("link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="not a regular file"):
        safe_extract(tar, tmp_path / "out2", 1000)


def test_safe_extract_enforces_size_limit(tmp_path):
    big = tmp_path / "big.mar"
    with zipfile.ZipFile(big, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("weights.bin", b"\0" * 100_000)
    with pytest.raises(ArchiveTooLargeError) as err:
        safe_extract(big, tmp_path / "out", 10_000)
    assert not hasattr(err.value, "status")  # statuses are decided by each surface
    assert (
        safe_extract(big, tmp_path / "ok", 200_000).joinpath("weights.bin").stat().st_size
        == 100_000
    )


def test_real_archivers_produce_readable_manifests(tmp_path):
    mar = make_mar(tmp_path / "store", "echo", ECHO_HANDLER, version="2.0")
    out = safe_extract(mar, tmp_path / "mar", 10**7)
    manifest = read_mar_manifest(out)
    assert (manifest.model_name, manifest.model_version, manifest.handler) == (
        "echo",
        "2.0",
        "handler.py",
    )
    assert read_mar_manifest(out, "renamed").model_name == "renamed"

    war = make_war(
        tmp_path / "wf", "flow", "models: {}\ndag:\n  a: []\n", "def a(d, c):\n    return d\n"
    )
    wdir = safe_extract(war, tmp_path / "war", 10**7)
    wm = read_war_manifest(wdir)
    assert (wm.workflow_name, wm.spec_file, wm.handler) == (
        "flow",
        "spec.yaml",
        "workflow_handler.py",
    )


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({}, "Missing Workflow entry in manifest file."),
        ({"workflow": {}}, "Workflow name is not defined."),
        ({"workflow": {"workflowName": "w"}}, "Workflow archive version is not defined."),
        (
            {"workflow": {"workflowName": "w"}, "archiverVersion": "1"},
            "Workflow archive createdOn is not defined.",
        ),
    ],
)
def test_war_manifest_validation_messages(tmp_path, manifest, message):
    (tmp_path / "WAR-INF").mkdir()
    (tmp_path / "WAR-INF" / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidArchiveError) as err:
        read_war_manifest(tmp_path)
    assert (err.value.message, err.value.ts_type) == (message, "InvalidWorkflowException")


def test_mar_manifest_tells_a_wrong_request_from_an_unusable_archive(tmp_path):
    (tmp_path / "MAR-INF").mkdir()
    manifest = tmp_path / "MAR-INF" / "MANIFEST.json"
    manifest.write_text(json.dumps({"model": {"handler": "h.py"}}))
    with pytest.raises(ArchiveRequestError, match=r"Model name is not defined\."):
        read_mar_manifest(tmp_path)
    manifest.write_text(json.dumps({"model": {"modelName": "m"}}))
    with pytest.raises(InvalidArchiveError, match=r"Model handler is not defined\.") as err:
        read_mar_manifest(tmp_path)
    assert err.value.ts_type == "InvalidModelException"
    (tmp_path / "junk.mar").write_bytes(b"not a zip")
    with pytest.raises(InvalidArchiveError, match="not a valid archive"):
        safe_extract(tmp_path / "junk.mar", tmp_path / "out", 1000)


def test_decode_and_encode_follow_torchserve_backend():
    assert decode_param(b'{"a": 1}', "application/json") == {"a": 1}
    assert decode_param(b"hi", "text/plain; charset=utf-8") == "hi"
    assert decode_param(b"\x00", "application/octet-stream") == bytearray(b"\x00")
    assert encode_output({"a": 1}) == json.dumps({"a": 1}, indent=2).encode()
    assert encode_output("é") == "é".encode()
    assert encode_output(b"raw") == b"raw"
    import torch

    restored = torch.load(io.BytesIO(encode_output(torch.tensor([1.0, 2.0]))))
    assert restored.tolist() == [1.0, 2.0]


def _load(tmp_path, source, name="m"):
    mar = make_mar(tmp_path / "store", name, source)
    out = safe_extract(mar, tmp_path / f"x-{name}", 10**7)
    return TorchServeHandler(name, out, "handler.py", manifest=read_mar_manifest(out).raw)


def test_function_handler_runs_through_ts_context(tmp_path):
    handler = _load(tmp_path, ECHO_HANDLER)
    outputs = handler.predict([{"body": bytearray(b"hello")}, {"data": "x"}])
    assert [json.loads(o.body) for o in outputs] == [
        {"model": "m", "echo": "hello", "request_id": True},
        {"model": "m", "echo": "x", "request_id": True},
    ]


def test_class_handler_sets_content_type(tmp_path):
    handler = _load(tmp_path, CLASS_HANDLER, "dbl")
    (out,) = handler.predict([{"body": bytearray(b"21")}])
    assert out.body == b"42.0"
    assert out.content_type == "text/plain"


def test_handler_errors_map_to_torchserve_codes(tmp_path):
    handler = _load(tmp_path, FAILING_HANDLER, "bad")
    with pytest.raises(HandlerError) as err:
        handler.predict([{"body": bytearray(b"1")}])
    assert type(err.value) is HandlerError
    assert err.value.message == "Prediction failed"

    mismatched = _load(
        tmp_path, "def handle(d, c):\n    return None if d is None else []\n", "short"
    )
    with pytest.raises(HandlerError, match="number of batch response mismatched"):
        mismatched.predict([{"body": bytearray(b"1")}])

    chosen = _load(
        tmp_path,
        "from ts.utils.util import PredictionException\n"
        "def handle(d, c):\n"
        "    if d is None:\n        return None\n"
        "    raise PredictionException('not today', 418)\n",
        "chosen",
    )
    with pytest.raises(HandlerPredictionError) as refused:
        chosen.predict([{"body": bytearray(b"1")}])
    assert (refused.value.message, refused.value.error_code) == ("not today", 418)


@pytest.mark.parametrize(
    ("limit", "token", "page", "next_token"),
    [
        (None, None, ["a", "b", "c", "d", "e"], None),
        ("2", None, ["a", "b"], "2"),
        ("2", "2", ["c", "d"], "4"),
        ("2", "4", ["e"], None),
        ("5", "0", ["a", "b", "c", "d", "e"], "5"),
        ("x", "-3", ["a", "b", "c", "d", "e"], None),
        ("1000", "9", [], None),
    ],
)
def test_paginate_like_torchserve(limit, token, page, next_token):
    assert paginate(["a", "b", "c", "d", "e"], limit, token) == (page, next_token)
