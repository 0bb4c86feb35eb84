"""Which ``config.pbtxt`` fields the platform honours, and the check that refuses the others.

Triton accepts every field of ``ModelConfig``; this platform implements a subset. A field that
is set but not implemented is never ignored silently: the load is refused with a message naming
the field (``serving.unsupported_config="refuse"``, the default), or the field is ignored with a
logged warning (``"warn"``). The tree below is the single list; ``docs/triton.md`` renders it.
"""

from __future__ import annotations

from typing import Any, Literal

from deployments.contracts.errors import ModelConfigError

UnsupportedConfigMode = Literal["refuse", "warn"]

# field -> True (the whole subtree is honoured) or a dict of the honoured subfields.
SUPPORTED_FIELDS: dict[str, Any] = {
    "name": True,
    "platform": True,
    "backend": True,
    "version_policy": True,
    "max_batch_size": True,
    "input": {"name": True, "data_type": True, "dims": True, "optional": True},
    "output": {"name": True, "data_type": True, "dims": True},
    "dynamic_batching": {"max_queue_delay_microseconds": True},
    "instance_group": {"name": True, "kind": True, "count": True},
    "default_model_filename": True,
    "parameters": True,
    "model_transaction_policy": {"decoupled": True},
    "ensemble_scheduling": {
        "step": {"model_name": True, "model_version": True, "input_map": True, "output_map": True}
    },
    "model_warmup": {
        "name": True,
        "batch_size": True,
        "count": True,
        "inputs": {"data_type": True, "dims": True, "zero_data": True, "random_data": True},
    },
}


def _walk(message: Any, supported: dict[str, Any], prefix: str, found: list[str]) -> None:
    for descriptor, value in message.ListFields():
        rule = supported.get(descriptor.name)
        path = f"{prefix}{descriptor.name}"
        if rule is True:
            continue
        if rule is None:
            found.append(path)
            continue
        if descriptor.message_type is None:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            # maps of messages (warmup inputs): check each value
            for entry in value.values():
                _walk(entry, rule, path + ".", found)
        elif descriptor.label == descriptor.LABEL_REPEATED:
            for item in value:
                _walk(item, rule, path + ".", found)
        else:
            _walk(value, rule, path + ".", found)


def unsupported_fields(config: Any) -> list[str]:
    """Dotted names of the fields set in ``config`` (a ``ModelConfig``) the platform ignores."""
    found: list[str] = []
    _walk(config, SUPPORTED_FIELDS, "", found)
    return sorted(dict.fromkeys(found))


def check_supported(config: Any, name: str, mode: UnsupportedConfigMode) -> list[str]:
    """Refuse (or, in ``warn`` mode, return for logging) the unsupported fields of a config.

    Returns:
        The unsupported fields that are set (only ever non-empty in ``warn`` mode).

    Raises:
        ModelConfigError: ``mode`` is ``refuse`` and some field is not implemented.
    """
    fields = unsupported_fields(config)
    if fields and mode == "refuse":
        listed = ", ".join(f"'{f}'" for f in fields)
        raise ModelConfigError(
            f"model '{name}' sets config field(s) {listed} that this platform does not "
            "implement; remove them, or set serving.unsupported_config=warn "
            "(CP_SERVING__UNSUPPORTED_CONFIG=warn) to load the model with them ignored"
        )
    return fields
