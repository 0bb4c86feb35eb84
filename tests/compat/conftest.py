"""Compat tier fixtures: the real tritonserver (see tests/compat/tritonserver.py)."""

from tests.compat.tritonserver import tritonserver_fixture

__all__ = ["tritonserver_fixture"]
