"""A real S3 endpoint for tests: moto's server (``moto_server``) on a free loopback port.

s3fs talks to it over HTTP exactly as to AWS (signing, multipart, listing); only the storage
behind the API is in memory.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3Server:
    """Where the server listens and what clients need."""

    endpoint: str

    def options(self) -> dict[str, str]:
        """Storage options (fsspec) for s3fs."""
        return {"endpoint_url": self.endpoint}

    def make_bucket(self, name: str) -> str:
        """Create a bucket; returns ``s3://name``."""
        import s3fs

        s3fs.S3FileSystem(endpoint_url=self.endpoint).mkdir(name)
        return f"s3://{name}"


@pytest.fixture(scope="session", name="s3_server")
def s3_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    import os

    os.environ.update(CREDENTIALS)
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    server = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(endpoint, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError(f"moto_server did not start:\n{log.read_text()[-2000:]}")
    yield S3Server(endpoint)
    proc.terminate()
    proc.wait(timeout=10)
