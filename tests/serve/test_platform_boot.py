import httpx
import pytest

pytestmark = pytest.mark.ray


def test_platform_answers_healthz_through_serve(platform) -> None:
    resp = httpx.get(platform.url + "/healthz", timeout=10)
    assert resp.status_code == 200
