"""TorchServe Workflow Management responses: ``GET /workflows`` and ``GET /workflows/{name}``."""

from __future__ import annotations

from pydantic import Field

from control_plane.schemas.torchserve.base import TorchServeRead


class TorchServeWorkflowSummary(TorchServeRead):
    """One entry of ``GET /workflows``."""

    workflow_name: str = Field(description="Registered workflow name.")
    workflow_url: str = Field(description="The url exactly as registered (store name or URL).")


class TorchServeWorkflowPage(TorchServeRead):
    """``GET /workflows?limit=&next_page_token=``: one page of workflows sorted by name."""

    next_page_token: str | None = Field(
        default=None,
        description="Offset of the next page; omitted when this page reaches past the end.",
    )
    workflows: list[TorchServeWorkflowSummary] = Field(description="This page's workflows.")


class TorchServeWorkflowRead(TorchServeRead):
    """The element of ``GET /workflows/{name}`` (the response is a one-element array).

    Worker and batch values are the spec's global ones, as TorchServe reports them.
    """

    workflow_name: str = Field(description="Registered workflow name.")
    workflow_url: str = Field(description="The url exactly as registered.")
    min_workers: int = Field(description="Global ``min-workers`` of the spec.")
    max_workers: int = Field(description="Global ``max-workers`` of the spec.")
    batch_size: int = Field(description="Global ``batch-size`` of the spec.")
    max_batch_delay: int = Field(description="Global ``max-batch-delay`` of the spec, ms.")
    workflow_dag: str = Field(
        description="The dag section in Java's map rendering, e.g. ``{pre=[m1], m1=[post]}``."
    )
