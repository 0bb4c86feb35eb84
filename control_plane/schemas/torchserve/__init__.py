"""Wire contracts of the TorchServe surface."""

from control_plane.schemas.torchserve.management import (
    RegisterModelParams,
    RegisterWorkflowParams,
    StatusMessage,
)
from control_plane.schemas.torchserve.models import (
    TorchServeJobQueueRead,
    TorchServeModelPage,
    TorchServeModelRead,
    TorchServeModelSummary,
    TorchServeWorkerRead,
)
from control_plane.schemas.torchserve.workflows import (
    TorchServeWorkflowPage,
    TorchServeWorkflowRead,
    TorchServeWorkflowSummary,
)

__all__ = [
    "RegisterModelParams",
    "RegisterWorkflowParams",
    "StatusMessage",
    "TorchServeJobQueueRead",
    "TorchServeModelPage",
    "TorchServeModelRead",
    "TorchServeModelSummary",
    "TorchServeWorkerRead",
    "TorchServeWorkflowPage",
    "TorchServeWorkflowRead",
    "TorchServeWorkflowSummary",
]
