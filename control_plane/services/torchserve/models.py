"""TorchServe Model Management API: register, scale, describe, list, unregister, set-default.

Each model (all its versions) is one Serve application at ``/predictions/<name>``; workers are
replicas. A model with no workers has no application, so ``/predictions/<name>`` reaches the
control plane, which answers TorchServe's 503 "has no worker".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_plane.db.tables.torchserve import TorchServeModel, TorchServeWorkflow
from control_plane.errors import (
    InvalidStateError,
    PermissionDeniedError,
    StartFailedError,
    UpstreamUnavailableError,
)
from control_plane.integrations.serve_types import ServeGateway
from control_plane.schemas.torchserve.models import (
    TorchServeModelPage,
    TorchServeModelRead,
    TorchServeModelSummary,
)
from control_plane.services.artifact_store import ArtifactStore
from control_plane.services.serve_apps import ServeAppService
from control_plane.services.torchserve.apps import (
    MODEL_OWNER,
    gpus_per_replica,
    handler_metrics_args,
    model_app,
    model_app_spec,
    read_model_config,
    running_replicas,
    wait_running,
)
from control_plane.services.torchserve.errors import (
    CONFLICT,
    already_registered,
    archive_not_found,
    bad_request,
    from_archive,
    model_not_found,
    start_failed,
    version_not_found,
)
from control_plane.services.torchserve.pagination import paginate
from control_plane.services.torchserve.results import Outcome, StatusResult
from control_plane.services.torchserve.store import TorchServeStore
from control_plane.services.torchserve.tokens import key_store_args
from control_plane.services.torchserve.views import (
    describe_row,
    workflow_node_models,
    workflow_node_row,
)
from control_plane.settings import Settings
from deployments.contracts.app_args import WorkflowAppArgs
from deployments.contracts.archives import RUNTIMES, ArchiveError, read_mar_manifest
from deployments.contracts.names import is_valid_name
from deployments.contracts.ts_model_config import ModelConfigError, parse_model_config

PROCESSING = StatusResult("Processing worker updates...", Outcome.ACCEPTED)


@dataclass(frozen=True)
class RegisterModel:
    """Parameters of ``POST /models`` (TorchServe names, defaults)."""

    url: str | None
    model_name: str | None = None
    handler: str | None = None
    runtime: str | None = None
    batch_size: int = 1
    max_batch_delay: int = 100
    initial_workers: int | None = None
    synchronous: bool = True
    response_timeout: int = 120
    startup_timeout: int = 120
    loaded_at_startup: bool = False


def _start_failed(name: str, version: str, serve_error: str | None = None) -> StartFailedError:
    """TorchServe's failed-workers error, with Serve's reason when Serve refused the app."""
    message = f"Failed to start workers for model {name} version: {version}"
    return start_failed(f"{message}. Details: {serve_error}" if serve_error else message)


def _first(value: int | None, default: int) -> int:
    return default if value is None else value


class TorchServeModelService:
    """Registered ``.mar`` models and their Serve applications."""

    def __init__(self, session: Session, gateway: ServeGateway, settings: Settings) -> None:
        self.session = session
        self.gateway = gateway
        self.settings = settings
        self.store = TorchServeStore(settings)
        self.apps = ServeAppService(session, gateway, ArtifactStore.from_settings(settings))

    # -- queries -------------------------------------------------------------------------
    def versions(self, name: str) -> list[TorchServeModel]:
        """Every registered version of a model, default first."""
        rows = self.session.scalars(select(TorchServeModel).where(TorchServeModel.name == name))
        return sorted(rows, key=lambda r: (not r.is_default, r.version))

    def get_or_raise(self, name: str, version: str | None = None) -> TorchServeModel:
        """A version (the default when None).

        Raises:
            NotFoundError: unknown model or version (TorchServe's 404 texts).
        """
        rows = self.versions(name)
        if not rows:
            raise model_not_found(name)
        if version is None:
            return rows[0]
        for row in rows:
            if row.version == version:
                return row
        raise version_not_found(f"Model version: {version} does not exist for model: {name}")

    def exists(self, name: str) -> bool:
        """True when any version of ``name`` is registered."""
        return bool(self.versions(name))

    def list_page(self, limit: str | None, token: str | None) -> TorchServeModelPage:
        """``GET /models``: default versions, sorted by name, paginated."""
        rows = self.session.scalars(
            select(TorchServeModel).where(TorchServeModel.is_default.is_(True))
        )
        items = [TorchServeModelSummary(model_name=r.name, model_url=r.url) for r in rows]
        items += [
            TorchServeModelSummary(model_name=n, model_url=u)
            for n, u in self.workflow_node_models().items()
        ]
        items.sort(key=lambda i: i.model_name)
        page, next_token = paginate(items, limit, token)
        return TorchServeModelPage(next_page_token=next_token, models=page)

    def describe(self, name: str, version: str | None = None) -> list[TorchServeModelRead]:
        """``GET /models/{m}[/{v}|/all]``: an array of model descriptions.

        Raises:
            NotFoundError: unknown model or version.
        """
        rows = self.versions(name)
        if not rows:
            node = self._workflow_node_row(name)
            if node is None or version not in (None, "all", node.version):
                raise model_not_found(name)
            return [describe_row(node, node.min_workers)]
        selected = rows if version == "all" else [self.get_or_raise(name, version)]
        state = self.apps.state(model_app(name))
        replicas = running_replicas(state)
        return [describe_row(row, replicas if row.is_default else 0) for row in selected]

    def refuse_prediction(self, name: str, version: str | None = None) -> NoReturn:
        """Why ``/predictions/<name>[/<version>]`` reached the control plane: no app serves it.

        Raises:
            NotFoundError: unknown model or version.
            UpstreamUnavailableError: the model is registered but has no worker.
        """
        self.get_or_raise(name, version)
        raise UpstreamUnavailableError(
            f'Model "{name}" has no worker to serve inference request. '
            "Please use scale workers API to add workers.",
            ts_type="ServiceUnavailableException",
        )

    # -- commands ------------------------------------------------------------------------
    def register(self, req: RegisterModel) -> StatusResult:
        """``POST /models``: resolve, extract, validate, record, deploy (and wait if synchronous).

        A synchronous registration whose application Serve refuses, or whose workers do not
        start in ``startup_timeout``, is rolled back (row, recorded app, extracted files).

        Raises:
            DomainError: TorchServe's errors (bad request, not found, conflict, start failed).
        """
        if req.url is None:
            raise bad_request("Parameter url is required.")
        if req.url == "":
            raise archive_not_found("empty url", workflow=False)
        if req.runtime is not None and req.runtime not in RUNTIMES:
            raise bad_request(f"Invalid RuntimeType value: {req.runtime}")
        resolved = self.store.resolve(req.url, workflow=False)
        model_dir: Path | None = None
        try:
            model_dir = self.store.extract(resolved.path, "models")
            try:
                manifest = read_mar_manifest(model_dir, req.model_name)
            except ArchiveError as exc:
                raise from_archive(exc) from exc
            name, version = manifest.model_name, manifest.model_version
            if not (is_valid_name(name) and name[0].isalnum()):  # TorchServe: alnum first
                raise bad_request(f"Invalid model name: {name}")
            if any(r.version == version for r in self.versions(name)):
                raise already_registered(
                    f"Model version {version} is already registered for model {name}"
                )
            self.store.install_requirements(model_dir, manifest.requirements_file, name)
            try:
                config = parse_model_config(read_model_config(model_dir, manifest.config_file))
            except ModelConfigError as exc:
                raise bad_request(str(exc)) from exc
            num_gpus = gpus_per_replica(self.settings, self.gateway, name, config.device_type)
            workers = req.initial_workers
            if workers is None:
                workers = (
                    config.min_workers
                    if config.min_workers is not None
                    else self.settings.torchserve.default_workers_per_model
                )
            max_workers = max(workers, config.max_workers or workers)
            row = TorchServeModel(
                name=name,
                version=version,
                url=req.url,
                archive_path=str(resolved.path),
                model_dir=str(model_dir),
                downloaded=resolved.downloaded,
                handler=req.handler or manifest.handler,
                runtime=req.runtime or manifest.runtime,
                batch_size=config.batch_size or req.batch_size,
                max_batch_delay=_first(config.max_batch_delay, req.max_batch_delay),
                response_timeout=config.response_timeout or req.response_timeout,
                startup_timeout=config.startup_timeout or req.startup_timeout,
                job_queue_size=config.job_queue_size,
                num_gpus=num_gpus,
                min_workers=workers,
                max_workers=max_workers if workers else 0,
                is_default=not self.versions(name),
                loaded_at_startup=req.loaded_at_startup,
                manifest=manifest.raw or {},
            )
            self.session.add(row)
            try:
                self.session.commit()
            except IntegrityError as exc:  # a concurrent registration of the same version won
                raise already_registered(
                    f"Model version {version} is already registered for model {name}"
                ) from exc
        except BaseException:
            self.session.rollback()
            self.store.discard(model_dir)
            if resolved.downloaded:
                self.store.discard(resolved.path)
            raise
        prefix = f'Model "{name}" Version: {version}'
        if workers <= 0:
            self._apply(name)
            return StatusResult(
                f"{prefix} registered with 0 initial workers. "
                "Use scale workers API to add workers for the model."
            )
        refused = self._apply(name)
        if not req.synchronous:  # the reconciler retries an application Serve refused
            return PROCESSING
        if refused is not None or not self._wait(name, row.startup_timeout):
            self._delete_version(row)
            raise _start_failed(name, version, refused)
        return StatusResult(f"{prefix} registered with {workers} initial workers")

    def scale(
        self,
        name: str,
        version: str | None,
        min_worker: int | None,
        max_worker: int | None,
        synchronous: bool,
        timeout_s: int = -1,
    ) -> StatusResult:
        """``PUT /models/{m}[/{v}]``: set min/max workers (replicas).

        Raises:
            NotFoundError: unknown model or version.
            BadRequestError: negative counts, max < min.
            StartFailedError: synchronous, and Serve refused the app or workers did not start.
        """
        row = self.get_or_raise(name, version)
        low = 1 if min_worker is None else min_worker
        high = low if max_worker is None else max_worker
        if low < 0 or high < 0:
            raise bad_request("Invalid worker count.")
        if high < low:
            raise bad_request("max_worker cannot be less than min_worker.")
        row.min_workers, row.max_workers = low, high
        self.session.commit()
        refused = self._apply(name)
        if not synchronous:
            return PROCESSING
        wait_s = timeout_s if timeout_s > 0 else self.settings.serving.load_timeout_s
        if high > 0 and (refused is not None or not self._wait(name, wait_s)):
            raise _start_failed(name, row.version, refused)
        suffix = f", version: {version}" if version else ""
        return StatusResult(f"Workers scaled to {low} for model: {name}{suffix}")

    def set_default(self, name: str, version: str) -> StatusResult:
        """``PUT /models/{m}/{v}/set-default``.

        Raises:
            NotFoundError: unknown model or version.
        """
        rows = self.versions(name)
        if not rows:
            raise model_not_found(name)
        if not any(r.version == version for r in rows):
            raise version_not_found(f"Model version {version} does not exist for model {name}")
        for row in rows:
            row.is_default = row.version == version
        self.session.commit()
        self._apply(name)
        return StatusResult(
            f'Default version successfully updated for model "{name}" to "{version}"'
        )

    def unregister(self, name: str, version: str | None = None) -> StatusResult:
        """``DELETE /models/{m}[/{v}]``.

        Raises:
            NotFoundError: unknown model or version.
            PermissionDeniedError: deleting the default version while others exist.
            InvalidStateError: the model is shared by a registered workflow.
        """
        rows = self.versions(name)
        row = self.get_or_raise(name, version)
        if version is not None and row.is_default and len(rows) > 1:
            raise PermissionDeniedError(
                f"Cannot remove default version {version} for model {name}",
                ts_type="InvalidModelVersionException",
            )
        users = self._workflows_sharing(name)
        if users and (version is None or len(rows) == 1):
            raise InvalidStateError(
                f"Model {name} is used by workflow(s): {', '.join(users)}",
                ts_type=CONFLICT,
            )
        targets = rows if version is None else [row]
        for target in targets:
            self._delete_version(target)
        return StatusResult(f'Model "{name}" unregistered')

    def workflow_node_models(self) -> dict[str, str]:
        """Model nodes of registered workflows, ``<wf>__<node>`` -> url (as TorchServe lists)."""
        return workflow_node_models(list(self.session.scalars(select(TorchServeWorkflow))))

    def _workflow_node_row(self, name: str) -> TorchServeModel | None:
        """An unsaved row describing a workflow's ``<wf>__<node>`` model node, if one exists."""
        wf_name, sep, node = name.partition("__")
        workflow = self.session.get(TorchServeWorkflow, wf_name) if sep else None
        return workflow_node_row(workflow, name, node) if workflow is not None else None

    # -- helpers -------------------------------------------------------------------------
    def _workflows_sharing(self, name: str) -> list[str]:
        app = model_app(name)
        rows = self.session.scalars(select(TorchServeWorkflow))
        shared = {w.name: WorkflowAppArgs.model_validate(w.app_args).shared for w in rows}
        return sorted(name for name, nodes in shared.items() if app in nodes.values())

    def _apply(self, name: str) -> str | None:
        """Record and apply the model's app (or remove it); Serve's error when it refused."""
        spec = model_app_spec(
            name,
            self.versions(name),
            self.settings.serving.max_ongoing_requests,
            self.settings.torchserve.max_extract_bytes,
            key_store_args(self.settings),
            handler_metrics_args(self.settings),
        )
        if spec is None:
            if self.apps.get(model_app(name)) is not None or self.apps.state(model_app(name)):
                self.apps.remove(model_app(name))
            return None
        return self.apps.put(spec, owner=MODEL_OWNER).last_error

    def _wait(self, name: str, timeout_s: float) -> bool:
        state = wait_running(self.gateway, model_app(name), timeout_s)
        return state is not None and state.running

    def _delete_version(self, row: TorchServeModel) -> None:
        name = row.name
        self.session.delete(row)
        self.session.commit()
        remaining = self.versions(name)
        if remaining and not any(r.is_default for r in remaining):
            remaining[0].is_default = True
            self.session.commit()
        if remaining:  # old replicas refuse the version until Serve has replaced them
            self.apps.retire(model_app(name), row.version)
        self._apply(name)
        self.store.discard(row.model_dir)
        if row.downloaded:
            self.store.discard(row.archive_path)
