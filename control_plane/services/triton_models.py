"""Use-cases of the Triton repository and the built-in v2 server: index, load, unload, status."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.db.tables.registered_models import RegisteredModel
from control_plane.errors import BadRequestError, NotFoundError, UpstreamUnavailableError
from control_plane.integrations.serve_types import AppSpec, AppState, ServeGateway
from control_plane.services.artifact_store import ArtifactStore
from control_plane.services.model_repository import (
    check_model_name,
    ensure_inside,
    write_override_files,
)
from control_plane.services.serve_apps import ServeAppService, app_name
from control_plane.services.triton_ensembles import EnsembleLoading
from control_plane.settings import Settings
from deployments.contracts.app_args import EnsembleAppArgs, TritonModelAppArgs
from deployments.contracts.errors import ModelConfigError
from deployments.contracts.placement import PlacementPolicy, deployment_options, not_ready_reason
from deployments.contracts.specs import ModelSpec, load_model_spec

OWNER = "v2"

logger = logging.getLogger(__name__)


def model_app_name(name: str) -> str:
    """Serve application of a model on the built-in server."""
    return app_name(OWNER, name)


def model_route(name: str) -> str:
    """Route prefix the Serve ingress sends straight to the model's application."""
    return f"/v2/models/{name}"


IN_FLIGHT_PARAMETER = "ray_step_batches_in_flight"


def _batches_in_flight(name: str, parameters: dict[str, str]) -> int:
    """An ensemble's ``ray_step_batches_in_flight`` (1..64, default 2), or a 400 naming it."""
    text = parameters.get(IN_FLIGHT_PARAMETER, "2").strip()
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise BadRequestError(
            f"failed to load '{name}': parameter '{IN_FLIGHT_PARAMETER}' must be an integer "
            f"from 1 to 64, got '{text}'"
        )
    return int(text)


@dataclass
class ModelStatus:
    """What the index and readiness checks report for one model."""

    name: str
    state: str | None
    reason: str = ""
    versions: tuple[int, ...] = ()


class TritonModelService(EnsembleLoading):
    """The repository (``<store>/models``) and the models loaded on the built-in server."""

    def __init__(self, session: Session, gateway: ServeGateway, settings: Settings) -> None:
        self.session = session
        self.gateway = gateway
        self.settings = settings
        self.store_root = settings.store_root
        self.repo_root = self.store_root / "models"
        self.artifacts = ArtifactStore.from_settings(settings)
        self.apps = ServeAppService(session, gateway, self.artifacts)

    # -- queries ---------------------------------------------------------------------------
    def get(self, name: str) -> RegisteredModel | None:
        """The registry row of a model, if any."""
        return self.session.scalar(select(RegisteredModel).where(RegisteredModel.name == name))

    def repository_names(self) -> list[str]:
        """Model directories in the repository plus models known only to the registry."""
        names = {n for n in self.artifacts.list_dirs("models") if not n.startswith(".")}
        names.update(self.session.scalars(select(RegisteredModel.name)))
        return sorted(names)

    def status(self, name: str, states: dict[str, AppState] | None = None) -> ModelStatus:
        """The model's state on the built-in server (READY / LOADING / UNAVAILABLE / None)."""
        row = self.get(name)
        if row is None or not row.loaded:
            if row is not None and row.status_reason:
                return ModelStatus(name, "UNAVAILABLE", row.status_reason, self._versions(row))
            return ModelStatus(name, None)
        states = states if states is not None else self.gateway.status()
        app = states.get(model_app_name(name))
        versions = self._versions(row)
        if app is None:
            return ModelStatus(name, "LOADING", "deploying", versions)
        if app.status == "RUNNING":
            return ModelStatus(name, "READY", "", versions)
        if app.status in ("DEPLOYING", "NOT_STARTED"):
            return ModelStatus(name, "LOADING", row.status_reason or "deploying", versions)
        return ModelStatus(name, "UNAVAILABLE", app.message or app.status, versions)

    def _versions(self, row: RegisteredModel) -> tuple[int, ...]:
        try:
            return tuple(self._spec(row).served_versions)
        except (ModelConfigError, BadRequestError):
            return ()

    def index(self, *, ready_only: bool = False) -> list[dict[str, Any]]:
        """``POST /v2/repository/index``: every repository model with its version states."""
        states = self.gateway.status()
        entries: list[dict[str, Any]] = []
        for name in self.repository_names():
            status = self.status(name, states)
            if status.state is None:
                if not ready_only:
                    entries.append({"name": name})
                continue
            if ready_only and status.state != "READY":
                continue
            for version in status.versions or (None,):
                entry: dict[str, Any] = {
                    "name": name,
                    "state": status.state,
                    "reason": status.reason,
                }
                if version is not None:
                    entry["version"] = str(version)
                entries.append(entry)
        return entries

    def spec_of(self, name: str) -> ModelSpec:
        """The parsed spec of a registered, loaded model.

        Raises:
            NotFoundError: unknown model, or known but not loaded.
        """
        row = self.get(name)
        if row is None:
            if (self.repo_root / name).is_dir():
                raise NotFoundError(
                    f"Request for unknown model: '{name}' has no available versions"
                )
            raise NotFoundError(f"Request for unknown model: '{name}' is not found")
        if not row.loaded:
            raise NotFoundError(f"Request for unknown model: '{name}' has no available versions")
        return self._spec(row)

    def _spec(self, row: RegisteredModel) -> ModelSpec:
        model_dir = ensure_inside(self.store_root, self.store_root / row.source_dir)
        try:
            return load_model_spec(
                model_dir,
                row.name,
                config_override=row.config_override,
                version_pin=row.version_pin,
                unsupported=self.settings.serving.unsupported_config,
            )
        except ModelConfigError as exc:
            raise BadRequestError(exc.message) from None

    def loaded_names(self) -> list[str]:
        """Models whose desired state is loaded."""
        return list(
            self.session.scalars(select(RegisteredModel.name).where(RegisteredModel.loaded))
        )

    # -- commands --------------------------------------------------------------------------
    def register(self, name: str) -> RegisteredModel:
        """Ensure a registry row exists for a repository directory (not loaded)."""
        row = self.get(check_model_name(name))
        if row is None:
            row = RegisteredModel(name=name, source_dir=f"models/{name}", loaded=False)
            self.session.add(row)
            self.session.commit()
        return row

    def load(
        self,
        name: str,
        *,
        config_override: dict[str, Any] | None = None,
        files: dict[str, str | bytes] | None = None,
        version: int | None = None,
        wait: bool = True,
        _chain: tuple[str, ...] = (),
        _source_dir: str | None = None,
    ) -> RegisteredModel:
        """Load (or reload) a model on the built-in server: record it, deploy it, wait for it.

        An ensemble's step models are loaded from the repository first when they are not
        loaded yet (as Triton does); each stays its own application.

        Args:
            name: model name (repository directory, or the name for file overrides).
            config_override: Triton JSON config replacing config.pbtxt.
            files: ``file:<version>/<path>`` contents (base64 str or bytes); needs a config.
            version: serve only this version.
            wait: block until the model answers (Triton's load is synchronous).

        Raises:
            BadRequestError: invalid name/config/files, missing model, not placeable, an
                ensemble whose graph or step models do not fit, or the deployment failed (its
                message is included).
        """
        check_model_name(name)
        if _source_dir is not None and _source_dir.startswith("overrides/"):
            source_dir = _source_dir  # a reload of what is recorded (its override files)
        elif files:
            if config_override is None:
                raise BadRequestError(
                    f"failed to load '{name}': file overrides need a 'config' parameter"
                )
            source_dir = f"overrides/{name}"
            write_override_files(self.store_root / source_dir, files)
        else:
            source_dir = f"models/{name}"
            self.artifacts.fetch(source_dir)  # only in the object store: mirror it here first
            if not (self.repo_root / name).is_dir():
                raise BadRequestError(
                    f"failed to load '{name}', failed to poll from model repository: no model "
                    f"directory '{name}'"
                )
        model_dir = ensure_inside(self.store_root, self.store_root / source_dir)
        try:
            spec = load_model_spec(
                model_dir,
                name,
                config_override=config_override,
                version_pin=version,
                unsupported=self.settings.serving.unsupported_config,
            )
        except ModelConfigError as exc:
            raise BadRequestError(f"failed to load '{name}': {exc.message}") from None
        in_flight = _batches_in_flight(name, spec.parameters) if spec.is_ensemble else 2
        steps, loaded_steps, fused = (
            self._ensemble_steps(spec, (*_chain, name)) if spec.is_ensemble else (None, [], False)
        )
        existing = self.get(name)
        reloading = existing is not None and existing.loaded
        row = existing or RegisteredModel(name=name, source_dir=source_dir)
        row.source_dir = source_dir
        row.config_override = config_override
        row.version_pin = version
        row.loaded = True
        row.status, row.status_reason = "LOADING", ""
        self.session.add(row)
        policy = self._policy()
        reason = not_ready_reason(spec, policy)
        options = deployment_options(
            spec, policy, min_replicas=row.min_replicas, max_replicas=row.max_replicas
        )
        args: TritonModelAppArgs
        if steps is not None:
            args = EnsembleAppArgs(
                spec=spec.to_json(),
                model_dir=str(model_dir),
                options=options,
                steps=steps,
                fused=fused,
                step_batches_in_flight=in_flight,
                loaded_steps=loaded_steps,
            )
        else:
            args = TritonModelAppArgs(
                spec=spec.to_json(), model_dir=str(model_dir), options=options
            )
        self.apps.put(AppSpec(model_app_name(name), model_route(name), args), owner=OWNER)
        if reason:
            row.status, row.status_reason = "PENDING", reason
            self.session.commit()
            raise BadRequestError(f"failed to load '{name}': {reason}")
        if wait:
            self._wait_running(row)
        if reloading:
            self._reload_fused_dependents(name, wait=wait)
        return row

    def _reload_fused_dependents(self, name: str, *, wait: bool) -> None:
        """Reload the fused ensembles that hold a copy of ``name``: they see its new code.

        An unfused ensemble calls the step's current application and needs nothing; a fused
        one loaded the step's backend itself when it started, and a Triton ensemble always
        reaches its step's current instances.
        """
        for ensemble in self._dependents(name):
            record = self.apps.get(model_app_name(ensemble))
            row = self.get(ensemble)
            if record is None or row is None or not (record.args or {}).get("fused"):
                continue
            try:
                self.load(
                    ensemble,
                    config_override=row.config_override,
                    version=row.version_pin,
                    wait=wait,
                    _source_dir=row.source_dir,
                )
            except BadRequestError as exc:  # the step's own load stands, as on Triton
                logger.warning("reloading ensemble %s after %s: %s", ensemble, name, exc.message)

    def _policy(self) -> PlacementPolicy:
        try:
            gpus = self.gateway.cluster_resources().get("GPU", 0.0)
        except UpstreamUnavailableError:
            gpus = 0.0
        serving = self.settings.serving
        return PlacementPolicy(
            max_ongoing_requests=serving.max_ongoing_requests,
            num_cpus=serving.replica_num_cpus,
            cluster_gpus=gpus,
            gpu_fallback_to_cpu=serving.gpu_fallback_to_cpu,
        )

    def _wait_running(self, row: RegisteredModel) -> None:
        deadline = time.monotonic() + self.settings.serving.load_timeout_s
        name = model_app_name(row.name)
        while True:
            app = self.gateway.status().get(name)
            if app is not None and app.running:
                row.status, row.status_reason = "READY", ""
                self.session.commit()
                return
            if app is not None and app.status in ("DEPLOY_FAILED", "UNHEALTHY"):
                message = app.message or app.status
                self.apps.remove(name)
                row.loaded, row.status, row.status_reason = False, "UNAVAILABLE", message[:2000]
                self.session.commit()
                raise BadRequestError(f"failed to load '{row.name}': {message}")
            if time.monotonic() > deadline:
                row.status_reason = "load timed out; still deploying"
                self.session.commit()
                raise BadRequestError(
                    f"failed to load '{row.name}': not ready after "
                    f"{self.settings.serving.load_timeout_s:g}s (it keeps deploying)"
                )
            time.sleep(0.2)

    def unload(self, name: str, *, wait: bool = True, unload_dependents: bool = False) -> None:
        """Unload from the built-in server; unknown or unloaded models are fine (as in Triton).

        With ``wait`` the call returns once Serve has removed the application (bounded by the
        load timeout), so the model stops answering before the caller continues. Ensembles that
        use the model are unloaded too; with ``unload_dependents``, an ensemble's unload also
        unloads the step models its load brought up (not those loaded before it) that no other
        loaded ensemble uses.
        """
        row = self.get(name)
        if row is None:
            return
        for ensemble in self._dependents(name):  # as Triton: unloading a step unloads them
            self.unload(ensemble, wait=wait)
        steps: list[str] = []
        if unload_dependents:
            record = self.apps.get(model_app_name(name))
            steps = list((record.args or {}).get("loaded_steps", [])) if record else []
        row.loaded, row.status, row.status_reason = False, "UNAVAILABLE", "unloaded"
        self.session.commit()
        app = model_app_name(name)
        self.apps.remove(app)
        deadline = time.monotonic() + self.settings.serving.load_timeout_s
        while wait and app in self.gateway.status() and time.monotonic() < deadline:
            time.sleep(0.2)
        for step in steps:
            if not self._dependents(step):
                self.unload(step, wait=wait)

    def model_stats(self, name: str | None = None, version: str | None = None) -> dict[str, Any]:
        """Statistics of one loaded model or of all loaded models.

        Raises:
            BadRequestError: the named model is not loaded (Triton answers 400).
        """
        names = [name] if name else self.loaded_names()
        stats: list[dict[str, Any]] = []
        for model in names:
            row = self.get(model)
            if row is None or not row.loaded:
                raise BadRequestError(f"requested model '{model}' is not available")
            version_number = int(version) if version and version.isdigit() else None
            result = self.gateway.call(model_app_name(model), "stats", version_number)
            stats.extend((result or {}).get("model_stats", []))
        return {"model_stats": stats}

    def server_ready(self) -> bool:
        """Strict readiness: every loaded model is READY (True when none are loaded)."""
        states = self.gateway.status()
        return all(self.status(n, states).state == "READY" for n in self.loaded_names())


def model_dir_for(settings: Settings, name: str) -> Path:
    """The repository directory of a model (for writers such as the model store)."""
    return settings.store_root / "models" / check_model_name(name)
