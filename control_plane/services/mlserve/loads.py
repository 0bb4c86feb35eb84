"""Load and unload stored models on tritons; records of where each model is loaded.

The built-in server goes through ``TritonModelService`` (a Ray Serve application per model);
external tritons get the model pushed through the repository extension (JSON config plus
base64 ``file:`` overrides), so they need no shared disk. With a triton ``path`` the platform
can write to, the model directory is copied there and loaded by name instead.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.db.tables.mlserve import BUILTIN_TRITON_ID, ModelLoad, TritonServer
from control_plane.db.tables.registered_models import RegisteredModel
from control_plane.errors import (
    BadRequestError,
    DomainError,
    UpstreamError,
    UpstreamUnavailableError,
)
from control_plane.integrations import triton_client
from control_plane.integrations.serve_types import ServeGateway
from control_plane.services.artifact_store import ArtifactStore
from control_plane.services.mlserve.lookup import resolve
from control_plane.services.mlserve.model_config import (
    check_config_name,
    parse_pbtxt,
    with_version_policy,
)
from control_plane.services.mlserve.model_files import override_files, version_dirs
from control_plane.services.mlserve.targets import is_builtin, triton_url
from control_plane.settings import Settings

logger = logging.getLogger(__name__)


def builtin_service(session: Session, gateway: ServeGateway, settings: Settings) -> Any:
    """The v2 surface's ``TritonModelService`` (the built-in server).

    Raises:
        UpstreamUnavailableError: the built-in server is not part of this build.
    """
    try:
        from control_plane.services.triton_models import TritonModelService
    except ImportError as exc:
        raise UpstreamUnavailableError(
            f"the built-in server is not available in this build: {exc}", code="builtin_unavailable"
        ) from None
    return TritonModelService(session, gateway, settings)


class LoadService:
    """Load/unload a model on one triton, and keep ``mlserve_model_loads`` in step."""

    def __init__(self, session: Session, gateway: ServeGateway, settings: Settings) -> None:
        self.session = session
        self.gateway = gateway
        self.settings = settings
        self.repo_root = settings.store_root / "models"

    # -- queries ---------------------------------------------------------------------------
    def records(self, model_id: int) -> list[tuple[ModelLoad, TritonServer]]:
        """Where the model is loaded, with the tritons.

        On the built-in server the v2 surface's ``registered_models.loaded`` is the truth (a
        model loaded through ``/v2/repository`` counts too); our record only adds the version.
        """
        model = self.session.get(RegisteredModel, model_id)
        rows = self.session.execute(
            select(ModelLoad, TritonServer)
            .join(TritonServer, TritonServer.id == ModelLoad.triton_id)
            .where(ModelLoad.model_id == model_id)
            .order_by(TritonServer.id)
        )
        pairs = list(rows.tuples())
        out = [(load, triton) for load, triton in pairs if not is_builtin(triton)]
        builtin = [(load, triton) for load, triton in pairs if is_builtin(triton)]
        if model is not None and model.loaded:
            if not builtin:
                triton = self.session.get(TritonServer, BUILTIN_TRITON_ID)
                if triton is not None:
                    version = model.version_pin
                    builtin = [
                        (
                            ModelLoad(
                                model_id=model_id,
                                triton_id=triton.id,
                                version=version,
                                state="READY",
                                error="",
                            ),
                            triton,
                        )
                    ]
            out = builtin + out
        return out

    def model_dir(self, model: RegisteredModel) -> Path:
        """The model's directory in the store."""
        ArtifactStore.from_settings(self.settings).fetch(model.source_dir)
        return self.settings.store_root / model.source_dir

    # -- commands --------------------------------------------------------------------------
    def load(
        self, model: RegisteredModel, triton: TritonServer, version: int | None = None
    ) -> None:
        """Load (or reload) ``model`` on ``triton`` and record it.

        Raises:
            BadRequestError: the version does not exist, or the model cannot be pushed.
            UpstreamError: the triton refused the load (its text is included).
            UpstreamUnavailableError: the triton is unreachable.
        """
        model_dir = self.model_dir(model)
        versions = version_dirs(model_dir)
        if not versions:
            raise BadRequestError(f"model '{model.name}' has no ready version", code="no_version")
        if version is not None and version not in versions:
            raise BadRequestError(
                f"model '{model.name}' has no version {version} (has {versions})",
                code="no_such_version",
            )
        if is_builtin(triton):
            self._load_builtin(model, version)
        else:
            self._load_external(model, triton, model_dir, versions, version)
        record = self.session.scalar(
            select(ModelLoad).where(
                ModelLoad.model_id == model.id, ModelLoad.triton_id == triton.id
            )
        )
        if record is None:
            record = ModelLoad(model_id=model.id, triton_id=triton.id)
            self.session.add(record)
        record.version = version
        record.state, record.error, record.checked_at = "READY", "", datetime.now(UTC)
        self.session.commit()

    def _load_builtin(self, model: RegisteredModel, version: int | None) -> None:
        service = builtin_service(self.session, self.gateway, self.settings)
        try:
            service.load(model.name, version=version)
        except BadRequestError as exc:
            raise UpstreamError(exc.message, code="builtin_load_failed") from None

    def _load_external(
        self,
        model: RegisteredModel,
        triton: TritonServer,
        model_dir: Path,
        versions: list[int],
        version: int | None,
    ) -> None:
        url = triton_url(self.settings, triton)
        config = parse_pbtxt((model_dir / "config.pbtxt").read_text())
        check_config_name(config, model.name)
        config["name"] = model.name
        if triton.path:
            target = Path(triton.path) / model.name
            if target.parent.is_dir():
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(model_dir, target)
                if version is None:
                    triton_client.load_model(url, model.name)
                else:
                    triton_client.load_model(
                        url, model.name, config=with_version_policy(config, version)
                    )
                return
            logger.info("triton %s path %s is not writable here; pushing files", url, triton.path)
        pushed = [version] if version is not None else versions
        files = override_files(model_dir, pushed)
        triton_client.load_model(
            url, model.name, config=with_version_policy(config, version), files=files
        )

    def unload(self, model: RegisteredModel, triton: TritonServer) -> None:
        """Unload ``model`` from ``triton`` and forget the record (not loaded is fine).

        Raises:
            UpstreamError: the triton refused the unload.
            UpstreamUnavailableError: the triton is unreachable.
        """
        if is_builtin(triton):
            builtin_service(self.session, self.gateway, self.settings).unload(model.name)
        else:
            triton_client.unload_model(triton_url(self.settings, triton), model.name)
        record = self.session.scalar(
            select(ModelLoad).where(
                ModelLoad.model_id == model.id, ModelLoad.triton_id == triton.id
            )
        )
        if record is not None:
            self.session.delete(record)
            self.session.commit()

    def unload_everywhere(self, model: RegisteredModel) -> list[str]:
        """Unload from every triton that has it; returns the errors of unreachable tritons."""
        problems = []
        for _load, triton in self.records(model.id):
            try:
                self.unload(model, triton)
            except DomainError as exc:
                problems.append(exc.message)
                logger.warning(
                    "unloading %s from triton %s failed: %s", model.name, triton.id, exc.message
                )
        return problems

    def reload_everywhere(self, model: RegisteredModel) -> None:
        """Reload on every triton where the model is loaded (after its files changed).

        A pinned version that no longer exists falls back to the default policy.
        """
        versions = version_dirs(self.model_dir(model))
        for load, triton in self.records(model.id):
            version = load.version if load.version in versions else None
            try:
                self.load(model, triton, version)
            except DomainError as exc:
                load.state, load.error = "UNAVAILABLE", exc.message[:2000]
                self.session.commit()
                logger.warning(
                    "reloading %s on triton %s failed: %s", model.name, triton.id, exc.message
                )

    def recheck(self) -> dict[str, str]:
        """On start: re-push external loads a triton lost (e.g. it restarted) and refresh states.

        Built-in loads are brought back by the reconciler from the Serve app records.
        """
        outcome: dict[str, str] = {}
        rows = self.session.execute(
            select(ModelLoad, TritonServer, RegisteredModel)
            .join(TritonServer, TritonServer.id == ModelLoad.triton_id)
            .join(RegisteredModel, RegisteredModel.id == ModelLoad.model_id)
        ).tuples()
        for load, triton, model in list(rows):
            key = f"{model.name}@{triton.id}"
            if is_builtin(triton):
                outcome[key] = "builtin"
                continue
            url = triton_url(self.settings, triton)
            try:
                if not triton_client.model_ready(url, model.name):
                    self.load(model, triton, load.version)
                    outcome[key] = "reloaded"
                else:
                    load.state, load.error = "READY", ""
                    outcome[key] = "ready"
            except DomainError as exc:
                load.state, load.error = "UNAVAILABLE", exc.message[:2000]
                outcome[key] = "unavailable"
            load.checked_at = datetime.now(UTC)
            self.session.commit()
        return outcome

    def resolve_triton(self, ident: str | int) -> TritonServer:
        """A triton row by id or name (``0``/``builtin`` is the built-in server).

        Raises:
            NotFoundError: unknown triton.
        """
        return resolve(self.session, TritonServer, ident, "triton")
