import json

import pytest

from deployments.contracts.errors import ModelConfigError
from deployments.contracts.placement import PlacementPolicy, deployment_options, not_ready_reason
from deployments.contracts.specs import ModelSpec, load_model_spec
from tests.model_repos import write_add_sub, write_onnx_add, write_torchscript_linear


def test_load_model_spec_reads_python_model(tmp_path):
    write_add_sub(tmp_path, versions=(1, 2))
    spec = load_model_spec(tmp_path / "add_sub", "add_sub")
    assert spec.backend == "python"
    assert spec.metadata_platform == "python"
    assert spec.versions == [1, 2]
    assert spec.served_versions == [2]
    assert spec.dynamic_batching
    assert spec.max_queue_delay_us == 2000
    assert spec.config["input"][0]["dims"] == [4]  # numbers, not strings
    assert spec.config["version_policy"] == {"latest": {"num_versions": 1}}
    meta = spec.metadata()
    assert meta["inputs"][0]["shape"] == [-1, 4]
    assert meta["versions"] == ["2"]


def test_spec_round_trips_through_json(tmp_path):
    write_add_sub(tmp_path)
    spec = load_model_spec(tmp_path / "add_sub", "add_sub")
    again = ModelSpec.from_json(spec.to_json())
    assert again == spec


def test_platform_names_for_torchscript_and_onnx(tmp_path):
    write_torchscript_linear(tmp_path)
    write_onnx_add(tmp_path)
    ts = load_model_spec(tmp_path / "linear_ts", "linear_ts")
    onnx = load_model_spec(tmp_path / "add_onnx", "add_onnx")
    assert (ts.backend, ts.platform, ts.model_filename) == (
        "pytorch",
        "pytorch_libtorch",
        "model.pt",
    )
    assert (onnx.backend, onnx.platform) == ("onnxruntime", "onnxruntime_onnx")


def test_config_name_must_match_directory(tmp_path):
    write_add_sub(tmp_path, name="other")
    (tmp_path / "other").rename(tmp_path / "renamed")
    with pytest.raises(ModelConfigError, match="does not match the model name"):
        load_model_spec(tmp_path / "renamed", "renamed")


def test_unparseable_config_is_a_config_error(tmp_path):
    model = write_add_sub(tmp_path)
    (model / "config.pbtxt").write_text("max_batch_size: [")
    with pytest.raises(ModelConfigError, match=r"failed to parse config.pbtxt"):
        load_model_spec(model, "add_sub")


def test_unsupported_backend_is_named(tmp_path):
    model = write_add_sub(tmp_path)
    (model / "config.pbtxt").write_text('backend: "tensorrt"\n')
    with pytest.raises(ModelConfigError, match="unsupported backend 'tensorrt'"):
        load_model_spec(model, "add_sub")


def test_model_without_versions_is_refused(tmp_path):
    model = write_add_sub(tmp_path)
    (model / "1" / "model.py").unlink()
    (model / "1").rmdir()
    with pytest.raises(ModelConfigError, match="no version is available"):
        load_model_spec(model, "add_sub")


def test_version_dirs_starting_with_zero_are_ignored(tmp_path):
    model = write_add_sub(tmp_path, versions=(1,))
    (model / "01").mkdir()
    assert load_model_spec(model, "add_sub").versions == [1]


def test_version_policies_and_pin(tmp_path):
    model = write_add_sub(tmp_path, versions=(1, 2, 3))
    base = (model / "config.pbtxt").read_text()
    (model / "config.pbtxt").write_text(base + "version_policy: { latest { num_versions: 2 } }")
    assert load_model_spec(model, "add_sub").served_versions == [2, 3]
    (model / "config.pbtxt").write_text(base + "version_policy: { specific { versions: [1, 3] } }")
    assert load_model_spec(model, "add_sub").served_versions == [1, 3]
    assert load_model_spec(model, "add_sub", version_pin=1).served_versions == [1]


def test_config_override_replaces_pbtxt(tmp_path):
    model = write_add_sub(tmp_path)
    override = {"backend": "python", "max_batch_size": 0,
                "input": [{"name": "A", "data_type": "TYPE_INT64", "dims": [-1]}],
                "output": [{"name": "B", "data_type": "TYPE_STRING", "dims": [-1]}]}
    spec = load_model_spec(model, "add_sub", config_override=override)
    assert spec.inputs[0].datatype == "INT64"
    assert spec.outputs[0].datatype == "BYTES"
    with pytest.raises(ModelConfigError):
        load_model_spec(model, "add_sub", config_override=json.dumps({"max_batch_size": "x"}))


def test_gpu_model_gets_gpus_and_reason_without_gpu(tmp_path):
    write_torchscript_linear(tmp_path, kind="KIND_GPU")
    spec = load_model_spec(tmp_path / "linear_ts", "linear_ts")
    opts = deployment_options(spec, PlacementPolicy(cluster_gpus=2))
    assert opts["ray_actor_options"]["num_gpus"] == 1.0
    assert not_ready_reason(spec, PlacementPolicy(cluster_gpus=2)) is None
    reason = not_ready_reason(spec, PlacementPolicy(cluster_gpus=0))
    assert reason
    assert "needs 1 GPU per replica" in reason
    fallback = PlacementPolicy(cluster_gpus=0, gpu_fallback_to_cpu=True)
    assert not_ready_reason(spec, fallback) is None
    assert deployment_options(spec, fallback)["ray_actor_options"]["num_gpus"] == 0


def test_fractional_gpus_and_autoscaling_from_parameters(tmp_path):
    model = write_torchscript_linear(tmp_path, kind="KIND_GPU")
    text = (model / "config.pbtxt").read_text().replace("count: 1", "count: 2")
    text += '\nparameters { key: "ray_num_gpus" value: { string_value: "0.5" } }\n'
    text += 'parameters { key: "ray_max_replicas" value: { string_value: "4" } }\n'
    (model / "config.pbtxt").write_text(text)
    spec = load_model_spec(model, "linear_ts")
    opts = deployment_options(spec, PlacementPolicy(cluster_gpus=1, max_ongoing_requests=32))
    assert opts["ray_actor_options"]["num_gpus"] == 0.5
    assert opts["autoscaling_config"]["min_replicas"] == 2
    assert opts["autoscaling_config"]["max_replicas"] == 4
    assert opts["max_ongoing_requests"] == 32
    fixed = deployment_options(
        spec, PlacementPolicy(cluster_gpus=1), min_replicas=3, max_replicas=3
    )
    assert fixed["num_replicas"] == 3
    assert "autoscaling_config" not in fixed


def test_max_replicas_per_node_parameter_spreads_replicas_strictly(tmp_path):
    model = write_torchscript_linear(tmp_path)
    assert "max_replicas_per_node" not in deployment_options(
        load_model_spec(model, "linear_ts"), PlacementPolicy(cluster_gpus=0)
    )
    text = (model / "config.pbtxt").read_text().replace("count: 1", "count: 2")
    text += '\nparameters { key: "ray_max_replicas_per_node" value: { string_value: "1" } }\n'
    (model / "config.pbtxt").write_text(text)
    opts = deployment_options(load_model_spec(model, "linear_ts"), PlacementPolicy(cluster_gpus=0))
    assert opts["max_replicas_per_node"] == 1
    assert opts["num_replicas"] == 2
