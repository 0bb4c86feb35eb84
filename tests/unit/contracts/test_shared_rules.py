"""The rules both planes share: one name rule, one API-key digest, one Basic parser."""

from __future__ import annotations

import base64

import pytest

from control_plane.errors import BadRequestError
from control_plane.services.mlserve.lookup import check_name
from control_plane.services.model_repository import check_model_name
from deployments.contracts.names import is_valid_name
from deployments.contracts.security import api_key_digest, parse_basic


@pytest.mark.parametrize("name", ["m", "add_sub", "v1.2-b", "a" * 128, ".hidden", "a..b"])
def test_valid_names_pass_every_surface(name):
    assert is_valid_name(name)
    assert check_name(name, "model") == name
    assert check_model_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "...", "a/b", "a b", "é", "a" * 129, "x\n"])
def test_invalid_names_fail_every_surface_alike(name):
    assert not is_valid_name(name)
    with pytest.raises(BadRequestError):
        check_name(name, "model")  # /api/models
    with pytest.raises(BadRequestError):
        check_model_name(name)  # /v2/repository


def test_api_key_digest_and_basic_parsing():
    assert api_key_digest("k") == api_key_digest("k")
    assert len(api_key_digest("k")) == 64
    token = base64.b64encode(b"admin:a:b").decode()
    assert parse_basic(f"Basic {token}") == ("admin", "a:b")
    assert parse_basic("basic " + token) == ("admin", "a:b")
    assert parse_basic("Basic !!!") is None
    assert parse_basic("Bearer x") is None
    assert parse_basic("Basic " + base64.b64encode(b"no-colon").decode()) is None
