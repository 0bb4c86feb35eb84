"""Base of the TorchServe response bodies: snake_case fields, TorchServe's camelCase on the wire."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class TorchServeRead(BaseModel):
    """A body TorchServe 0.12 answers; fields serialise under its camelCase names (``modelName``).

    No whitespace stripping: the bodies are compared byte for byte with real TorchServe's.
    """

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        serialize_by_alias=True,
        protected_namespaces=(),
    )
