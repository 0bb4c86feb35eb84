"""Wire contracts of the Torc API (``/torc-service/v1``)."""
