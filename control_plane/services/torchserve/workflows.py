"""TorchServe Workflow Management API: register, describe, list, unregister (+ scale).

A workflow is one Serve application at ``/wfpredict/<name>``: a DAG driver with function nodes
and (fused) model nodes in-process, plus one deployment per model node that needs its own
scaling, plus DeploymentHandles to already registered models it shares.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_plane.db.tables.torchserve import TorchServeModel, TorchServeWorkflow
from control_plane.errors import BadRequestError, DomainError, UpstreamUnavailableError
from control_plane.integrations.serve_types import AppSpec, ServeGateway
from control_plane.schemas.torchserve.workflows import (
    TorchServeWorkflowPage,
    TorchServeWorkflowRead,
    TorchServeWorkflowSummary,
)
from control_plane.services.artifact_store import ArtifactStore
from control_plane.services.serve_apps import ServeAppService
from control_plane.services.torchserve.apps import (
    WORKFLOW_OWNER,
    gpus_per_replica,
    handler_metrics_args,
    model_app,
    read_model_config,
    wait_running,
    workflow_app,
)
from control_plane.services.torchserve.errors import (
    already_registered,
    bad_request,
    from_archive,
    model_not_found,
    start_failed,
    workflow_not_found,
)
from control_plane.services.torchserve.pagination import paginate
from control_plane.services.torchserve.results import Outcome, StatusResult
from control_plane.services.torchserve.store import ResolvedArchive, TorchServeStore
from control_plane.services.torchserve.tokens import key_store_args
from control_plane.settings import Settings
from deployments.contracts.app_args import (
    TorchServeVersionArgs,
    WorkflowAppArgs,
    WorkflowNodeConfig,
    WorkflowNodeModelArgs,
)
from deployments.contracts.archives import (
    ArchiveError,
    InvalidArchiveError,
    read_mar_manifest,
    read_war_manifest,
)
from deployments.contracts.ts_model_config import ModelConfigError, parse_model_config
from deployments.contracts.workflow_spec import (
    ModelEntry,
    WorkflowSpec,
    dag_string,
    missing_function_nodes,
    parse_spec,
)

WORKFLOW_FAILED = "WorkflowException"


def _registration_failed(name: str, failures: list[str]) -> DomainError:
    return start_failed(
        f"Workflow {name} has failed to register. Failures: [{', '.join(failures)}]",
        WORKFLOW_FAILED,
    )


class TorchServeWorkflowService:
    """Registered ``.war`` workflows and their Serve applications."""

    def __init__(self, session: Session, gateway: ServeGateway, settings: Settings) -> None:
        self.session = session
        self.gateway = gateway
        self.settings = settings
        self.store = TorchServeStore(settings)
        self.apps = ServeAppService(session, gateway, ArtifactStore.from_settings(settings))

    def get_or_raise(self, name: str) -> TorchServeWorkflow:
        """The workflow.

        Raises:
            NotFoundError: TorchServe's "Workflow not found: <name>".
        """
        row = self.session.get(TorchServeWorkflow, name)
        if row is None:
            raise workflow_not_found(name)
        return row

    def exists(self, name: str) -> bool:
        """True when the workflow is registered."""
        return self.session.get(TorchServeWorkflow, name) is not None

    def describe(self, name: str) -> list[TorchServeWorkflowRead]:
        """``GET /workflows/{name}``: a one-element array with the global spec values.

        Raises:
            NotFoundError: unknown workflow.
        """
        row = self.get_or_raise(name)
        glob = row.spec["globals"]
        return [
            TorchServeWorkflowRead(
                workflow_name=row.name,
                workflow_url=row.url,
                min_workers=glob["min_workers"],
                max_workers=glob["max_workers"],
                batch_size=glob["batch_size"],
                max_batch_delay=glob["max_batch_delay"],
                workflow_dag=dag_string(row.spec["dag"]),
            )
        ]

    def list_page(self, limit: str | None, token: str | None) -> TorchServeWorkflowPage:
        """``GET /workflows``: sorted by name, TorchServe pagination."""
        rows = self.session.scalars(select(TorchServeWorkflow).order_by(TorchServeWorkflow.name))
        items = [TorchServeWorkflowSummary(workflow_name=r.name, workflow_url=r.url) for r in rows]
        page, next_token = paginate(items, limit, token)
        return TorchServeWorkflowPage(next_page_token=next_token, workflows=page)

    def refuse_prediction(self, name: str) -> NoReturn:
        """Why ``/wfpredict/<name>`` reached the control plane: no app serves it.

        Raises:
            NotFoundError: unknown workflow.
            UpstreamUnavailableError: registered, but its application is not running.
        """
        self.get_or_raise(name)
        raise UpstreamUnavailableError(
            f"Workflow {name} has no worker ready.", ts_type="ServiceUnavailableException"
        )

    def register(
        self,
        url: str | None,
        workflow_name: str | None = None,
        *,
        execution: str | None = None,
        synchronous: bool = True,
        loaded_at_startup: bool = False,
    ) -> StatusResult:
        """``POST /workflows``: TorchServe's processing order, then deploy and wait.

        A synchronous registration whose application Serve refuses, or that does not run
        within ``serving.load_timeout_s``, is rolled back (row, recorded app, extracted files).

        Raises:
            DomainError: TorchServe's errors (bad request, not found, conflict, invalid
                archive, failed registration).
        """
        if url is None:
            raise bad_request("Parameter url is required.")
        mode = execution or self.settings.torchserve.workflow_execution
        if mode not in ("auto", "fused", "separate"):
            raise bad_request(f"Invalid execution mode: {mode}")
        resolved = self.store.resolve(url, workflow=True)
        cleanup: list[Path] = [resolved.path] if resolved.downloaded else []
        try:
            war_dir = self.store.extract(resolved.path, "workflows")
            cleanup.append(war_dir)
            try:
                manifest = read_war_manifest(war_dir, workflow_name)
                spec_path = war_dir / manifest.spec_file
                if not spec_path.is_file():
                    raise InvalidArchiveError(spec_path.name, ts_type="NoSuchFileException")
                spec = parse_spec(spec_path.read_text(encoding="utf-8"))
            except ArchiveError as exc:
                raise from_archive(exc) from exc
            name = manifest.workflow_name
            if self.exists(name):
                raise already_registered(f"Workflow {name} is already registered.")
            args = self._app_args(name, resolved, war_dir, manifest.handler, spec, mode, cleanup)
            row = TorchServeWorkflow(
                name=name,
                url=url,
                archive_path=str(resolved.path),
                war_dir=str(war_dir),
                downloaded=resolved.downloaded,
                handler=manifest.handler,
                spec={
                    "globals": spec.globals.to_dict(),
                    "dag": spec.raw_dag,
                    "models": {
                        k: {"url": m.url, **m.config.to_dict()} for k, m in spec.models.items()
                    },
                },
                execution=mode,
                app_args=args.to_json(),
                loaded_at_startup=loaded_at_startup,
            )
            self.session.add(row)
            try:
                self.session.commit()
            except IntegrityError as exc:  # a concurrent registration of the same name won
                raise already_registered(f"Workflow {name} is already registered.") from exc
        except BaseException:
            self.session.rollback()
            for path in cleanup:
                self.store.discard(path)
            raise
        record = self.apps.put(
            AppSpec(workflow_app(name), f"/wfpredict/{name}", args), owner=WORKFLOW_OWNER
        )
        if synchronous:  # otherwise the reconciler retries an application Serve refused
            detail = record.last_error
            if detail is None:
                state = wait_running(
                    self.gateway, workflow_app(name), self.settings.serving.load_timeout_s
                )
                if state is None or not state.running:
                    detail = (state.message if state else "") or "workers did not start"
            if detail is not None:
                self._remove(row)
                raise _registration_failed(
                    name, [f"Failed to start workers for workflow {name}: {detail[:500]}"]
                )
        return StatusResult(f"Workflow {name} has been registered and scaled successfully.")

    def _app_args(
        self,
        name: str,
        resolved: ResolvedArchive,
        war_dir: Path,
        handler: str,
        spec: WorkflowSpec,
        mode: str,
        cleanup: list[Path],
    ) -> WorkflowAppArgs:
        failures: list[str] = []
        inline: dict[str, TorchServeVersionArgs] = {}
        deployments: dict[str, WorkflowNodeModelArgs] = {}
        shared: dict[str, str] = {}
        driver_gpus = 0.0
        handler_file = war_dir / handler
        source = handler_file.read_text(encoding="utf-8") if handler_file.is_file() else ""
        for node in missing_function_nodes(source, spec.function_nodes()):
            failures.append(
                f"Workflow Node {name}__{node} failed to register. Details: no function {node} "
                f"(and no single handler class) in {handler}"
            )
        for node in spec.model_nodes():
            entry = spec.models[node]
            try:
                reused = self._shared_model(node, entry)
                if reused is not None:
                    shared[node] = model_app(reused)
                    continue
                version, num_gpus = self._node_model(name, node, entry, cleanup)
            except BadRequestError:
                raise  # bad model-config of a node / GPUs the cluster lacks: 400, not a failure
            except DomainError as exc:
                failures.append(
                    f"Workflow Node {name}__{node} failed to register. Details: {exc.message}"
                )
                continue
            # A node that needs its own scaling or its own GPU gets its own deployment (in auto
            # mode); fused GPU nodes share the driver replica's GPU.
            own_scaling = entry.config.max_workers > 1 or entry.config.min_workers > 1
            if mode == "separate" or (mode == "auto" and (own_scaling or num_gpus > 0)):
                deployments[node] = WorkflowNodeModelArgs(
                    **version.model_dump(),
                    min_workers=entry.config.min_workers,
                    max_workers=entry.config.max_workers,
                    num_gpus=num_gpus,
                )
            else:
                inline[node] = version
                driver_gpus = max(driver_gpus, num_gpus)
        if failures:
            raise _registration_failed(name, failures)
        node_configs = {
            n: WorkflowNodeConfig(
                **(
                    spec.models[n].config.to_dict()
                    if n in spec.models
                    else {**spec.globals.to_dict(), "batch_size": 1, "max_batch_delay": 0}
                )
            )
            for n in spec.dag.nodes
        }
        return WorkflowAppArgs(
            name=name,
            archive=str(resolved.path),
            war_dir=str(war_dir),
            handler=handler,
            dag={n: spec.dag.children[n] for n in spec.dag.nodes},
            node_configs=node_configs,
            function_nodes=spec.function_nodes(),
            inline=inline,
            deployments=deployments,
            shared=shared,
            driver_min_workers=spec.globals.min_workers if not deployments else 1,
            driver_max_workers=max(spec.globals.max_workers, 1) if not deployments else 1,
            max_ongoing_requests=self.settings.serving.max_ongoing_requests,
            max_extract_bytes=self.settings.torchserve.max_extract_bytes,
            key_store=key_store_args(self.settings),
            driver_num_gpus=driver_gpus,
            handler_metrics=handler_metrics_args(self.settings),
        )

    def _shared_model(self, node: str, entry: ModelEntry) -> str | None:
        """A registered model (with workers) the node names by model name or by url."""
        rows = self.session.scalars(
            select(TorchServeModel).where(TorchServeModel.is_default.is_(True))
        )
        for row in rows:
            if row.max_workers > 0 and (row.name == node or row.url == entry.url):
                return row.name
        return None

    def _node_model(
        self, wf: str, node: str, entry: ModelEntry, cleanup: list[Path]
    ) -> tuple[TorchServeVersionArgs, float]:
        """What the node loads, and the GPUs per replica its ``.mar``'s model-config asks for.

        Raises:
            BadRequestError: the node's model-config.yaml has a bad value, or it asks for GPUs
                the cluster does not have (no CPU fallback).
            DomainError: the archive is missing or invalid.
        """
        resolved = self.store.resolve(entry.url, workflow=False)
        if resolved.downloaded:
            cleanup.append(resolved.path)
        model_dir = self.store.extract(resolved.path, "models")
        cleanup.append(model_dir)
        try:
            manifest = read_mar_manifest(model_dir, f"{wf}__{node}")
        except ArchiveError as exc:
            raise from_archive(exc) from exc
        self.store.install_requirements(model_dir, manifest.requirements_file, f"{wf}__{node}")
        try:
            config = parse_model_config(read_model_config(model_dir, manifest.config_file))
        except ModelConfigError as exc:
            raise bad_request(f"Workflow node {node}: {exc}") from exc
        num_gpus = gpus_per_replica(
            self.settings, self.gateway, f"{wf}__{node}", config.device_type
        )
        version = TorchServeVersionArgs(
            archive=str(resolved.path),
            model_dir=str(model_dir),
            handler=manifest.handler,
            batch_size=entry.config.batch_size,
            max_batch_delay=entry.config.max_batch_delay,
            response_timeout=max(1, entry.config.timeout_ms // 1000),
            url=entry.url,
            downloaded=resolved.downloaded,
        )
        return version, num_gpus

    def scale(
        self, name: str, min_worker: int | None, max_worker: int | None, node: str | None
    ) -> StatusResult:
        """``PUT /workflows/{name}`` (extension): scale the driver, or one model-node deployment.

        Raises:
            NotFoundError: unknown workflow or node.
            BadRequestError: bad bounds.
        """
        row = self.get_or_raise(name)
        low = 1 if min_worker is None else min_worker
        high = low if max_worker is None else max_worker
        if low < 0 or high < 1 or high < low:
            raise bad_request("max_worker cannot be less than min_worker.")
        args = WorkflowAppArgs.model_validate(row.app_args)
        if node is None:
            args.driver_min_workers, args.driver_max_workers = low, high
        else:
            if node in args.inline:  # a fused node that now needs its own scaling: own deployment
                fused = args.inline.pop(node)
                args.deployments[node] = WorkflowNodeModelArgs(
                    **fused.model_dump(), min_workers=low, max_workers=high
                )
            if node not in args.deployments:
                raise model_not_found(f"{name}__{node}")
            args.deployments[node].min_workers, args.deployments[node].max_workers = low, high
        row.app_args = args.to_json()
        self.session.commit()
        self.apps.put(AppSpec(workflow_app(name), f"/wfpredict/{name}", args), owner=WORKFLOW_OWNER)
        target = f"workflow: {name}" if node is None else f"model: {name}__{node}"
        return StatusResult(
            f"Processing worker updates for {target} ({low}-{high} workers)", Outcome.ACCEPTED
        )

    def unregister(self, name: str) -> StatusResult:
        """``DELETE /workflows/{name}``.

        Raises:
            NotFoundError: unknown workflow.
        """
        row = self.get_or_raise(name)
        self._remove(row)
        return StatusResult(f'Workflow "{name}" unregistered')

    def _remove(self, row: TorchServeWorkflow) -> None:
        args = WorkflowAppArgs.model_validate(row.app_args)
        self.session.delete(row)
        self.session.commit()
        self.apps.remove(workflow_app(row.name))
        self.store.discard(row.war_dir)
        for model_node in args.model_nodes().values():
            self.store.discard(model_node.model_dir)
            if model_node.downloaded:
                self.store.discard(model_node.archive)
        if row.downloaded:
            self.store.discard(row.archive_path)
