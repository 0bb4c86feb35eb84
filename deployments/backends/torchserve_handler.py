"""TorchServe handlers run in-process through TorchServe's own ``ts`` library (Ray-free).

Mirrors ``ts.model_loader.TsModelLoader`` and ``ts.service.Service.predict``: a handler string is
a module file in the model directory (``handler.py`` or ``handler.py:fn``) or a built-in name from
``ts.torch_handler``; a module-level function is the entry point (initialised by ``fn(None, ctx)``),
otherwise the module's single class (``initialize(ctx)`` then ``handle(data, ctx)``). Outputs are
encoded per item the way TorchServe's backend does (bytes as is, str UTF-8, tensors with
``torch.save``, anything else ``json.dumps(indent=2)``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from deployments.backends.ts_stream import PartCallback, StreamSocket
from deployments.contracts.errors import HandlerError, HandlerOutOfMemory, HandlerPredictionError

logger = logging.getLogger(__name__)


class HandlerLoadError(Exception):
    """The handler could not be loaded (missing module, no entry point, init failed)."""


@dataclass
class HandlerOutput:
    """One item's response: body bytes plus what the handler set through the context."""

    body: bytes
    status: int = 200
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def decode_param(value: bytes, content_type: str | None) -> Any:
    """Decode one request parameter like TorchServe's backend (``otf_message_handler``)."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            return json.loads(value.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return bytearray(value)
    if ctype.startswith("text"):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return bytearray(value)
    return bytearray(value)


def encode_output(value: Any) -> bytes:
    """Serialise one handler output item the way TorchServe's backend does.

    Raises:
        HandlerError: the value is not serialisable ("Unsupported model output data type.").
    """
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    try:
        import torch

        if isinstance(value, torch.Tensor):
            buffer = io.BytesIO()
            torch.save(value, buffer)
            return buffer.getvalue()
    except ImportError:  # pragma: no cover - torch is a platform dependency
        pass
    try:
        return json.dumps(value, indent=2).encode("utf-8")
    except TypeError as exc:
        raise HandlerError("Unsupported model output data type.") from exc


def _metrics_cache(model_name: str) -> Any:
    """TorchServe's metrics cache (BaseHandler records HandlerTime/PredictionTime in it)."""
    import ts
    from ts.metrics.metric_cache_yaml_impl import MetricsCacheYamlImpl

    config = Path(ts.__file__).parent / "configs" / "metrics.yaml"
    cache = MetricsCacheYamlImpl(config_file_path=str(config))
    cache.initialize_cache()
    cache.model_name = model_name
    return cache


def _import_custom_module(model_dir: Path, module_file: Path) -> ModuleType:
    """Import a handler file under a name unique to its directory (several models per process)."""
    if str(model_dir) not in sys.path:
        # Handlers import sibling files (model.py, utils) by plain name, as in TorchServe.
        sys.path.insert(0, str(model_dir))
    digest = hashlib.sha1(str(module_file).encode()).hexdigest()[:10]
    name = f"_ts_handler_{module_file.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, module_file)
    if spec is None or spec.loader is None:
        raise HandlerLoadError(f"Unable to load module {module_file.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise HandlerLoadError(f"Unable to load module {module_file.name}: {exc}") from exc
    return module


def resolve_module(model_dir: Path, handler: str) -> tuple[ModuleType, str | None]:
    """The handler module and optional function name for a TorchServe handler string."""
    module_part, _, function = handler.partition(":")
    base = Path(module_part).name
    stem = base[:-3] if base.endswith(".py") else base
    candidate = model_dir / f"{stem}.py"
    if candidate.is_file():
        return _import_custom_module(model_dir, candidate), function or None
    try:
        return importlib.import_module(f".{stem}", "ts.torch_handler"), function or None
    except ImportError as exc:
        raise HandlerLoadError(
            f"Unable to load module {handler}, make sure it is added to python path"
        ) from exc


class TorchServeHandler:
    """One loaded handler: a ``.mar`` model or a workflow function node.

    Class handlers share one context and run one batch at a time (a TorchServe worker);
    module-level functions get a fresh context per call and may run concurrently.
    """

    def __init__(
        self,
        model_name: str,
        model_dir: str | Path,
        handler: str,
        *,
        manifest: dict[str, Any] | None = None,
        batch_size: int = 1,
        gpu_id: int | None = None,
        model_yaml_config: dict[str, Any] | None = None,
        metrics: Any | None = None,
    ) -> None:
        import ts
        from ts.utils.util import list_classes_from_module

        self.model_name = model_name
        self.model_dir = Path(model_dir)
        self.manifest = manifest
        self.batch_size = batch_size
        self.gpu_id = gpu_id
        self._version = ts.__version__
        self._yaml_config = model_yaml_config or {}
        # ``metrics``: the replica's recording cache (``deployments.ts_metrics``), exported.
        self._metrics = metrics if metrics is not None else _metrics_cache(model_name)
        self._lock = threading.Lock()
        module, function = resolve_module(self.model_dir, handler)
        self._context = self._new_context()
        try:
            entry = getattr(module, function or "handle", None)
            if callable(entry) and not isinstance(entry, type):
                self._entry: Callable[[Any, Any], Any] = entry
                self.concurrent = True
                entry(None, self._context)
            else:
                classes = list_classes_from_module(module)
                if len(classes) != 1:
                    raise HandlerLoadError(
                        "Expected only one class in custom service code or a function entry "
                        f"point {classes}"
                    )
                instance = classes[0]()
                if not hasattr(instance, "handle"):
                    raise HandlerLoadError(f"Expect handle method in class {classes[0]}")
                self.concurrent = False
                self._entry = instance.handle
                instance.initialize(self._context)
        except HandlerLoadError:
            raise
        except Exception as exc:
            raise HandlerLoadError(f"Failed to initialise handler {handler}: {exc}") from exc

    def _new_context(self) -> Any:
        from ts.context import Context

        return Context(
            self.model_name,
            str(self.model_dir),
            self.manifest,
            self.batch_size,
            self.gpu_id,
            self._version,
            True,
            self._metrics,
            self._yaml_config,
        )

    def predict(
        self,
        rows: list[dict[str, Any]],
        headers: list[dict[str, str]] | None = None,
        on_part: PartCallback | None = None,
    ) -> list[HandlerOutput]:
        """Run one batch through the handler (TorchServe's ``Service.predict`` contract).

        Args:
            rows: one dict per request, parameter name -> decoded value.
            headers: request headers per row (visible via ``context.get_request_header``).
            on_part: receives ``(row index, bytes)`` of each intermediate response the handler
                sends (``send_intermediate_predict_response``); without it they are dropped.

        Returns:
            One output per row.

        Raises:
            HandlerError: the handler raised, returned a non-list or a list of the wrong length
                (``HandlerOutOfMemory``, ``HandlerPredictionError`` for those cases).
        """
        if self.concurrent:
            return self._predict(self._new_context(), rows, headers, on_part)
        with self._lock:
            return self._predict(self._context, rows, headers, on_part)

    def _predict(
        self,
        context: Any,
        rows: list[dict[str, Any]],
        headers: list[dict[str, str]] | None,
        on_part: PartCallback | None = None,
    ) -> list[HandlerOutput]:
        from ts.context import RequestProcessor
        from ts.utils.util import PredictionException

        headers = headers or [{} for _ in rows]
        request_ids = {idx: uuid.uuid4().hex for idx in range(len(rows))}
        context.request_ids = request_ids
        context.request_processor = [RequestProcessor(dict(h)) for h in headers]
        context.cl_socket = StreamSocket(request_ids, on_part)
        self._metrics.request_ids = request_ids
        started = time.time()
        try:
            result = self._entry(rows, context)
        except MemoryError as exc:
            raise HandlerOutOfMemory("Out of resources") from exc
        except PredictionException as exc:
            raise HandlerPredictionError(exc.message, exc.error_code) from exc
        except Exception as exc:
            if "CUDA" in str(exc):
                raise HandlerOutOfMemory("Out of resources") from exc
            logger.warning("model %s: handler failed", self.model_name, exc_info=True)
            raise HandlerError("Prediction failed") from exc
        if not isinstance(result, list):
            raise HandlerError("Invalid model predict output")
        if len(result) != len(rows):
            raise HandlerError("number of batch response mismatched")
        # ts.service.Service.predict records PredictionTime after every successful batch.
        self._metrics.add_time("PredictionTime", round((time.time() - started) * 1000, 2))
        outputs = []
        for idx, value in enumerate(result):
            status, _phrase = context.get_response_status(idx)
            response_headers = dict(context.get_response_headers(idx))
            content_type = response_headers.pop("content-type", None)
            outputs.append(
                HandlerOutput(encode_output(value), status or 200, content_type, response_headers)
            )
        return outputs


def load_manifest(model_dir: Path) -> dict[str, Any] | None:
    """``MAR-INF/MANIFEST.json`` of an extracted model, if present."""
    path = model_dir / "MAR-INF" / "MANIFEST.json"
    if not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def add_dependency_path(model_dir: Path) -> None:
    """Put a model's privately installed requirements (``<dir>/.deps``) on ``sys.path``."""
    deps = model_dir / ".deps"
    if deps.is_dir() and str(deps) not in sys.path:
        sys.path.insert(0, str(deps))
    os.environ.setdefault("TS_DECODE_INPUT_REQUEST", "true")


async def request_row(request: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Turn a Starlette request into TorchServe's input row and request headers.

    Multipart and url-encoded bodies become one parameter per field (attribute fields carry no
    content type, so they arrive as bytearray; file parts are decoded by their own type); any
    other body becomes the single parameter ``body`` decoded by the request's Content-Type.
    Query parameters are not passed, as in TorchServe.
    """
    headers = {k.lower(): v for k, v in request.headers.items()}
    ctype = headers.get("content-type", "")
    base = ctype.split(";")[0].strip().lower()
    row: dict[str, Any] = {}
    if base in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form()
        for key, value in form.multi_items():
            if isinstance(value, str):
                row[key] = bytearray(value.encode("utf-8"))
            else:
                content = await value.read()
                row[key] = decode_param(content, value.content_type)
        await form.close()
        if row:
            return row, headers
    body = await request.body()
    row["body"] = decode_param(body, ctype)
    return row, headers
