"""Ensembles on the built-in v2 server: validating the graph and loading the step models.

A mixin of :class:`control_plane.services.triton_models.TritonModelService` (which provides
``get``, ``load``, ``_spec``, ``_wait_running``, ``loaded_names`` and ``repo_root``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from control_plane.errors import BadRequestError
from control_plane.services.model_repository import ensure_inside
from control_plane.services.serve_apps import app_name
from deployments.contracts.app_args import EnsembleStepArgs
from deployments.contracts.ensemble import (
    EnsembleGraph,
    check_steps,
    ensemble_graph,
    is_chain,
    mark_decoupled,
)
from deployments.contracts.errors import ModelConfigError
from deployments.contracts.placement import gpus_per_replica, replica_bounds
from deployments.contracts.specs import ModelSpec

FUSED_PARAMETER = "ray_fused"
# "auto" fuses only step models this small in all (their directories): each fused ensemble
# replica holds its own copy of every step model besides the step's own replicas.
AUTO_FUSE_MAX_BYTES = 64 * 1024 * 1024

if TYPE_CHECKING:
    from control_plane.db.tables.registered_models import RegisteredModel
    from control_plane.settings import Settings

logger = logging.getLogger(__name__)


def fused_mode(name: str, parameters: dict[str, str]) -> str:
    """An ensemble's ``ray_fused``: ``true``, ``false`` or ``auto`` (the default), else a 400."""
    text = parameters.get(FUSED_PARAMETER, "auto").strip().lower()
    if text not in ("true", "false", "auto"):
        raise BadRequestError(
            f"failed to load '{name}': parameter '{FUSED_PARAMETER}' must be 'true', 'false' "
            f"or 'auto', got '{text}'"
        )
    return text


def fuse_blocker(
    graph: EnsembleGraph,
    specs: dict[str, ModelSpec],
    sizes: dict[str, int],
    *,
    object_store: bool,
) -> str:
    """Why ``ray_fused: auto`` leaves an ensemble unfused, or ``""`` when its steps fit one replica.

    Fusing runs every step inside the ensemble's replica, one after another, with no handle
    hop. That is the same computation only when nothing the step's own application gives is
    lost: its GPU, its batcher (fused calls are never batched with other requests), its
    replicas (a fused step executes one call at a time per ensemble replica), its stream, the
    concurrency of independent branches, a directory every replica can read, and memory (each
    fused replica holds its own copy of the step models).

    Args:
        graph: the ensemble's validated graph.
        specs: every step model's spec.
        sizes: bytes of every step model's directory.
        object_store: artifacts come from ``store.url`` (step directories are not on every node).
    """
    if object_store:
        return "the step models come from an object store (store.url)"
    if not is_chain(graph):
        return "independent steps run concurrently on the step models' own replicas"
    for model in graph.models:
        spec = specs[model]
        if spec.is_ensemble:
            return f"step '{model}' is an ensemble"
        if gpus_per_replica(spec) > 0:
            return f"step '{model}' runs on a GPU"
        if spec.dynamic_batching:
            return f"step '{model}' batches dynamically"
        if spec.decoupled:
            return f"step '{model}' is decoupled"
        if replica_bounds(spec) != (1, 1):
            return f"step '{model}' has more than one replica"
    total = sum(sizes[m] for m in graph.models)
    if total > AUTO_FUSE_MAX_BYTES:
        return f"the step models weigh {total / 2**20:.0f} MiB (auto fuses up to 64 MiB)"
    return ""


def directory_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (links are not followed)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


class _Host(Protocol):
    """What the mixin needs from the service it is mixed into."""

    repo_root: Path
    store_root: Path
    settings: Settings

    def get(self, name: str) -> RegisteredModel | None: ...

    def load(
        self, name: str, *, wait: bool = ..., _chain: tuple[str, ...] = ...
    ) -> RegisteredModel: ...

    def loaded_names(self) -> list[str]: ...

    def _spec(self, row: RegisteredModel) -> ModelSpec: ...

    def _wait_running(self, row: RegisteredModel) -> None: ...

    def _available(self: _Host, name: str) -> bool: ...

    def _streams(self: _Host, spec: ModelSpec) -> bool: ...


class EnsembleLoading:
    """Load-time rules of ensembles (Triton's, with 400s that name the problem)."""

    def _ensemble_steps(
        self: _Host, spec: ModelSpec, chain: tuple[str, ...]
    ) -> tuple[dict[str, EnsembleStepArgs], list[str], bool]:
        """Validate an ensemble and load its step models; how its replica reaches each step.

        Returns:
            Step model -> how to reach it, the step models this call loaded, and whether the
            steps run fused in the ensemble's replica (``ray_fused``; ``auto``: when
            :func:`fuse_blocker` finds nothing against it).

        Raises:
            BadRequestError: a graph error, a step model that is not in the repository, an
                ensemble that contains itself, a step map that does not fit its model, or a
                ``ray_fused`` that is not true, false or auto.
        """
        name = spec.name
        mode = fused_mode(name, spec.parameters)
        try:
            graph = ensemble_graph(spec)
        except ModelConfigError as exc:
            raise BadRequestError(f"load failed for model '{name}': {exc.message}") from None
        missing = [m for m in graph.models if not self._available(m)]
        if missing:
            raise BadRequestError(
                f"load failed for model '{name}': ensemble {name} contains models that are not "
                f"available or ambiguous: {', '.join(missing)}"
            )
        looped = [m for m in graph.models if m in chain]
        if looped:
            raise BadRequestError(
                f"load failed for model '{name}': ensemble {name} contains itself through "
                + " -> ".join([*chain, looped[0]])
            )
        pending = []
        for model in graph.models:
            row = self.get(model)
            if row is None or not row.loaded:
                pending.append(self.load(model, wait=False, _chain=chain))
        for row in pending:
            self._wait_running(row)
        steps: dict[str, EnsembleStepArgs] = {}
        specs: dict[str, ModelSpec] = {}
        for model in graph.models:
            row = self.get(model)
            assert row is not None
            specs[model] = self._spec(row)
            if specs[model].is_ensemble and self._streams(specs[model]):
                mark_decoupled(specs[model])  # as Triton marks a nested streaming ensemble
            steps[model] = EnsembleStepArgs(
                app=app_name("v2", model),
                spec=specs[model].to_json(),
                model_dir=str(ensure_inside(self.store_root, self.store_root / row.source_dir)),
            )
        try:
            check_steps(graph, specs)
        except ModelConfigError as exc:
            raise BadRequestError(f"load failed for model '{name}': {exc.message}") from None
        if any(specs[m].decoupled for m in graph.models):
            mark_decoupled(spec)
        fused = mode == "true"
        if mode == "auto":
            sizes = {m: directory_bytes(Path(steps[m].model_dir)) for m in graph.models}
            blocker = fuse_blocker(graph, specs, sizes, object_store=bool(self.settings.store.url))
            fused = not blocker
            logger.info(
                "ensemble %s: steps %s", name, "fused" if fused else f"not fused: {blocker}"
            )
        return steps, [row.name for row in pending], fused

    def _streams(self: _Host, spec: ModelSpec) -> bool:
        """A decoupled model, or an ensemble with such a step at any depth (loaded steps)."""
        if spec.decoupled:
            return True
        for step in spec.ensemble_steps if spec.is_ensemble else []:
            row = self.get(str(step["model_name"]))
            if row is not None and EnsembleLoading._streams(self, self._spec(row)):
                return True
        return False

    def _available(self: _Host, name: str) -> bool:
        """A repository directory, or a model loaded from overrides."""
        row = self.get(name)
        return (self.repo_root / name).is_dir() or (row is not None and row.loaded)

    def _dependents(self: _Host, name: str) -> list[str]:
        """Loaded ensembles with a step on ``name``."""
        found = []
        for other in self.loaded_names():
            row = self.get(other)
            if other == name or row is None:
                continue
            try:
                spec = self._spec(row)
            except BadRequestError:
                continue
            if spec.is_ensemble and any(s["model_name"] == name for s in spec.ensemble_steps):
                found.append(other)
        return found
