import io
import json
import tarfile
import zipfile

import pytest

from control_plane.services.torchserve.pagination import paginate
from deployments.backends.torchserve_handler import (
    HandlerError,
    TorchServeHandler,
    decode_param,
    encode_output,
)
from deployments.contracts.archives import (
    ArchiveError,
    read_mar_manifest,
    read_war_manifest,
    safe_extract,
)
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
    with pytest.raises(ArchiveError, match="escapes"):
        safe_extract(bad, tmp_path / "out", 1000)
    assert not (tmp_path / "escape.py").exists()

    tar = tmp_path / "link.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        info = tarfile.TarInfo("link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(ArchiveError, match="not a regular file"):
        safe_extract(tar, tmp_path / "out2", 1000)


def test_safe_extract_enforces_size_limit(tmp_path):
    big = tmp_path / "big.mar"
    with zipfile.ZipFile(big, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("weights.bin", b"\0" * 100_000)
    with pytest.raises(ArchiveError) as err:
        safe_extract(big, tmp_path / "out", 10_000)
    assert err.value.status == 413
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
    with pytest.raises(ArchiveError) as err:
        read_war_manifest(tmp_path)
    assert (err.value.message, err.value.status, err.value.ts_type) == (
        message,
        500,
        "InvalidWorkflowException",
    )


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
    assert (err.value.code, err.value.message) == (503, "Prediction failed")

    mismatched = _load(
        tmp_path, "def handle(d, c):\n    return None if d is None else []\n", "short"
    )
    with pytest.raises(HandlerError, match="number of batch response mismatched"):
        mismatched.predict([{"body": bytearray(b"1")}])


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
