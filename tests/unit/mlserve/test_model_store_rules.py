"""Pure rules of the model store: safe paths, digests, config conversion, overrides, passwords."""

from __future__ import annotations

import asyncio
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import pytest

from control_plane.errors import BadRequestError, PayloadTooLargeError
from control_plane.services.mlserve.model_config import (
    check_config_name,
    merge_config,
    parse_pbtxt,
    render_pbtxt,
    with_version_policy,
)
from control_plane.services.mlserve.model_files import (
    ByteBudget,
    copy_stream,
    default_place,
    override_files,
    safe_relpath,
    version_dirs,
)
from control_plane.services.mlserve.security import (
    VerifiedCache,
    hash_password,
    new_api_key,
    verify_password,
)
from control_plane.services.mlserve.versions import parse_checks, parse_digest
from deployments.contracts.security import api_key_digest, parse_basic

ADD_SUB = Path(__file__).resolve().parents[3] / "configs" / "models" / "add_sub"


@pytest.mark.parametrize(
    "name", ["", "/etc/passwd", "../x", "a/../../x", "a\\b", "C:/x", "a\x00b", "./..", "/"]
)
def test_unsafe_relative_paths_are_400(name):
    with pytest.raises(BadRequestError):
        safe_relpath(name)


def test_safe_relpath_normalises():
    assert safe_relpath("./1//model.py") == PurePosixPath("1/model.py")
    assert default_place(PurePosixPath("model.onnx")) == PurePosixPath("1/model.onnx")
    assert default_place(PurePosixPath("labels.txt")) == PurePosixPath("labels.txt")
    assert default_place(PurePosixPath("2/model.pt")) == PurePosixPath("2/model.pt")


def test_byte_budget_stops_copying_at_the_limit(tmp_path):
    with pytest.raises(PayloadTooLargeError):
        copy_stream(io.BytesIO(b"x" * 3_000_000), tmp_path / "f", ByteBudget(2_000_000))
    assert copy_stream(io.BytesIO(b"abc"), tmp_path / "g", ByteBudget(3)) == 3


def test_digests_and_checks():
    assert parse_digest("a" * 32).algorithm == "md5"
    assert parse_digest("SHA256:" + "A" * 64).hexdigest == "a" * 64
    for bad in ("sha1:" + "a" * 40, "md5:xyz", "a" * 31, ""):
        with pytest.raises(BadRequestError):
            parse_digest(bad)
    checks = parse_checks('{"w.bin": "' + "b" * 32 + '"}', ["w.bin", "x.bin"])
    assert set(checks) == {"w.bin"}
    with pytest.raises(BadRequestError):
        parse_checks("a" * 32, ["w.bin", "x.bin"])
    with pytest.raises(BadRequestError):
        parse_checks('{"nope": "' + "b" * 32 + '"}', ["w.bin"])


def test_pbtxt_round_trip_keeps_numbers_and_names():
    config = parse_pbtxt((ADD_SUB / "config.pbtxt").read_text())
    assert config["max_batch_size"] == 8
    assert config["input"][0]["dims"] == [4]
    assert parse_pbtxt(render_pbtxt(config)) == config
    merged = merge_config(
        config, {"max_batch_size": 2, "dynamic_batching": {"max_queue_delay_microseconds": 5}}
    )
    assert merged["dynamic_batching"] == {"max_queue_delay_microseconds": 5}
    assert (
        parse_pbtxt(render_pbtxt(merged))["dynamic_batching"]["max_queue_delay_microseconds"] == 5
    )
    assert with_version_policy(config, 3)["version_policy"] == {"specific": {"versions": [3]}}
    with pytest.raises(BadRequestError):
        check_config_name(config, "other")
    with pytest.raises(BadRequestError):
        parse_pbtxt("input { bogus: 1 }")


def test_override_files_push_root_files_and_chosen_versions(tmp_path):
    for rel in (
        "config.pbtxt",
        "labels.txt",
        "1/model.py",
        "2/model.py",
        "2/sub/w.bin",
        "configs/x.pbtxt",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(rel.encode())
    assert version_dirs(tmp_path) == [1, 2]
    assert set(override_files(tmp_path, [2])) == {
        "file:labels.txt",
        "file:2/model.py",
        "file:2/sub/w.bin",
    }
    assert set(override_files(tmp_path, iter([1, 2]))) >= {"file:1/model.py", "file:2/model.py"}


def test_passwords_are_salted_argon2_and_keys_random():
    first, second = hash_password("pw"), hash_password("pw")
    assert first != second
    assert first.startswith("$argon2id$")
    assert verify_password(first, "pw")
    assert not verify_password(first, "PW")
    assert not verify_password("not-a-hash", "pw")
    cache = VerifiedCache(ttl_s=60)
    assert cache.verify(first, "pw")
    assert cache.verify(first, "pw")
    assert not cache.verify(first, "x")
    keys = {new_api_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(k) >= 32 for k in keys)
    assert len(api_key_digest("k")) == 64
    assert parse_basic("Basic YWRtaW46YTpi") == ("admin", "a:b")
    assert parse_basic("Basic !!!") is None
    assert parse_basic("Bearer x") is None


def test_concurrent_misses_for_the_same_credentials_run_argon2_once():
    stored = hash_password("pw")
    cache = VerifiedCache(ttl_s=60)
    start = threading.Barrier(6)

    def check(password: str) -> bool:
        start.wait()
        return cache.verify(stored, password)

    with ThreadPoolExecutor(6) as pool:
        right = [pool.submit(check, "pw") for _ in range(3)]
        wrong = [pool.submit(check, "nope") for _ in range(3)]
        assert [f.result() for f in right] == [True] * 3
        assert [f.result() for f in wrong] == [False] * 3
    assert 2 <= cache.checks <= 4  # one per distinct pair (6 without single flight)
    assert cache.verify(stored, "pw")  # remembered: no further check
    before = cache.checks
    assert not cache.verify(stored, "nope")  # failures are never remembered
    assert cache.checks == before + 1


def test_gateway_password_cache_single_flight():
    from deployments.gateway import PasswordCache

    stored = hash_password("pw")

    async def scenario() -> None:
        cache = PasswordCache()
        answers = await asyncio.gather(*(cache.verify(stored, "pw") for _ in range(5)))
        assert answers == [True] * 5
        assert cache.checks == 1
        assert await asyncio.gather(*(cache.verify(stored, "x") for _ in range(3))) == [False] * 3
        assert cache.checks == 2
        assert not cache.inflight

    asyncio.run(scenario())
