import base64

import pytest

from control_plane.errors import BadRequestError
from control_plane.services.model_repository import (
    check_model_name,
    ensure_inside,
    safe_relative,
    write_override_files,
)


@pytest.mark.parametrize("name", ["", "..", ".", "a/b", "x" * 129, "bad name", "../up"])
def test_bad_model_names_are_refused(name):
    with pytest.raises(BadRequestError):
        check_model_name(name)


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "1/../../x", ""])
def test_paths_escaping_are_refused(path):
    with pytest.raises(BadRequestError):
        safe_relative(path)


def test_override_files_written_from_base64(tmp_path):
    write_override_files(
        tmp_path / "m", {"file:1/model.py": base64.b64encode(b"print(1)").decode()}
    )
    assert (tmp_path / "m" / "1" / "model.py").read_bytes() == b"print(1)"
    with pytest.raises(BadRequestError, match="not valid base64"):
        write_override_files(tmp_path / "m", {"file:1/model.py": "!!!"})
    with pytest.raises(BadRequestError):
        write_override_files(tmp_path / "m", {"file:../evil.py": b"x"})
    assert not (tmp_path / "evil.py").exists()


def test_symlinks_leaving_the_model_are_refused(tmp_path):
    root = tmp_path / "repo"
    (root / "m").mkdir(parents=True)
    (root / "m" / "link").symlink_to("/etc")
    with pytest.raises(BadRequestError, match="symlink"):
        ensure_inside(root, root / "m")
    (root / "escape").symlink_to(tmp_path)
    with pytest.raises(BadRequestError, match="escapes"):
        ensure_inside(root, root / "escape")
