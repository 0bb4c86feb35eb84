"""Unit tier: anything that starts Ray fails loudly (cf. Ray's disallow_ray_init)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def disallow_ray_init(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    def _forbidden(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("unit tests must not start Ray; move this test to tests/serve")

    monkeypatch.setattr(ray, "init", _forbidden)
