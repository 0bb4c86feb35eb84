"""The self-contained parts of ``triton_python_backend_utils``: errors, Logger, ModelConfig.

Re-exported by :mod:`deployments.backends.triton_python_backend_utils` (model code sees one
module, as on Triton).
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

# A child of "ray.serve": Serve writes it into the replica's log file (no ray import here).
_model_logger = logging.getLogger("ray.serve.triton_python_backend")


class TritonError(Exception):
    """An error a model returns in an InferenceResponse (or raises)."""

    UNKNOWN = 0
    INTERNAL = 1
    NOT_FOUND = 2
    INVALID_ARG = 3
    UNAVAILABLE = 4
    UNSUPPORTED = 5
    ALREADY_EXISTS = 6
    CANCELLED = 7

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self._message = message
        self._code = code

    def message(self) -> str:
        """The error text."""
        return self._message

    def code(self) -> int:
        """The error code."""
        return self._code


class TritonModelException(Exception):
    """Raised by utilities on misuse (mirrors the real module)."""


class LogLevel:
    """Levels of :class:`Logger` (the real module's ``pb_utils.LogLevel``)."""

    INFO = 0
    WARNING = 1
    ERROR = 2
    VERBOSE = 3


class Logger:
    """``pb_utils.Logger``: model log lines go to the replica's log (Triton: the server log)."""

    # the real module exposes the levels on the class too: ``logger.log(msg, logger.INFO)``
    INFO = LogLevel.INFO
    WARNING = LogLevel.WARNING
    ERROR = LogLevel.ERROR
    VERBOSE = LogLevel.VERBOSE

    _LEVELS: ClassVar[dict[int, int]] = {
        LogLevel.INFO: logging.INFO,
        LogLevel.WARNING: logging.WARNING,
        LogLevel.ERROR: logging.ERROR,
        LogLevel.VERBOSE: logging.DEBUG,
    }

    @staticmethod
    def log(message: str, level: int = LogLevel.INFO) -> None:
        """Log ``message`` at ``level`` (a :class:`LogLevel`)."""
        _model_logger.log(Logger._LEVELS.get(level, logging.INFO), "%s", message)

    @staticmethod
    def log_info(message: str) -> None:
        """Log at INFO."""
        Logger.log(message, LogLevel.INFO)

    @staticmethod
    def log_warn(message: str) -> None:
        """Log at WARNING."""
        Logger.log(message, LogLevel.WARNING)

    @staticmethod
    def log_error(message: str) -> None:
        """Log at ERROR."""
        Logger.log(message, LogLevel.ERROR)

    @staticmethod
    def log_verbose(message: str) -> None:
        """Log at VERBOSE (Python's DEBUG)."""
        Logger.log(message, LogLevel.VERBOSE)


class ModelConfig:
    """What ``TritonPythonModel.auto_complete_config(auto_complete_model_config)`` receives.

    The model completes its config (inputs, outputs, batching) before ``initialize``.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self._config: dict[str, Any] = json.loads(json.dumps(config))

    def as_dict(self) -> dict[str, Any]:
        """The config as Triton's JSON form."""
        return self._config

    def set_max_batch_size(self, max_batch_size: int) -> None:
        """Set ``max_batch_size``."""
        self._config["max_batch_size"] = int(max_batch_size)

    def set_dynamic_batching(self) -> None:
        """Turn dynamic batching on (default settings) unless configured."""
        self._config.setdefault("dynamic_batching", {})

    def set_model_transaction_policy(self, policy: dict[str, Any]) -> None:
        """Set ``model_transaction_policy`` (e.g. ``{"decoupled": True}``)."""
        self._config["model_transaction_policy"] = dict(policy)

    def _add(self, key: str, tensor: dict[str, Any]) -> None:
        name = tensor.get("name")
        if not name:
            raise TritonModelException(f"{key} in auto_complete_config must have a name")
        entries = self._config.setdefault(key, [])
        if any(e.get("name") == name for e in entries):
            return  # the config already declares it: the declared one wins
        entries.append(dict(tensor))

    def add_input(self, input: dict[str, Any]) -> None:
        """Declare an input unless the config has it (``name``, ``data_type``, ``dims``)."""
        self._add("input", input)

    def add_output(self, output: dict[str, Any]) -> None:
        """Declare an output unless the config has it."""
        self._add("output", output)
