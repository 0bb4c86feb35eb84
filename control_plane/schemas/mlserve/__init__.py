"""Wire contracts of the MLServe admin API (``/api``)."""
