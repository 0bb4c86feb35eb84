"""Token authorization rules (contracts) and the replica-side inference key check."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from deployments.contracts.app_args import TorchServeKeyStoreArgs
from deployments.contracts.token_auth import (
    bearer_key,
    expiration_text,
    generate_key,
    key_digest,
    key_matches,
)
from deployments.ts_auth import InferenceKeyCheck, invalid_key_response


def test_generate_key_makes_eight_url_safe_characters():
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(k) == 8 and k.replace("-", "").replace("_", "").isalnum() for k in keys)


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Bearer abc", "abc"),
        ("Bearer   abc", "abc"),
        ("Bearer\tabc", "abc"),
        ("bearer abc", None),
        ("Bearer abc def", None),
        ("Bearer ", None),
        ("Basic abc", None),
        (None, None),
    ],
)
def test_bearer_key_matches_like_torchserve(header, key):
    assert bearer_key(header) == key


def test_key_matches_refuses_wrong_and_expired_keys():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    digest = key_digest("k")
    assert key_matches("Bearer k", digest, None, now)
    assert key_matches("Bearer k", digest, now + timedelta(seconds=1), now)
    assert not key_matches("Bearer k", digest, now, now)
    assert not key_matches("Bearer x", digest, None, now)
    assert not key_matches("Bearer k", "", None, now)
    naive = (now + timedelta(minutes=1)).replace(tzinfo=None)  # SQLite returns naive UTC
    assert key_matches("Bearer k", digest, naive, now)


def test_expiration_text_has_nanosecond_precision_and_z():
    when = datetime(2026, 12, 1, 9, 49, 57, 55088, tzinfo=UTC)
    assert expiration_text(when) == "2026-12-01T09:49:57.055088000Z"


def test_invalid_key_response_is_torchserves_body():
    resp = invalid_key_response()
    assert resp.status_code == 400
    assert resp.body == (
        b'{\n  "code": 400,\n  "type": "InvalidKeyException",\n  "message": "Token Authorization '
        b'failed. Token either incorrect, expired, or not provided correctly"\n}\n'
    )
    assert json.loads(resp.body)["code"] == 400


@pytest.fixture(name="key_db")
def key_db_fixture(tmp_path):
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE ts_token_keys (key_type VARCHAR(20) PRIMARY KEY, "
                "key_digest VARCHAR(64), expires_at DATETIME, updated_at DATETIME)"
            )
        )
    yield url, engine
    engine.dispose()


def _set(engine, key: str, expires_at: datetime | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ts_token_keys"))
        conn.execute(
            sa.text("INSERT INTO ts_token_keys VALUES ('inference', :d, :e, :u)"),
            {"d": key_digest(key), "e": expires_at, "u": datetime.now(UTC)},
        )


async def test_replica_key_check_follows_the_database(key_db):
    url, engine = key_db
    check = InferenceKeyCheck(TorchServeKeyStoreArgs(database_url=url, ttl_s=0.3))
    # no row: token authorization is off
    assert await check.allowed(None)
    _set(engine, "first")
    # a cached "off" passes every request, so turning authorization on shows after ttl_s
    await asyncio.sleep(0.35)
    assert not await check.allowed(None)
    assert await check.allowed("Bearer first")
    _set(engine, "second")
    # the new key works at once (a mismatch re-reads); the old one at most ttl_s longer
    assert await check.allowed("Bearer second")
    assert not await check.allowed("Bearer first")
    _set(engine, "third", datetime.now(UTC) - timedelta(seconds=1))
    await asyncio.sleep(0.35)
    assert not await check.allowed("Bearer third")


async def test_replica_key_check_fails_closed_when_the_table_is_unreadable(tmp_path):
    url = f"sqlite:///{tmp_path / 'missing-table.db'}"
    check = InferenceKeyCheck(TorchServeKeyStoreArgs(database_url=url, ttl_s=10))
    assert not await check.allowed("Bearer anything")
