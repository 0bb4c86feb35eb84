"""Control plane: the management APIs (TorchServe, KServe v2, Torc, MLServe) and their services."""

__all__: list[str] = []
