"""Wire contracts of the TorchServe surface."""

from control_plane.schemas.torchserve.management import RegisterModelParams, StatusMessage

__all__ = ["RegisterModelParams", "StatusMessage"]
