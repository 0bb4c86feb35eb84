"""Config fields the platform does not implement are refused (or warned about), never ignored."""

import pytest

from deployments.contracts.config_fields import unsupported_fields
from deployments.contracts.errors import ModelConfigError
from deployments.contracts.specs import load_model_spec, parse_config_text
from tests.model_repos import write_add_sub


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("sequence_batching { max_sequence_idle_microseconds: 5000000 }", "sequence_batching"),
        ("response_cache { enable: true }", "response_cache"),
        ("optimization { priority: PRIORITY_MAX }", "optimization"),
        ('instance_group [ { count: 1 rate_limiter { priority: 2 } } ]',
         "instance_group.rate_limiter"),
        (
            "dynamic_batching { preferred_batch_size: [ 4 ] }",
            "dynamic_batching.preferred_batch_size",
        ),
        ('input [ { name: "I" data_type: TYPE_FP32 dims: [ 4 ] reshape { shape: [ 2, 2 ] } } ]',
         "input.reshape"),
        ('model_repository_agents { agents [ { name: "checksum" } ] }', "model_repository_agents"),
        ('runtime: "model.so"', "runtime"),
    ],
)
def test_unsupported_fields_are_named(extra, field):
    config = parse_config_text(f'name: "m" backend: "python" {extra}')
    assert field in unsupported_fields(config)


def test_supported_config_has_no_unsupported_fields():
    config = parse_config_text(
        'name: "m" backend: "python" max_batch_size: 8 '
        'input [ { name: "I" data_type: TYPE_FP32 dims: [ 4 ] optional: true } ] '
        "dynamic_batching { max_queue_delay_microseconds: 100 } "
        "instance_group [ { kind: KIND_CPU count: 2 } ] "
        "model_transaction_policy { decoupled: true } "
        'parameters { key: "a" value { string_value: "b" } } '
        'model_warmup [ { name: "w" batch_size: 1 inputs { key: "I" value { data_type: TYPE_FP32 '
        "dims: [ 4 ] zero_data: true } } } ]"
    )
    assert unsupported_fields(config) == []


def test_warmup_input_file_is_unsupported():
    config = parse_config_text(
        'name: "m" model_warmup [ { name: "w" inputs { key: "I" value { data_type: TYPE_FP32 '
        'dims: [ 4 ] input_data_file: "x" } } } ]'
    )
    assert unsupported_fields(config) == ["model_warmup.inputs.input_data_file"]


def test_load_refuses_unsupported_field_naming_it(tmp_path):
    model = write_add_sub(tmp_path)
    config = model / "config.pbtxt"
    config.write_text(config.read_text() + "\nresponse_cache { enable: true }\n")
    with pytest.raises(ModelConfigError, match=r"'response_cache'.*unsupported_config=warn"):
        load_model_spec(model, "add_sub")
    spec = load_model_spec(model, "add_sub", unsupported="warn")
    assert spec.ignored_fields == ["response_cache"]
    assert spec.config["response_cache"] == {"enable": True}
