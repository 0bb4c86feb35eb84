import os
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.ray


def test_platform_answers_healthz_through_serve(platform) -> None:
    resp = httpx.get(platform.url + "/healthz", timeout=10)
    assert resp.status_code == 200


def _haproxy_configs() -> list[str]:
    """The config files of the HAProxy processes running on this machine."""
    configs = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0].endswith(b"haproxy") or b"-f" not in argv:
            continue
        path = argv[argv.index(b"-f") + 1].decode()
        try:
            configs.append(Path(path).read_text())
        except OSError:
            continue
    return configs


@pytest.mark.skipif(
    os.environ.get("PLATFORM_FAST_INGRESS", "1") != "1", reason="Serve's Python proxy: no HAProxy"
)
def test_serve_haproxy_holds_requests_whole_for_a_replay(platform) -> None:
    """Ray's HAProxy runs with the replay and the buffered request (tests/conftest.py)."""
    ours = [c for c in _haproxy_configs() if f":{platform.port}\n" in c and "http_frontend" in c]
    assert ours, "no HAProxy config binds the platform's port"
    defaults = ours[0].split("\ndefaults\n", 1)[1].split("\nfrontend ", 1)[0]
    assert "retry-on conn-failure empty-response\n" in defaults
    assert "\n    option http-buffer-request\n" in defaults
