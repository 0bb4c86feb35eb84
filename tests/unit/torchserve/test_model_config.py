"""model-config.yaml keys: validation and what the platform does with each."""

from __future__ import annotations

import pytest

from deployments.contracts.ts_model_config import (
    KEY_STATUS,
    ModelConfigError,
    TorchServeModelConfig,
    parse_model_config,
)


def test_parse_model_config_reads_honoured_keys():
    config = parse_model_config(
        {
            "minWorkers": 1,
            "maxWorkers": 3,
            "batchSize": 4,
            "maxBatchDelay": 0,
            "responseTimeout": 5,
            "startupTimeout": 30,
            "jobQueueSize": 10,
            "deviceType": "cpu",
            "maxRetryTimeoutInSec": 60,
            "useVenv": True,
            "handler": {"anything": 1},
        }
    )
    assert config == TorchServeModelConfig(1, 3, 4, 0, 5, 30, 10, "cpu")
    assert parse_model_config({"deviceType": "GPU", "deviceIds": [0, 1]}).device_type == "gpu"
    assert parse_model_config(None) == TorchServeModelConfig()


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (
            {"deviceType": "tpu"},
            "Got 'tpu' for deviceType in model-config.yaml; must be cpu or gpu",
        ),
        ({"deviceType": "neuron"}, "the platform places cpu or gpu"),
        ({"parallelType": "pp"}, "parallelism"),
        ({"parallelLevel": 2}, "parallelism"),
        (
            {"responseTimeout": -1},
            "Got -1 for responseTimeout in model-config.yaml; must be at least 1",
        ),
        ({"startupTimeout": 0}, "startupTimeout"),
        ({"maxRetryTimeoutInSec": -5}, "maxRetryTimeoutInSec"),
        ({"batchSize": 0}, "batchSize"),
        (
            {"jobQueueSize": "ten"},
            "Got 'ten' for jobQueueSize in model-config.yaml; must be an integer",
        ),
        ({"minWorkers": 3, "maxWorkers": 1}, "maxWorkers 1 < minWorkers 3"),
        ({"maxBatchDelay": True}, "maxBatchDelay"),
    ],
)
def test_parse_model_config_refuses_bad_values_naming_the_key(raw, needle):
    with pytest.raises(ModelConfigError) as info:
        parse_model_config(raw)
    assert needle in str(info.value)


def test_every_documented_key_has_a_status_and_a_reason():
    for key, (status, reason) in KEY_STATUS.items():
        assert status in ("honoured", "refused", "ignored"), key
        assert reason, key


def test_assigned_gpu_is_none_outside_a_gpu_replica():
    from deployments.ts_model import assigned_gpu, deployment_options

    assert assigned_gpu() is None
    assert deployment_options(1, 1, 64)["ray_actor_options"] == {"num_cpus": 0}
    options = deployment_options(1, 2, 64, 3, 0.25)
    assert options["ray_actor_options"] == {"num_cpus": 0, "num_gpus": 0.25}
    assert options["max_queued_requests"] == 3


# Every key TorchServe 0.12's ModelConfig.java parses (its `case "<key>"` list) plus `handler`.
TORCHSERVE_012_KEYS = {
    "asyncCommunication", "batchSize", "clientTimeoutInMills", "continuousBatching", "deviceIds",
    "deviceType", "jobQueueSize", "maxBatchDelay", "maxNumSequence", "maxRetryTimeoutInSec",
    "maxSequenceJobQueueSize", "maxWorkers", "minWorkers", "nnodes", "parallelLevel",
    "parallelType", "responseTimeout", "sequenceBatching", "sequenceMaxIdleMSec",
    "sequenceTimeoutMSec", "startupTimeout", "torchrun", "useJobTicket", "useVenv", "handler",
}  # fmt: skip


def test_docs_list_every_model_config_key_with_its_status():
    from pathlib import Path

    assert set(KEY_STATUS) >= TORCHSERVE_012_KEYS
    docs = (Path(__file__).parents[3] / "docs" / "torchserve.md").read_text()
    for key, (status, reason) in KEY_STATUS.items():
        assert f"| `{key}` | {status} | {reason} |" in docs, key
