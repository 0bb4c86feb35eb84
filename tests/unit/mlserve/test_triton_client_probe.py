"""``triton_client.probe`` never raises: a URL the client cannot even be built for is offline."""

from __future__ import annotations

import pytest

from control_plane.errors import UpstreamUnavailableError
from control_plane.integrations import triton_client


def test_probe_of_a_url_the_client_cannot_parse_is_offline(monkeypatch):
    def refuse(url: str, timeout_s: float) -> object:
        raise ValueError(f"bad url {url}")

    monkeypatch.setattr(triton_client, "_client", refuse)
    assert triton_client.probe("a b:8000") == "offline"


def test_a_call_whose_client_cannot_be_built_is_unreachable_naming_the_server(monkeypatch):
    def refuse(url: str, timeout_s: float) -> object:
        raise ValueError("no")

    monkeypatch.setattr(triton_client, "_client", refuse)
    with pytest.raises(UpstreamUnavailableError) as info:
        triton_client.unload_model("h:1", "m")
    assert "h:1" in str(info.value)
