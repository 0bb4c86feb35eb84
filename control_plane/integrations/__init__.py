"""Adapters to the outside: Ray Serve (the only Ray importer) and external Triton servers."""
