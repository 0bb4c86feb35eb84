"""Repository load refuses config fields the platform does not implement (fake gateway, real DB)."""

import pytest

from control_plane.settings import Settings
from tests.model_repos import write_add_sub


def _repo_with_sequence_batching(client):
    repo = client.app.state.settings.store_root / "models"
    repo.mkdir(parents=True, exist_ok=True)
    model = write_add_sub(repo, name="seq")
    config = model / "config.pbtxt"
    text = config.read_text().replace('name: "add_sub"', 'name: "seq"')
    text = text.split("dynamic_batching")[0]  # Triton refuses both schedulers at once
    config.write_text(text + "\nsequence_batching { max_sequence_idle_microseconds: 5000000 }\n")


async def test_load_with_unsupported_field_is_400_naming_it(client, gateway):
    _repo_with_sequence_batching(client)
    resp = await client.post("/v2/repository/models/seq/load")
    assert resp.status_code == 400, resp.text
    assert "'sequence_batching'" in resp.json()["error"]
    assert "p-v2-seq" not in gateway.apps


class TestWarnMode:
    """``serving.unsupported_config=warn``: the model loads, the field is listed as ignored."""

    @pytest.fixture(name="settings")
    def warn_settings_fixture(self, tmp_path, db_url):
        return Settings(
            data_dir=str(tmp_path / "data"),
            db={"url": db_url},
            serving={"unsupported_config": "warn"},
        )

    async def test_warn_mode_loads_and_records_the_ignored_field(self, client, gateway):
        _repo_with_sequence_batching(client)
        resp = await client.post("/v2/repository/models/seq/load")
        assert resp.status_code == 200, resp.text
        assert '"ignored_fields": ["sequence_batching"]' in gateway.apps["p-v2-seq"].args.spec
