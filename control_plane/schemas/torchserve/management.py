"""TorchServe management parameters (``POST /models``, ``POST /workflows``) and status bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StatusMessage(BaseModel):
    """Body of TorchServe's status-style successes (register, scale, unregister, ping)."""

    model_config = ConfigDict(extra="forbid")

    status: str = Field(description="Human-readable outcome, worded as TorchServe words it.")


class RegisterModelParams(BaseModel):
    """``POST /models`` parameters, from the query string or a JSON body (same names)."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    url: str | None = Field(
        default=None, description="A .mar in the model store or an allowed URL."
    )
    model_name: str | None = Field(default=None, description="Overrides MANIFEST modelName.")
    handler: str | None = Field(default=None, description="Overrides MANIFEST handler.")
    runtime: str | None = Field(default=None, description="python, python3 or LSP.")
    batch_size: int = Field(default=1, ge=1, description="Items per batch.")
    max_batch_delay: int = Field(default=100, ge=0, description="Milliseconds to fill a batch.")
    initial_workers: int | None = Field(default=None, ge=0, description="Workers (replicas) now.")
    synchronous: bool = Field(default=True, description="Wait until the workers are up.")
    response_timeout: int = Field(default=120, ge=1, description="Seconds per inference.")
    startup_timeout: int = Field(default=120, ge=1, description="Seconds to start workers.")


class RegisterWorkflowParams(BaseModel):
    """``POST /workflows`` parameters, from the query string or a JSON body."""

    model_config = ConfigDict(extra="ignore")

    url: str | None = Field(
        default=None, description="A .war in the workflow store or an allowed URL."
    )
    workflow_name: str | None = Field(default=None, description="Overrides MANIFEST workflowName.")
    execution: str | None = Field(
        default=None, description="Extension: auto | fused | separate model-node deployment."
    )
