from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.torchserve.builders import (
    DIAMOND_FUNCTIONS,
    DIAMOND_SPEC,
    ECHO_HANDLER,
    SLEEPY_MODEL,
    make_mar,
    make_war,
)


@pytest.fixture(scope="session", name="archive_cache")
def archive_cache_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Archives built once per session with the real archivers."""
    root = tmp_path_factory.mktemp("ts-archives")
    models = root / "models"
    wfs = root / "wfs"
    return {
        "echo.mar": make_mar(models, "echo", ECHO_HANDLER),
        "echo2.mar": make_mar(root / "v2", "echo", ECHO_HANDLER, version="2.0", work=root / "e2"),
        "sleepy1.mar": make_mar(models, "sleepy1", SLEEPY_MODEL),
        "sleepy2.mar": make_mar(models, "sleepy2", SLEEPY_MODEL),
        "diamond.war": make_war(wfs, "diamond", DIAMOND_SPEC, DIAMOND_FUNCTIONS),
    }


@pytest.fixture(name="stores")
def stores_fixture(settings, archive_cache) -> dict[str, Path]:
    """Model and workflow stores of this test's settings, with the cached archives in place."""
    import shutil

    model_store = settings.store_root / "model-store"
    wf_store = settings.store_root / "wf-store"
    model_store.mkdir(parents=True, exist_ok=True)
    wf_store.mkdir(parents=True, exist_ok=True)
    for name, path in archive_cache.items():
        if name.endswith(".mar") and name != "echo2.mar":
            shutil.copy(path, model_store / name)
        elif name.endswith(".war"):
            shutil.copy(path, wf_store / name)
    shutil.copy(archive_cache["echo2.mar"], model_store / "echo-v2.mar")
    return {"models": model_store, "workflows": wf_store}
