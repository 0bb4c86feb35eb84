"""Workflow specification YAML of a ``.war`` (Ray-free): ``models`` globals/overrides and ``dag``.

Parsing follows TorchServe 0.12 (``ensemble/WorkFlow.java``): keys under ``models`` are scanned in
file order, six reserved keys set globals, every other key is a model entry whose defaults are the
globals seen so far. Values must be integers.
"""

from __future__ import annotations

import ast
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import yaml

from deployments.contracts.archives import InvalidArchiveError
from deployments.contracts.graph import Dag, validate_dag

# YAML key -> NodeConfig attribute
CONFIG_KEYS = {
    "min-workers": "min_workers",
    "max-workers": "max_workers",
    "batch-size": "batch_size",
    "max-batch-delay": "max_batch_delay",
    "retry-attempts": "retry_attempts",
    "timeout-ms": "timeout_ms",
}


@dataclass(frozen=True)
class NodeConfig:
    """Scaling, batching and retry settings of a workflow node (TorchServe defaults)."""

    min_workers: int = 1
    max_workers: int = 1
    batch_size: int = 1
    max_batch_delay: int = 50
    retry_attempts: int = 1
    timeout_ms: int = 10000

    def to_dict(self) -> dict[str, int]:
        """Plain dict (JSON-serialisable)."""
        return asdict(self)


@dataclass(frozen=True)
class ModelEntry:
    """One model under ``models``: its ``.mar`` url and effective config."""

    name: str
    url: str
    config: NodeConfig


@dataclass
class WorkflowSpec:
    """A parsed and validated workflow spec."""

    globals: NodeConfig
    models: dict[str, ModelEntry]
    dag: Dag
    raw_dag: dict[str, list[str]] = field(default_factory=dict)

    def model_nodes(self) -> list[str]:
        """DAG nodes that are models (declared under ``models``), in DAG order."""
        return [n for n in self.dag.nodes if n in self.models]

    def function_nodes(self) -> list[str]:
        """DAG nodes that are functions of the handler file."""
        return [n for n in self.dag.nodes if n not in self.models]


class InvalidSpecError(InvalidArchiveError):
    """The workflow spec YAML is unparsable or its ``models``/``dag`` sections are malformed."""

    ts_type = "InvalidWorkflowException"


def _fail(message: str) -> InvalidSpecError:
    return InvalidSpecError(message)


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"Got {value!r} for {key}; it must be an integer.")
    return value


def parse_spec(text: str) -> WorkflowSpec:
    """Parse and validate a workflow spec.

    Raises:
        InvalidSpecError: unparsable YAML or bad sections.
        InvalidDagError: an invalid DAG.
    """
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail("Failed to parse yaml.") from exc
    if not isinstance(doc, dict):
        raise _fail("Failed to parse yaml.")
    models_section = doc.get("models")
    dag_section = doc.get("dag")
    if not isinstance(models_section, dict):
        raise _fail("Workflow spec has no 'models' section.")
    if not isinstance(dag_section, dict):
        raise _fail("Workflow spec has no 'dag' section.")

    current = NodeConfig()
    models: dict[str, ModelEntry] = {}
    for key, value in models_section.items():
        key = str(key)
        if key in CONFIG_KEYS:
            current = replace(current, **{CONFIG_KEYS[key]: _as_int(key, value)})
            continue
        if not isinstance(value, dict) or not value.get("url"):
            raise _fail(f"Model {key} in the workflow spec needs a 'url'.")
        overrides = {CONFIG_KEYS[k]: _as_int(k, v) for k, v in value.items() if k in CONFIG_KEYS}
        models[key] = ModelEntry(key, str(value["url"]), replace(current, **overrides))

    raw_dag: dict[str, list[str]] = {}
    for parent, children in dag_section.items():
        if not isinstance(children, list):
            raise _fail(f"DAG node {parent} must map to a list of children.")
        raw_dag[str(parent)] = [str(c) for c in children if c is not None and str(c).strip()]
    dag = validate_dag(raw_dag)
    used = {name: entry for name, entry in models.items() if name in dag.nodes}
    return WorkflowSpec(globals=current, models=used, dag=dag, raw_dag=raw_dag)


def dag_string(raw_dag: dict[str, list[str]]) -> str:
    """Java's map rendering of the dag section, e.g. ``{pre=[m1], m1=[post]}``."""
    parts = [f"{k}=[{', '.join(v)}]" for k, v in raw_dag.items()]
    return "{" + ", ".join(parts) + "}"


def missing_function_nodes(handler_source: str, nodes: list[str]) -> list[str]:
    """Function nodes the handler file cannot serve, found without running it (``ast``).

    A node is served by a module-level function of its name, or, as TorchServe's loader falls
    back, by the module's single class with a ``handle`` method.
    """
    try:
        tree = ast.parse(handler_source)
    except SyntaxError:
        return list(nodes)
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    single_class = len(classes) == 1 and any(
        isinstance(item, ast.FunctionDef) and item.name == "handle" for item in classes[0].body
    )
    return [node for node in nodes if node not in functions and not single_class]
