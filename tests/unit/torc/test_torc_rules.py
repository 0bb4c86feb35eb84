"""Pure Torc rules: memory and runtime grammars, cycle detection, downstream sets, packing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from control_plane.errors import ValidationFailedError
from control_plane.services.torc.common import parse_memory, parse_runtime
from control_plane.services.torc.graph import downstream, find_cycle
from control_plane.services.torc.packing import pack


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512k", 512 * 1024),
        ("1m", 1024**2),
        ("128g", 137438953472),
        ("2T", 2 * 1024**4),
        ("100", 100),
        (" 3G ", 3 * 1024**3),
    ],
)
def test_parse_memory_accepts_torc_units(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["1.5g", "12q", "-3m", "", "g", "1 gb"])
def test_parse_memory_rejects_malformed(text: str) -> None:
    with pytest.raises(ValidationFailedError, match="Invalid memory format"):
        parse_memory(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT30M", 1800),
        ("PT8H", 28800),
        ("P1DT12H", 129600),
        ("P0DT1M", 60),
        ("P2W", 1209600),
        ("PT1.5S", 1.5),
    ],
)
def test_parse_runtime_accepts_iso8601(text: str, seconds: float) -> None:
    assert parse_runtime(text) == seconds


@pytest.mark.parametrize("text", ["PT", "P", "8h", "PT8", "P1H", "T1H", "P1DT"])
def test_parse_runtime_rejects_malformed(text: str) -> None:
    with pytest.raises(ValidationFailedError, match="Invalid runtime format"):
        parse_runtime(text)


def test_find_cycle_names_a_closed_path() -> None:
    assert find_cycle([1, 2, 3], {2: [1], 3: [2]}) is None
    assert find_cycle([1, 2, 3, 4], {1: [3], 2: [1], 3: [2], 4: [3]}) == [1, 3, 2, 1]
    assert find_cycle([5], {5: [5]}) == [5, 5]


def test_downstream_is_transitive() -> None:
    assert downstream([1], {1: [2, 3], 3: [4], 5: [6]}) == {2, 3, 4}


def test_pack_respects_cpu_memory_and_gpu_totals() -> None:
    rows = [
        SimpleNamespace(id=i, cpus=2, gpus=g, nodes=1, memory=1024**3)
        for i, g in ((1, 1), (2, 0), (3, 0), (4, 1))
    ]
    chosen = pack(rows, {"num_cpus": 6, "num_gpus": 1, "memory_gb": 2.5, "num_nodes": 1})
    assert chosen == [1, 2]
