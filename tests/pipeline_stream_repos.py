"""Ensembles of text models with decoupled steps (they stream), for tests on both servers.

Each runs unchanged on a real tritonserver 2.51 and on the platform. Text models use
``text_input``/``text_output`` (STRING ``[1]``), as ``tests.pipeline_repos`` writes them.
"""

from __future__ import annotations

from pathlib import Path

from tests.pipeline_repos import TEXT_IO


def write_text_ensemble(
    repo: Path,
    name: str,
    steps: list[tuple[str, str, str]],
    *,
    outputs: tuple[str, ...] = ("text_output",),
    params: dict[str, str] | None = None,
) -> Path:
    """An ensemble over text models; each step is (model, input tensor, output tensor).

    The ensemble reads ``text_input``; ``outputs`` name its STRING ``[1]`` outputs.
    """
    step_text = "".join(
        f'step [ {{ model_name: "{model}" model_version: -1 '
        f'input_map {{ key: "text_input" value: "{src}" }} '
        f'output_map {{ key: "text_output" value: "{dst}" }} }} ]\n'
        for model, src, dst in steps
    )
    io = TEXT_IO.split("output [")[0]
    io += "output [ " + ", ".join(
        f'{{ name: "{o}" data_type: TYPE_STRING dims: [ 1 ] }}' for o in outputs
    )
    io += " ]\n"
    extra = "".join(
        f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}\n'
        for k, v in (params or {}).items()
    )
    model = repo / name
    (model / "1").mkdir(parents=True, exist_ok=True)
    (model / "config.pbtxt").write_text(
        f'name: "{name}"\nplatform: "ensemble"\nmax_batch_size: 0\n{io}'
        f"ensemble_scheduling {{\n{step_text}}}\n{extra}"
    )
    return model
