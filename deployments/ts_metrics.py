"""Handler metrics of TorchServe replicas: ``context.metrics`` recorded, summed by one actor.

:class:`RecordingMetricsCache` is TorchServe's own ``MetricsCacheYamlImpl`` (so
``add_counter``/``add_time``/``add_size``/``add_percent``/``add_metric``/``get_metric`` behave as
in a TorchServe worker, validation included) whose metrics record into the replica's
:class:`~deployments.contracts.ts_metrics.HandlerMetricsBook` instead of printing ``[METRICS]``
log lines for a frontend to parse. :class:`HandlerMetricsReporter` pushes the book to the
detached :class:`HandlerMetricsStore` every second; the store sums every replica's increments, so
the totals survive replica restarts and scale-downs, and the control plane reads them at scrape
time (``ServeGateway.handler_metrics``).
"""

from __future__ import annotations

import logging
import socket
import uuid
from pathlib import Path
from typing import Any

import ray

from deployments.contracts.ts_metrics import (
    HANDLER_METRICS_NAMESPACE,
    HANDLER_METRICS_STORE_NAME,
    HandlerMetricsBook,
    HandlerMetricsConfig,
    SeriesKey,
    SeriesState,
    merge_records,
    to_record,
)
from deployments.pusher import Pusher

logger = logging.getLogger(__name__)


def _caching_metric_class() -> type:
    from ts.metrics.caching_metric import CachingMetric

    class RecordingMetric(CachingMetric):  # type: ignore[misc]
        """A TorchServe metric whose updates go to the replica's book."""

        book: HandlerMetricsBook

        def add_or_update(
            self,
            value: float,
            dimension_values: list[str] | None = None,
            request_id: str = "",  # noqa: ARG002 - TorchServe's signature; ids are not labels
        ) -> None:
            """Validate like TorchServe's CachingMetric, then record (no log line)."""
            try:
                dimensions = self._validate_and_get_dimensions(dimension_values)
                self._validate_metric_value(value)
            except ValueError as exc:
                logger.error("[METRICS]Failed to update metric %s: %s", self.metric_name, exc)
                return
            self.book.record(
                self.metric_name,
                self.metric_type.value,
                self.unit,
                tuple(d.name for d in dimensions),
                tuple(str(d.value) for d in dimensions),
                value,
            )

    return RecordingMetric


def recording_metrics_cache(
    model_name: str, book: HandlerMetricsBook, config: HandlerMetricsConfig | None = None
) -> Any:
    """A ``MetricsCacheYamlImpl`` over the declared metrics, recording into ``book``.

    Args:
        model_name: the ``ModelName`` dimension ``add_*`` append.
        book: where updates go.
        config: the declared ``model_metrics`` (TorchServe's defaults when None).
    """
    import ts
    from ts.metrics.metric_cache_yaml_impl import MetricsCacheYamlImpl
    from ts.metrics.metric_type_enum import MetricTypes

    metric_class = _caching_metric_class()

    class RecordingMetricsCache(MetricsCacheYamlImpl):  # type: ignore[misc]
        """TorchServe's metrics cache, every metric a RecordingMetric."""

        # NOTE: ts's add_* default ``dimensions=[]`` is one shared list that _add_default_dims
        # appends to; harmless in a one-model TorchServe worker, wrong with several models per
        # process (the first model's ModelName sticks). Each call gets its own list here.
        def add_metric(
            self,
            name: str,
            value: float,
            unit: str,
            idx: Any = None,
            dimensions: list[Any] | None = None,
            metric_type: Any = MetricTypes.COUNTER,
        ) -> None:
            super().add_metric(name, value, unit, idx, list(dimensions or []), metric_type)

        def add_counter(
            self, name: str, value: float, idx: Any = None, dimensions: list[Any] | None = None
        ) -> None:
            super().add_counter(name, value, idx, list(dimensions or []))

        def add_time(
            self,
            name: str,
            value: float,
            idx: Any = None,
            unit: str = "ms",
            dimensions: list[Any] | None = None,
            metric_type: Any = MetricTypes.GAUGE,
        ) -> None:
            super().add_time(name, value, idx, unit, list(dimensions or []), metric_type)

        def add_size(
            self,
            name: str,
            value: float,
            idx: Any = None,
            unit: str = "MB",
            dimensions: list[Any] | None = None,
            metric_type: Any = MetricTypes.GAUGE,
        ) -> None:
            super().add_size(name, value, idx, unit, list(dimensions or []), metric_type)

        def add_percent(
            self,
            name: str,
            value: float,
            idx: Any = None,
            dimensions: list[Any] | None = None,
            metric_type: Any = MetricTypes.GAUGE,
        ) -> None:
            super().add_percent(name, value, idx, list(dimensions or []), metric_type)

        def add_error(self, name: str, value: float, dimensions: list[Any] | None = None) -> None:
            super().add_error(name, value, list(dimensions or []))

        def add_metric_to_cache(
            self,
            metric_name: str,
            unit: str,
            dimension_names: list[str] | None = None,
            metric_type: Any = MetricTypes.COUNTER,
        ) -> Any:
            self._check_type(metric_name, str, "`metric_name` must be a str")
            self._check_type(unit, str, "`unit` must be a str")
            self._check_type(metric_type, MetricTypes, "`metric_type` must be a MetricTypes enum")
            metric = metric_class(
                metric_name=metric_name,
                unit=unit,
                dimension_names=list(dimension_names or []),
                metric_type=metric_type,
            )
            metric.book = book
            self.cache.setdefault(metric_type, {})[metric_name] = metric
            return metric

    config = config or HandlerMetricsConfig()
    cache = RecordingMetricsCache(
        config_file_path=str(Path(ts.__file__).parent / "configs" / "metrics.yaml")
    )
    cache._parsed_file = {"model_metrics": config.model_dump(mode="json")["model_metrics"]}
    if any(config.model_metrics.values()):
        cache.initialize_cache()
    cache.model_name = model_name
    # As ts.model_loader: a request id before the first request, so that metrics recorded in
    # initialize() get ModelName and Level=Model rather than Level=Error.
    cache.set_request_ids(str(uuid.uuid4()))
    return cache


@ray.remote(num_cpus=0, max_concurrency=64)  # type: ignore[call-overload]
class HandlerMetricsStore:
    """Handler-metric totals over every TorchServe replica of the cluster."""

    def __init__(self) -> None:
        self.totals: dict[SeriesKey, SeriesState] = {}

    def merge(self, records: list[dict[str, Any]]) -> None:
        """Add one replica's increments."""
        merge_records(self.totals, records)

    def get(self) -> list[dict[str, Any]]:
        """Every series' totals, in first-seen order."""
        return [to_record(key, state) for key, state in self.totals.items()]


def get_handler_metrics_store() -> Any:
    """The cluster's handler-metrics actor, created on first use (detached)."""
    return HandlerMetricsStore.options(  # type: ignore[attr-defined]
        name=HANDLER_METRICS_STORE_NAME,
        namespace=HANDLER_METRICS_NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
    ).remote()


class HandlerMetricsReporter(Pusher):
    """One replica's book, flushed to the store every second while it has updates."""

    def __init__(self, config: HandlerMetricsConfig | None = None) -> None:
        self.book = HandlerMetricsBook(config, socket.gethostname())
        super().__init__(self.book.drain, get_handler_metrics_store, "handler metrics")

    def cache(self, model_name: str) -> Any:
        """A metrics cache for one handler of this replica."""
        return recording_metrics_cache(model_name, self.book, self.book.config)
