"""Wire contracts of the operational endpoints (``/healthz``, ``/status``)."""
