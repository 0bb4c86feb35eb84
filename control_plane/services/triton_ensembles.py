"""Ensembles on the built-in v2 server: validating the graph and loading the step models.

A mixin of :class:`control_plane.services.triton_models.TritonModelService` (which provides
``get``, ``load``, ``_spec``, ``_wait_running``, ``loaded_names`` and ``repo_root``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from control_plane.errors import BadRequestError
from control_plane.services.model_repository import ensure_inside
from control_plane.services.serve_apps import app_name
from deployments.contracts.app_args import EnsembleStepArgs
from deployments.contracts.ensemble import check_steps, ensemble_graph, mark_decoupled
from deployments.contracts.errors import ModelConfigError
from deployments.contracts.specs import ModelSpec

if TYPE_CHECKING:
    from control_plane.db.tables.registered_models import RegisteredModel


class _Host(Protocol):
    """What the mixin needs from the service it is mixed into."""

    repo_root: Path
    store_root: Path

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
    ) -> tuple[dict[str, EnsembleStepArgs], list[str]]:
        """Validate an ensemble and load its step models; how its replica reaches each step.

        Returns:
            Step model -> how to reach it, and the step models this call loaded.

        Raises:
            BadRequestError: a graph error, a step model that is not in the repository, an
                ensemble that contains itself, or a step map that does not fit its model.
        """
        name = spec.name
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
        return steps, [row.name for row in pending]

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
