"""TorchServe Model Management API: register, scale, describe, list, unregister, set-default.

Each model (all its versions) is one Serve application at ``/predictions/<name>``; workers are
replicas. A model with no workers has no application, so ``/predictions/<name>`` reaches the
control plane, which answers TorchServe's 503 "has no worker".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_plane.db.tables.torchserve import TorchServeModel, TorchServeWorkflow
from control_plane.errors import DomainError
from control_plane.integrations.serve_types import ServeGateway
from control_plane.services.artifact_store import ArtifactStore
from control_plane.services.serve_apps import ServeAppService
from control_plane.services.torchserve.apps import (
    MODEL_OWNER,
    model_app,
    model_app_spec,
    running_replicas,
    wait_running,
)
from control_plane.services.torchserve.errors import from_archive, ts_error
from control_plane.services.torchserve.pagination import paginate
from control_plane.services.torchserve.store import TorchServeStore
from control_plane.settings import Settings
from deployments.contracts.app_args import WorkflowAppArgs, WorkflowNodeConfig
from deployments.contracts.archives import RUNTIMES, ArchiveError, read_mar_manifest
from deployments.contracts.names import is_valid_name


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


@dataclass(frozen=True)
class ApiResult:
    """A status message and the HTTP status TorchServe answers with it."""

    status_code: int
    message: str


def not_found(name: str) -> DomainError:
    """TorchServe's unknown-model error."""
    return ts_error(404, "ModelNotFoundException", f"Model not found: {name}")


def version_not_found(name: str, version: str) -> DomainError:
    """TorchServe's unknown-version error."""
    return ts_error(
        404,
        "ModelVersionNotFoundException",
        f"Model version: {version} does not exist for model: {name}",
    )


def _config_workers(model_dir: Path, config_file: str | None) -> dict[str, Any]:
    if not config_file or not (model_dir / Path(config_file).name).is_file():
        return {}
    try:
        loaded = yaml.safe_load((model_dir / Path(config_file).name).read_text()) or {}
    except yaml.YAMLError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


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
        """A version (the default when None). Raises 404 as TorchServe does."""
        rows = self.versions(name)
        if not rows:
            raise not_found(name)
        if version is None:
            return rows[0]
        for row in rows:
            if row.version == version:
                return row
        raise version_not_found(name, version)

    def exists(self, name: str) -> bool:
        """True when any version of ``name`` is registered."""
        return bool(self.versions(name))

    def list_page(self, limit: str | None, token: str | None) -> dict[str, Any]:
        """``GET /models``: default versions, sorted by name, paginated."""
        rows = self.session.scalars(
            select(TorchServeModel).where(TorchServeModel.is_default.is_(True))
        )
        items = [{"modelName": r.name, "modelUrl": r.url} for r in rows]
        items += [{"modelName": n, "modelUrl": u} for n, u in self.workflow_node_models().items()]
        items.sort(key=lambda i: i["modelName"])
        page, next_token = paginate(items, limit, token)
        body: dict[str, Any] = {}
        if next_token is not None:
            body["nextPageToken"] = next_token
        body["models"] = page
        return body

    def describe(self, name: str, version: str | None = None) -> list[dict[str, Any]]:
        """``GET /models/{m}[/{v}|/all]``: an array of model descriptions."""
        rows = self.versions(name)
        if not rows:
            node = self._workflow_node_row(name)
            if node is None or version not in (None, "all", node.version):
                raise not_found(name)
            return [self._describe_row(node, node.min_workers)]
        selected = rows if version == "all" else [self.get_or_raise(name, version)]
        state = self.apps.state(model_app(name))
        replicas = running_replicas(state)
        return [self._describe_row(row, replicas if row.is_default else 0) for row in selected]

    @staticmethod
    def _describe_row(row: TorchServeModel, replicas: int) -> dict[str, Any]:
        workers = [
            {
                "id": f"{9000 + i}",
                "startTime": row.updated_at.isoformat(),
                "status": "READY",
                "memoryUsage": 0,
                "pid": -1,
                "gpu": False,
                "gpuUsage": "N/A",
            }
            for i in range(replicas)
        ]
        return {
            "modelName": row.name,
            "modelVersion": row.version,
            "modelUrl": row.url,
            "runtime": row.runtime,
            "minWorkers": row.min_workers,
            "maxWorkers": row.max_workers,
            "batchSize": row.batch_size,
            "maxBatchDelay": row.max_batch_delay,
            "responseTimeout": row.response_timeout,
            "startupTimeout": row.startup_timeout,
            "maxRetryTimeoutInSec": 300,
            "clientTimeoutInMills": 0,
            "parallelType": "",
            "parallelLevel": 0,
            "deviceType": "cpu",
            "continuousBatching": False,
            "useJobTicket": False,
            "useVenv": False,
            "stateful": False,
            "loadedAtStartup": row.loaded_at_startup,
            "workers": workers,
            "jobQueueStatus": {"remainingCapacity": 1000, "pendingRequests": 0},
        }

    # -- commands ------------------------------------------------------------------------
    def register(self, req: RegisterModel) -> ApiResult:
        """``POST /models``: resolve, extract, validate, record, deploy (and wait if synchronous).

        Raises:
            DomainError: TorchServe's errors (400/404/409/500).
        """
        if req.url is None:
            raise ts_error(400, "BadRequestException", "Parameter url is required.")
        if req.url == "":
            raise ts_error(404, "ModelNotFoundException", "empty url")
        if req.runtime is not None and req.runtime not in RUNTIMES:
            raise ts_error(400, "BadRequestException", f"Invalid RuntimeType value: {req.runtime}")
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
                raise ts_error(400, "BadRequestException", f"Invalid model name: {name}")
            if any(r.version == version for r in self.versions(name)):
                raise ts_error(
                    409,
                    "ConflictStatusException",
                    f"Model version {version} is already registered for model {name}",
                )
            self.store.install_requirements(model_dir, manifest.requirements_file, name)
            config = _config_workers(model_dir, manifest.config_file)
            workers = req.initial_workers
            if workers is None:
                workers = int(
                    config.get("minWorkers", self.settings.torchserve.default_workers_per_model)
                )
            max_workers = max(workers, int(config.get("maxWorkers", workers)))
            row = TorchServeModel(
                name=name,
                version=version,
                url=req.url,
                archive_path=str(resolved.path),
                model_dir=str(model_dir),
                downloaded=resolved.downloaded,
                handler=req.handler or manifest.handler,
                runtime=req.runtime or manifest.runtime,
                batch_size=req.batch_size,
                max_batch_delay=req.max_batch_delay,
                response_timeout=req.response_timeout,
                startup_timeout=req.startup_timeout,
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
                raise ts_error(
                    409,
                    "ConflictStatusException",
                    f"Model version {version} is already registered for model {name}",
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
            return ApiResult(
                200,
                f"{prefix} registered with 0 initial workers. "
                "Use scale workers API to add workers for the model.",
            )
        self._apply(name)
        if not req.synchronous:
            return ApiResult(202, "Processing worker updates...")
        if not self._wait(name, req.startup_timeout):
            self._delete_version(row)
            raise ts_error(
                500,
                "InternalServerException",
                f"Failed to start workers for model {name} version: {version}",
            )
        return ApiResult(200, f"{prefix} registered with {workers} initial workers")

    def scale(
        self,
        name: str,
        version: str | None,
        min_worker: int | None,
        max_worker: int | None,
        synchronous: bool,
        timeout_s: int = -1,
    ) -> ApiResult:
        """``PUT /models/{m}[/{v}]``: set min/max workers (replicas).

        Raises:
            DomainError: 404 unknown, 400 max < min.
        """
        row = self.get_or_raise(name, version)
        low = 1 if min_worker is None else min_worker
        high = low if max_worker is None else max_worker
        if low < 0 or high < 0:
            raise ts_error(400, "BadRequestException", "Invalid worker count.")
        if high < low:
            raise ts_error(400, "BadRequestException", "max_worker cannot be less than min_worker.")
        row.min_workers, row.max_workers = low, high
        self.session.commit()
        self._apply(name)
        if not synchronous:
            return ApiResult(202, "Processing worker updates...")
        wait_s = timeout_s if timeout_s > 0 else self.settings.serving.load_timeout_s
        if high > 0 and not self._wait(name, wait_s):
            raise ts_error(
                500,
                "InternalServerException",
                f"Failed to start workers for model {name} version: {row.version}",
            )
        suffix = f", version: {version}" if version else ""
        return ApiResult(200, f"Workers scaled to {low} for model: {name}{suffix}")

    def set_default(self, name: str, version: str) -> ApiResult:
        """``PUT /models/{m}/{v}/set-default``."""
        rows = self.versions(name)
        if not rows:
            raise not_found(name)
        if not any(r.version == version for r in rows):
            raise ts_error(
                404,
                "ModelVersionNotFoundException",
                f"Model version {version} does not exist for model {name}",
            )
        for row in rows:
            row.is_default = row.version == version
        self.session.commit()
        self._apply(name)
        return ApiResult(
            200, f'Default version successfully updated for model "{name}" to "{version}"'
        )

    def unregister(self, name: str, version: str | None = None) -> ApiResult:
        """``DELETE /models/{m}[/{v}]``.

        Raises:
            DomainError: 404 unknown; 403 deleting the default version while others exist;
                409 the model is shared by a registered workflow.
        """
        rows = self.versions(name)
        row = self.get_or_raise(name, version)
        if version is not None and row.is_default and len(rows) > 1:
            raise ts_error(
                403,
                "InvalidModelVersionException",
                f"Cannot remove default version {version} for model {name}",
            )
        users = self._workflows_sharing(name)
        if users and (version is None or len(rows) == 1):
            raise ts_error(
                409,
                "ConflictStatusException",
                f"Model {name} is used by workflow(s): {', '.join(users)}",
            )
        targets = rows if version is None else [row]
        for target in targets:
            self._delete_version(target)
        return ApiResult(200, f'Model "{name}" unregistered')

    def workflow_node_models(self) -> dict[str, str]:
        """Model nodes of registered workflows, ``<wf>__<node>`` -> url.

        Listed as TorchServe lists them; function nodes and shared registered models are not
        listed again.
        """
        nodes: dict[str, str] = {}
        for wf in self.session.scalars(select(TorchServeWorkflow)):
            args = WorkflowAppArgs.model_validate(wf.app_args)
            for node, spec in args.model_nodes().items():
                nodes[f"{wf.name}__{node}"] = spec.url or ""
        return nodes

    def _workflow_node_row(self, name: str) -> TorchServeModel | None:
        """An unsaved row describing a workflow's ``<wf>__<node>`` model node, if one exists."""
        wf_name, sep, node = name.partition("__")
        workflow = self.session.get(TorchServeWorkflow, wf_name) if sep else None
        if workflow is None:
            return None
        args = WorkflowAppArgs.model_validate(workflow.app_args)
        deployed = args.deployments.get(node)
        spec = deployed or args.inline.get(node)
        if spec is None:
            return None
        config = args.node_configs.get(node, WorkflowNodeConfig())
        low, high = args.driver_min_workers, args.driver_max_workers
        if deployed is not None:
            low, high = deployed.min_workers, deployed.max_workers
        return TorchServeModel(
            name=name,
            version="1.0",
            url=spec.url or "",
            runtime="python",
            min_workers=low,
            max_workers=high,
            batch_size=config.batch_size,
            max_batch_delay=config.max_batch_delay,
            response_timeout=int(spec.response_timeout),
            startup_timeout=120,
            loaded_at_startup=workflow.loaded_at_startup,
            updated_at=workflow.updated_at,
        )

    # -- helpers -------------------------------------------------------------------------
    def _workflows_sharing(self, name: str) -> list[str]:
        app = model_app(name)
        rows = self.session.scalars(select(TorchServeWorkflow))
        shared = {w.name: WorkflowAppArgs.model_validate(w.app_args).shared for w in rows}
        return sorted(name for name, nodes in shared.items() if app in nodes.values())

    def _apply(self, name: str) -> None:
        spec = model_app_spec(
            name,
            self.versions(name),
            self.settings.serving.max_ongoing_requests,
            self.settings.torchserve.max_extract_bytes,
        )
        if spec is None:
            if self.apps.get(model_app(name)) is not None or self.apps.state(model_app(name)):
                self.apps.remove(model_app(name))
            return
        self.apps.put(spec, owner=MODEL_OWNER)

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
        self._apply(name)
        self.store.discard(row.model_dir)
        if row.downloaded:
            self.store.discard(row.archive_path)
