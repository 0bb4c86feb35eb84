"""MLServe integration fixtures: admin credentials and helpers on the in-process app."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest

ADMIN = ("admin", "admin")
ADD_SUB = Path(__file__).resolve().parents[3] / "configs" / "models" / "add_sub"


def add_sub_files(name: str = "add_sub") -> list[tuple[str, tuple[str, bytes]]]:
    """``files[]`` parts of the add_sub example, renamed to ``name``."""
    config = (ADD_SUB / "config.pbtxt").read_text().replace('name: "add_sub"', f'name: "{name}"')
    return [
        ("files[]", ("config.pbtxt", config.encode())),
        ("files[]", ("1/model.py", (ADD_SUB / "1" / "model.py").read_bytes())),
    ]


@pytest.fixture(name="admin")
def admin_fixture(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The app client with the bootstrap admin's Basic credentials."""
    client.auth = ADMIN
    return client


async def create_model(client: httpx.AsyncClient, name: str = "add_sub") -> int:
    resp = await client.post("/api/models", data={"name": name}, files=add_sub_files(name))
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()
