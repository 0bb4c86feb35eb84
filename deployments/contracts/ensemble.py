"""Ray-free ensemble graphs: the steps of a ``platform: "ensemble"`` model, checked before deploy.

Triton finds most graph errors at poll time and answers a generic 500 (reference §1.2); here
every one is a :class:`ModelConfigError` (400) naming the model, step and tensor. Two checks:
:func:`ensemble_graph` needs only the ensemble's own config (dangling tensors, tensors written
twice, unused inputs, unproduced outputs, cycles); :func:`check_steps` needs the step models'
specs (map keys that are not inputs/outputs of the step, pinned versions not served).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deployments.contracts.errors import ModelConfigError
from deployments.contracts.specs import ModelSpec


@dataclass(frozen=True)
class EnsembleStep:
    """One ``ensemble_scheduling.step``: ``input_map`` is step input -> ensemble tensor."""

    index: int
    model_name: str
    model_version: int
    input_map: dict[str, str]
    output_map: dict[str, str]


@dataclass
class EnsembleGraph:
    """The validated steps, with which step produces each tensor and a topological order."""

    name: str
    steps: list[EnsembleStep]
    producer: dict[str, int] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        """Step model names, each once, in step order."""
        return list(dict.fromkeys(s.model_name for s in self.steps))


def _steps(spec: ModelSpec) -> list[EnsembleStep]:
    return [
        EnsembleStep(
            index=i,
            model_name=str(raw["model_name"]),
            model_version=int(raw.get("model_version", -1)),
            input_map=dict(raw.get("input_map", {})),
            output_map=dict(raw.get("output_map", {})),
        )
        for i, raw in enumerate(spec.ensemble_steps)
    ]


def ensemble_graph(spec: ModelSpec) -> EnsembleGraph:
    """Validate an ensemble's own config and order its steps.

    Raises:
        ModelConfigError: no steps, a step without a model, a tensor written twice, a step
            input nothing produces, an unused ensemble input, an ensemble output no step
            produces, or a cycle.
    """
    name = spec.name
    steps = _steps(spec)
    if not steps:
        raise ModelConfigError(f"ensemble '{name}' has no ensemble_scheduling steps")
    inputs = {t.name for t in spec.inputs}
    producer: dict[str, int] = {}
    for step in steps:
        if not step.model_name:
            raise ModelConfigError(f"ensemble '{name}' step {step.index} names no model")
        if step.model_name == name:
            raise ModelConfigError(f"ensemble '{name}' step {step.index} names the ensemble")
        for tensor in step.output_map.values():
            if tensor in producer or tensor in inputs:
                raise ModelConfigError(
                    f"ensemble tensor '{tensor}' can appear in an output map only once for "
                    f"ensemble '{name}' step {step.index}"
                )
            producer[tensor] = step.index
    used: set[str] = set()
    for step in steps:
        for tensor in step.input_map.values():
            used.add(tensor)
            if tensor not in inputs and tensor not in producer:
                raise ModelConfigError(
                    f"in ensemble '{name}', step {step.index} ({step.model_name}) reads tensor "
                    f"'{tensor}', which is neither an ensemble input nor produced by any step"
                )
    for tensor in sorted(inputs - used):
        raise ModelConfigError(f"ensemble input '{tensor}' for ensemble '{name}' is not used")
    for output in spec.outputs:
        if output.name not in producer:
            raise ModelConfigError(
                f"ensemble output '{output.name}' for ensemble '{name}' is not produced by any step"
            )
    graph = EnsembleGraph(
        name=name, steps=steps, producer=producer, outputs=[t.name for t in spec.outputs]
    )
    graph.order = _topological(graph)
    return graph


def _topological(graph: EnsembleGraph) -> list[int]:
    deps = {
        s.index: {graph.producer[t] for t in s.input_map.values() if t in graph.producer}
        for s in graph.steps
    }
    order: list[int] = []
    ready = [i for i, d in deps.items() if not d]
    remaining = {i: set(d) for i, d in deps.items() if d}
    while ready:
        current = ready.pop(0)
        order.append(current)
        for index in list(remaining):
            remaining[index].discard(current)
            if not remaining[index]:
                del remaining[index]
                ready.append(index)
    if remaining:
        cycle = ", ".join(f"{i} ({graph.steps[i].model_name})" for i in sorted(remaining))
        raise ModelConfigError(f"ensemble '{graph.name}' has a cycle through steps {cycle}")
    return order


def check_steps(graph: EnsembleGraph, specs: dict[str, ModelSpec]) -> None:
    """Check each step against its model's spec (``specs``: every step model, loaded).

    Raises:
        ModelConfigError: a map key that is not an input/output of the step model, a pinned
            version the step model does not serve, or a step (or an ensemble output) that
            reads the responses of two decoupled steps neither of which feeds the other.
    """
    name = graph.name
    for step in graph.steps:
        model = specs[step.model_name]
        inputs = {t.name for t in model.inputs}
        outputs = set(model.output_names)
        for key, tensor in step.input_map.items():
            if key not in inputs:
                raise ModelConfigError(
                    f"in ensemble {name}, ensemble tensor {tensor} is mapping to non-existing "
                    f"input {key} in model {step.model_name}"
                )
        for key, tensor in step.output_map.items():
            if key not in outputs:
                raise ModelConfigError(
                    f"in ensemble {name}, ensemble tensor {tensor} is mapping from non-existing "
                    f"output {key} in model {step.model_name}"
                )
        if step.model_version > 0 and step.model_version not in model.served_versions:
            raise ModelConfigError(
                f"in ensemble {name}, step {step.index} pins version {step.model_version} of "
                f"model {step.model_name}, which serves {model.served_versions}"
            )
    check_decoupled(graph, {s.model_name for s in graph.steps if specs[s.model_name].decoupled})


def is_chain(graph: EnsembleGraph) -> bool:
    """True when the steps can only run one after another.

    Each step reads what the one before it in topological order writes, so running them in
    that order is the only schedule there is.
    """
    for before, after in zip(graph.order, graph.order[1:], strict=False):
        reads = graph.steps[after].input_map.values()
        if before not in {graph.producer.get(t) for t in reads}:
            return False
    return True


def downstream(graph: EnsembleGraph, index: int) -> set[int]:
    """Indexes of the steps that read, directly or not, what step ``index`` writes."""
    readers: dict[str, list[int]] = {}
    for step in graph.steps:
        for tensor in step.input_map.values():
            readers.setdefault(tensor, []).append(step.index)
    found: set[int] = set()
    todo = [index]
    while todo:
        current = todo.pop()
        for tensor in graph.steps[current].output_map.values():
            for reader in readers.get(tensor, []):
                if reader not in found:
                    found.add(reader)
                    todo.append(reader)
    return found


def check_decoupled(graph: EnsembleGraph, decoupled: set[str]) -> None:
    """Decoupled steps stream through the graph: each of their responses runs what follows.

    A step downstream of two decoupled steps must see them on one chain (one feeds the other),
    and so must the ensemble's outputs; otherwise which responses pair up is undefined.

    Raises:
        ModelConfigError: two decoupled steps, neither upstream of the other, feed one step
            or the ensemble's outputs.
    """
    streaming = [s.index for s in graph.steps if s.model_name in decoupled]
    below = {i: downstream(graph, i) for i in streaming}
    sinks = [(s.index, f"step {s.index} ({s.model_name})") for s in graph.steps]
    outputs = {graph.producer[t] for t in graph.outputs}
    sinks.append((-1, "the ensemble outputs"))
    for index, what in sinks:
        if index >= 0:
            feeding = [d for d in streaming if index in below[d]]
        else:
            feeding = [d for d in streaming if outputs & (below[d] | {d})]
        for a in feeding:
            for b in feeding:
                if a < b and b not in below[a] and a not in below[b]:
                    raise ModelConfigError(
                        f"in ensemble {graph.name}, {what} reads the responses of two "
                        f"decoupled steps, {a} ({graph.steps[a].model_name}) and {b} "
                        f"({graph.steps[b].model_name}), neither of which feeds the other; "
                        "not supported"
                    )


def mark_decoupled(spec: ModelSpec) -> None:
    """An ensemble with a decoupled step is decoupled, as Triton 2.51 reports it in /config."""
    spec.decoupled = True
    spec.config["model_transaction_policy"] = {"decoupled": True}
