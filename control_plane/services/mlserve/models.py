"""The versioned model store.

``<store>/models/<name>/`` in Triton layout, one ``registered_models`` row per model (shared
with the v2 surface), MLServe extras beside it.
"""

from __future__ import annotations

import builtins
import logging
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.db.tables.mlserve import ModelInfo, ModelLoad, ModelVersion, TritonServer
from control_plane.db.tables.registered_models import RegisteredModel
from control_plane.errors import AlreadyExistsError, BadRequestError, InvalidStateError
from control_plane.integrations import triton_client
from control_plane.integrations.serve_types import ServeGateway
from control_plane.schemas.mlserve.models import (
    ModelDetail,
    ModelPatch,
    ModelRead,
    ModelTritonRef,
    VersionRead,
    VersionUploaded,
)
from control_plane.services.artifact_store import ArtifactStore
from control_plane.services.mlserve.loads import LoadService
from control_plane.services.mlserve.lookup import check_name, resolve
from control_plane.services.mlserve.model_config import (
    check_config_name,
    merge_config,
    onnx_config,
    parse_pbtxt,
    render_pbtxt,
)
from control_plane.services.mlserve.model_files import (
    ByteBudget,
    IncomingFile,
    copy_stream,
    default_place,
    extract_archive,
    hoist_single_dir,
    is_archive,
    safe_relpath,
    version_dirs,
)
from control_plane.services.mlserve.model_views import ms_to_dt, safe_stats, triton_view, with_stats
from control_plane.services.mlserve.targets import triton_address, triton_url
from control_plane.services.mlserve.versions import VersionService
from control_plane.settings import Settings

logger = logging.getLogger(__name__)


class ModelStoreService:
    """Create, read, patch and delete stored models; reads per-triton metadata live."""

    def __init__(self, session: Session, gateway: ServeGateway, settings: Settings) -> None:
        self.session = session
        self.gateway = gateway
        self.settings = settings
        self.repo_root = settings.store_root / "models"
        self.staging_root = settings.store_root / ".mlserve-staging"
        self.loads = LoadService(session, gateway, settings)
        self.versions = VersionService(session, settings)
        self.artifacts = ArtifactStore.from_settings(settings)

    # -- helpers ---------------------------------------------------------------------------
    def get_row(self, ident: str) -> RegisteredModel:
        """The registry row of a model by id or name.

        Raises:
            NotFoundError: unknown model.
        """
        return resolve(self.session, RegisteredModel, ident, "model")

    def model_dir(self, model: RegisteredModel) -> Path:
        """The model's store directory (mirrored from the object store if only there)."""
        self.artifacts.fetch(model.source_dir)
        return self.settings.store_root / model.source_dir

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A scratch directory on the store's filesystem (so the final move is a rename)."""
        path = self.staging_root / uuid.uuid4().hex
        path.mkdir(parents=True)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def read_config(self, model_dir: Path, name: str) -> dict[str, Any]:
        """The model's config as Triton JSON (generated from model.onnx when absent).

        Raises:
            BadRequestError: missing/invalid config, or a name mismatch.
        """
        pbtxt = model_dir / "config.pbtxt"
        if pbtxt.is_file():
            config = parse_pbtxt(pbtxt.read_text(errors="replace"))
            check_config_name(config, name)
            return config
        onnx_files = sorted(model_dir.glob("[1-9]*/model.onnx"))
        if onnx_files:
            return onnx_config(onnx_files[-1], name)
        raise BadRequestError("config.pbtxt required", code="config_required")

    # -- create ----------------------------------------------------------------------------
    def _receive(self, files: builtins.list[IncomingFile], dest: Path, scratch: Path) -> str | None:
        budget = ByteBudget(self.settings.store.max_upload_bytes)
        if not files:
            raise BadRequestError("no files[] parts in the upload", code="no_files")
        if len(files) == 1 and is_archive(files[0].filename):
            archive = scratch / "upload.archive"
            copy_stream(files[0].stream, archive, ByteBudget(self.settings.store.max_upload_bytes))
            extract_archive(archive, dest, budget)
            archive.unlink()
            return hoist_single_dir(dest)
        targets = [default_place(safe_relpath(f.filename)) for f in files]
        if len(set(targets)) != len(targets):
            raise BadRequestError("the upload names the same file twice", code="duplicate_file")
        for upload, rel in zip(files, targets, strict=True):
            copy_stream(upload.stream, dest / rel, budget)
        # files named "<model>/config.pbtxt", "<model>/1/model.py": a whole directory upload
        return hoist_single_dir(dest)

    def create(self, name: str | None, files: builtins.list[IncomingFile]) -> int:
        """Store a new model from ``files[]`` (loose files or one zip/tar.gz of the model dir).

        Raises:
            BadRequestError: unsafe paths, invalid config, no version directory, bad name.
            PayloadTooLargeError: over ``store.max_upload_bytes``.
            AlreadyExistsError: the name is taken.
        """
        if name:
            check_name(name, "model")
        with self.staging() as scratch:
            dest = scratch / "model"
            dest.mkdir()
            hint = self._receive(files, dest, scratch)
            if not name:
                name = hint
                if not name and (dest / "config.pbtxt").is_file():
                    name = parse_pbtxt((dest / "config.pbtxt").read_text(errors="replace")).get(
                        "name"
                    )
                if not name:
                    raise BadRequestError("a model 'name' is required", code="name_required")
                check_name(name, "model")
            config = self.read_config(dest, name)
            if not (dest / "config.pbtxt").exists():
                (dest / "config.pbtxt").write_text(render_pbtxt(config))
            versions = version_dirs(dest)
            if not versions:
                raise BadRequestError(
                    "the model has no numeric version directory (e.g. 1/model.py)",
                    code="no_version",
                )
            target = self.repo_root / name
            if (
                self.session.scalar(select(RegisteredModel.id).where(RegisteredModel.name == name))
                or target.exists()
            ):
                raise AlreadyExistsError(f"model '{name}' already exists", code="model_exists")
            self.repo_root.mkdir(parents=True, exist_ok=True)
            dest.rename(target)
        try:
            model = RegisteredModel(name=name, source_dir=f"models/{name}", loaded=False)
            self.session.add(model)
            self.session.flush()
            self.session.add(ModelInfo(model_id=model.id))
            for version in versions:
                self.session.add(
                    ModelVersion(model_id=model.id, version=version, state="ready", upload={})
                )
            self.session.commit()
        except Exception:
            self.session.rollback()
            shutil.rmtree(target, ignore_errors=True)
            raise
        self.artifacts.publish(model.source_dir)
        return model.id

    # -- read ------------------------------------------------------------------------------
    def _stats(
        self, model: RegisteredModel, records: builtins.list[tuple[ModelLoad, TritonServer]]
    ) -> builtins.list[dict[str, Any]]:
        urls = [triton_url(self.settings, t) for _l, t in records]
        if not urls:
            return []
        results = triton_client.fan_out(lambda url: safe_stats(url, model.name), urls)
        return [entry for entries in results for entry in entries]

    def _read(
        self, model: RegisteredModel, stats: builtins.list[dict[str, Any]] | None = None
    ) -> ModelRead:
        records = self.loads.records(model.id)
        versions = version_dirs(self.model_dir(model))
        if stats is None:
            stats = self._stats(model, records)
        info = self.session.get(ModelInfo, model.id)
        last = max((int(s.get("last_inference") or 0) for s in stats), default=0)
        refs = []
        for load, triton in records:
            host, port = triton_address(self.settings, triton)
            refs.append(
                ModelTritonRef(
                    id=triton.id,
                    ip=host,
                    host=host,
                    port=str(port),
                    version=load.version,
                    state=load.state,
                )
            )
        return ModelRead(
            id=model.id,
            name=model.name,
            description=info.description if info else "",
            path=str(self.model_dir(model)),
            versions=versions,
            latest_version=versions[-1] if versions else None,
            tritons=refs,
            state="READY" if any(r.state == "READY" for r in refs) else "UNAVAILABLE",
            inference_count=sum(int(s.get("inference_count") or 0) for s in stats),
            last_inference=ms_to_dt(last),
            create_at=model.created_at,
        )

    def list(self) -> builtins.list[ModelRead]:
        """Every stored model (rows whose directory exists in the store)."""
        query = select(RegisteredModel).order_by(RegisteredModel.id)
        models = [m for m in self.session.scalars(query) if m.source_dir.startswith("models/")]
        # One pool for every (model, triton) /stats call, so the list costs one timeout at most.
        calls = [
            (m.id, m.name, triton_url(self.settings, t))
            for m in models
            for _load, t in self.loads.records(m.id)
        ]
        stats: dict[int, builtins.list[dict[str, Any]]] = {m.id: [] for m in models}
        if calls:
            results = triton_client.fan_out(lambda call: safe_stats(call[2], call[1]), calls)
            for (model_id, _name, _url), entries in zip(calls, results, strict=True):
                stats[model_id].extend(entries)
        return [self._read(m, stats[m.id]) for m in models]

    def get(self, ident: str) -> ModelRead:
        """One model's summary (no per-triton calls beyond /stats)."""
        return self._read(self.get_row(ident))

    def detail(self, ident: str, triton: str | None = None) -> ModelDetail:
        """The model, its store config, version details and each loaded triton's live view.

        Args:
            ident: model id or name.
            triton: keep only this triton (id or name) in ``tritons`` and ``servers``; the
                state and the version counts still cover every triton.

        Raises:
            NotFoundError: unknown model.
        """
        model = self.get_row(ident)
        base = self._read(model)
        records = self.loads.records(model.id)
        views = triton_client.fan_out(lambda rec: triton_view(self.settings, model, *rec), records)
        try:
            config = self.read_config(self.model_dir(model), model.name)
        except BadRequestError as exc:
            config = {"error": exc.message}
        servers = {f"{v.host}:{v.port}": v.metadata for v in views}
        shown = views
        if triton is not None:
            shown = [v for v in views if str(v.id) == triton or v.name == triton]
            keys = {f"{v.host}:{v.port}" for v in shown}
            servers = {k: v for k, v in servers.items() if k in keys}
        data = base.model_dump(exclude={"tritons"})
        state = "READY" if any(v.state == "READY" for v in views) else "UNAVAILABLE"
        data.update(
            state=state,
            config=config,
            servers=servers,
            tritons=shown,
            version_details=with_stats(self.versions.list(model), views),
        )
        return ModelDetail(**data)

    # -- update ----------------------------------------------------------------------------
    def patch(self, ident: str, body: ModelPatch) -> None:
        """Merge a partial JSON config, rename, or set the description; reloads where loaded.

        Raises:
            BadRequestError: invalid config or name.
            InvalidStateError: renaming a loaded model.
            AlreadyExistsError: the new name is taken.
        """
        model = self.get_row(ident)
        model_dir = self.model_dir(model)
        if body.description is not None:
            info = self.session.get(ModelInfo, model.id) or ModelInfo(model_id=model.id)
            info.description = body.description
            self.session.add(info)
        if body.config:
            config = merge_config(self.read_config(model_dir, model.name), body.config)
            check_config_name(config, model.name)
            (model_dir / "config.pbtxt").write_text(render_pbtxt(config))
        old_source = model.source_dir
        if body.name and body.name != model.name:
            self._rename(model, body.name)
        self.session.commit()
        self.artifacts.publish(model.source_dir)
        if model.source_dir != old_source:
            self.artifacts.delete(old_source)
        if body.config:
            self.loads.reload_everywhere(model)

    def _rename(self, model: RegisteredModel, new_name: str) -> None:
        check_name(new_name, "model")
        if self.loads.records(model.id) or model.loaded:
            raise InvalidStateError(
                "unload the model everywhere before renaming it", code="model_loaded"
            )
        if (
            self.session.scalar(select(RegisteredModel.id).where(RegisteredModel.name == new_name))
            or (self.repo_root / new_name).exists()
        ):
            raise AlreadyExistsError(f"model '{new_name}' already exists", code="model_exists")
        old_dir = self.model_dir(model)
        config_path = old_dir / "config.pbtxt"
        config = parse_pbtxt(config_path.read_text()) if config_path.exists() else {}
        if config.get("name"):
            config["name"] = new_name
            config_path.write_text(render_pbtxt(config))
        old_dir.rename(self.repo_root / new_name)
        model.name, model.source_dir = new_name, f"models/{new_name}"

    def replace_root_files(self, ident: str, files: builtins.list[IncomingFile]) -> None:
        """Replace root files (config.pbtxt, labels) from ``files[]``; reloads where loaded.

        Raises:
            BadRequestError: a part names a nested path, or the new config is invalid.
            PayloadTooLargeError: over the upload limit.
        """
        model = self.get_row(ident)
        model_dir = self.model_dir(model)
        if not files:
            raise BadRequestError("no files[] parts in the upload", code="no_files")
        with self.staging() as scratch:
            budget = ByteBudget(self.settings.store.max_upload_bytes)
            names = []
            for upload in files:
                rel = safe_relpath(upload.filename)
                if len(rel.parts) != 1:
                    raise BadRequestError(
                        f"PATCH replaces root files only; upload a version for {rel}",
                        code="not_root_file",
                    )
                copy_stream(upload.stream, scratch / rel.name, budget)
                names.append(rel.name)
            if "config.pbtxt" in names:
                self.read_config(scratch, model.name)
            for file_name in names:
                shutil.move(str(scratch / file_name), str(model_dir / file_name))
        self.artifacts.publish(model.source_dir)
        self.loads.reload_everywhere(model)

    # -- versions and loads ----------------------------------------------------------------
    def list_versions(self, ident: str) -> builtins.list[VersionRead]:
        """Ready versions and uploads in progress of a model, ascending.

        Raises:
            NotFoundError: unknown model.
        """
        return self.versions.list(self.get_row(ident))

    def upload_version(
        self,
        ident: str,
        files: builtins.list[IncomingFile],
        *,
        version: int | None = None,
        offset: int | None = None,
        check: str | None = None,
    ) -> VersionUploaded:
        """Upload a version (or a chunk); a new ready version reloads where the model is loaded."""
        model = self.get_row(ident)
        result = self.versions.upload(model, files, version=version, offset=offset, check=check)
        if result.status == "ok":
            self.artifacts.publish(model.source_dir)
            self.loads.reload_everywhere(model)
        return result

    def delete_version(self, ident: str, version: int) -> None:
        """Delete a version; tritons serving the model reload (next-highest version)."""
        model = self.get_row(ident)
        if self.versions.delete(model, version):
            self.artifacts.publish(model.source_dir)
            self.loads.reload_everywhere(model)

    def load(self, ident: str, triton_ident: str | int, version: int | None = None) -> None:
        """Load the model on a triton (id or name; 0 is the built-in server)."""
        self.loads.load(self.get_row(ident), self.loads.resolve_triton(triton_ident), version)

    def unload(self, ident: str, triton_ident: str | int) -> None:
        """Unload the model from a triton."""
        self.loads.unload(self.get_row(ident), self.loads.resolve_triton(triton_ident))

    # -- delete ----------------------------------------------------------------------------
    def delete(self, ident: str) -> None:
        """Unload from every triton, then remove the store directory and the row."""
        model = self.get_row(ident)
        self.loads.unload_everywhere(model)
        model_dir = self.model_dir(model)
        self.session.delete(model)
        self.session.commit()
        if model.source_dir.startswith("models/"):
            shutil.rmtree(model_dir, ignore_errors=True)
            self.artifacts.delete(model.source_dir)
        self.versions.drop_staging(model.id)
