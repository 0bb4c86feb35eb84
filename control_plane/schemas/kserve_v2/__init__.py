"""Wire contracts of the Triton/KServe v2 protocol (``/v2``): Triton's own field names."""
