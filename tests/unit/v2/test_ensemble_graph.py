"""Ensemble graph validation: every graph error is a 400 naming the problem, never a 500."""

import pytest

from deployments.contracts.ensemble import check_steps, ensemble_graph, is_chain
from deployments.contracts.errors import ModelConfigError
from deployments.contracts.specs import load_model_spec
from tests.pipeline_repos import (
    write_affine,
    write_ensemble,
    write_two_branch_ensemble,
    write_two_step_ensemble,
)


def _spec(repo, name):
    return load_model_spec(repo / name, name)


def test_two_step_ensemble_parses_with_tritons_config(tmp_path):
    write_two_step_ensemble(tmp_path)
    spec = _spec(tmp_path, "ens")
    assert spec.is_ensemble
    assert spec.metadata()["platform"] == "ensemble"
    assert spec.config["platform"] == "ensemble"
    assert spec.config["backend"] == ""
    assert spec.config["instance_group"] == []
    assert spec.config["model_transaction_policy"] == {"decoupled": False}
    assert spec.config["ensemble_scheduling"]["step"][0]["model_namespace"] == ""
    graph = ensemble_graph(spec)
    assert graph.models == ["pre", "post"]
    assert graph.order == [0, 1]
    check_steps(graph, {"pre": _spec(tmp_path, "pre"), "post": _spec(tmp_path, "post")})


def test_independent_steps_have_no_order_between_them(tmp_path):
    write_two_branch_ensemble(tmp_path, "par", "a", "b")
    graph = ensemble_graph(_spec(tmp_path, "par"))
    assert graph.producer == {"A": 0, "B": 1}


@pytest.mark.parametrize(
    ("steps", "inputs", "outputs", "message"),
    [
        (
            [("m", -1, {"INPUT0": "nowhere"}, {"OUTPUT0": "OUT"})],
            ("IN",),
            ("OUT",),
            "reads tensor 'nowhere'",
        ),
        (
            [("m", -1, {"INPUT0": "IN"}, {"OUTPUT0": "x"})],
            ("IN",),
            ("OUT",),
            "ensemble output 'OUT' for ensemble 'bad' is not produced",
        ),
        (
            [("m", -1, {"INPUT0": "IN"}, {"OUTPUT0": "OUT"})],
            ("IN", "EXTRA"),
            ("OUT",),
            "ensemble input 'EXTRA' for ensemble 'bad' is not used",
        ),
        (
            [
                ("m", -1, {"INPUT0": "IN"}, {"OUTPUT0": "a"}),
                ("n", -1, {"INPUT0": "IN"}, {"OUTPUT0": "a"}),
            ],
            ("IN",),
            ("a",),
            "ensemble tensor 'a' can appear in an output map only once",
        ),
        (
            [
                ("m", -1, {"INPUT0": "IN", "INPUT1": "b"}, {"OUTPUT0": "a"}),
                ("n", -1, {"INPUT0": "a"}, {"OUTPUT0": "b"}),
            ],
            ("IN",),
            ("a",),
            "has a cycle through steps 0 (m), 1 (n)",
        ),
        ([], ("IN",), ("OUT",), "has no ensemble_scheduling steps"),
        (
            [("bad", -1, {"INPUT0": "IN"}, {"OUTPUT0": "OUT"})],
            ("IN",),
            ("OUT",),
            "names the ensemble",
        ),
    ],
)
def test_graph_errors_name_the_problem(tmp_path, steps, inputs, outputs, message):
    write_ensemble(tmp_path, "bad", steps, inputs=inputs, outputs=outputs)
    with pytest.raises(ModelConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ensemble_graph(_spec(tmp_path, "bad"))


def test_step_maps_and_pinned_versions_are_checked_against_the_step_models(tmp_path):
    write_affine(tmp_path, "pre", versions=(1, 2), policy="version_policy { all { } }")
    for step, message in [
        (
            ("pre", -1, {"WRONG": "IN"}, {"OUTPUT0": "OUT"}),
            "ensemble tensor IN is mapping to non-existing input WRONG in model pre",
        ),
        (
            ("pre", -1, {"INPUT0": "IN"}, {"NOPE": "OUT"}),
            "mapping from non-existing output NOPE in model pre",
        ),
        (("pre", 3, {"INPUT0": "IN"}, {"OUTPUT0": "OUT"}), "pins version 3 of model pre"),
    ]:
        write_ensemble(tmp_path, "ens", [step])
        graph = ensemble_graph(_spec(tmp_path, "ens"))
        with pytest.raises(ModelConfigError, match=message):
            check_steps(graph, {"pre": _spec(tmp_path, "pre")})
    write_ensemble(tmp_path, "ens", [("pre", 2, {"INPUT0": "IN"}, {"OUTPUT0": "OUT"})])
    check_steps(ensemble_graph(_spec(tmp_path, "ens")), {"pre": _spec(tmp_path, "pre")})


def test_a_chain_is_told_from_a_graph_with_a_choice_of_order(tmp_path):
    write_two_step_ensemble(tmp_path, name="two")
    assert is_chain(ensemble_graph(_spec(tmp_path, "two")))
    write_ensemble(  # the third step reads the first's and the second's tensors
        tmp_path,
        "three",
        [
            ("a", -1, {"INPUT0": "IN"}, {"OUTPUT0": "A"}),
            ("b", -1, {"INPUT0": "A"}, {"OUTPUT0": "B"}),
            ("c", -1, {"INPUT0": "B", "INPUT1": "A"}, {"OUTPUT0": "OUT"}),
        ],
    )
    assert is_chain(ensemble_graph(_spec(tmp_path, "three")))
    write_ensemble(  # a diamond: b and c could run side by side
        tmp_path,
        "diamond",
        [
            ("a", -1, {"INPUT0": "IN"}, {"OUTPUT0": "A"}),
            ("b", -1, {"INPUT0": "A"}, {"OUTPUT0": "B"}),
            ("c", -1, {"INPUT0": "A"}, {"OUTPUT0": "C"}),
            ("d", -1, {"INPUT0": "B", "INPUT1": "C"}, {"OUTPUT0": "OUT"}),
        ],
    )
    assert not is_chain(ensemble_graph(_spec(tmp_path, "diamond")))
    write_two_branch_ensemble(tmp_path, "par", "a", "b")
    assert not is_chain(ensemble_graph(_spec(tmp_path, "par")))
