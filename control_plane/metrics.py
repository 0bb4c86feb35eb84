"""Prometheus metrics of the platform, defined in one place and rendered by ``GET /metrics``.

Two kinds of series:

* the control plane's own (API requests by route template and status), counted in-process;
* platform state collected at scrape time: inference counters recorded by every model replica
  and summed by the statistics actor (exported with Triton's ``nv_inference_*`` names and
  TorchServe's ``ts_*`` names), per-node workflow counters, Torc jobs by status from the
  database, and how many models/workflows/apps are registered;
* TorchServe handler metrics (``context.metrics``) summed by their actor, in TorchServe's format.

Ray Serve's own deployment metrics (replicas, queues, autoscaling) are on Ray's metrics export
port; ``configs/prometheus.yml`` scrapes both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from sqlalchemy.orm import Session, sessionmaker

from control_plane.errors import DomainError
from control_plane.integrations.serve_types import ServeGateway
from control_plane.services import platform_state
from control_plane.services.torc.state_machine import FINISHED
from deployments.contracts.stats import LATENCY_BUCKETS_S, VersionStats
from deployments.contracts.ts_metrics import exposition as handler_exposition

logger = logging.getLogger(__name__)

# Triton's per-model counters: metric name -> (help, duration key or None for counts).
_NV_DURATIONS = {
    "nv_inference_request_duration_us": (
        "Cumulative inference request duration in microseconds",
        "success",
    ),
    "nv_inference_queue_duration_us": (
        "Cumulative inference queuing duration in microseconds",
        "queue",
    ),
    "nv_inference_compute_input_duration_us": (
        "Cumulative compute input duration in microseconds",
        "compute_input",
    ),
    "nv_inference_compute_infer_duration_us": (
        "Cumulative compute inference duration in microseconds",
        "compute_infer",
    ),
    "nv_inference_compute_output_duration_us": (
        "Cumulative inference compute output duration in microseconds",
        "compute_output",
    ),
}
TS_PREFIX = "ts:"
WF_PREFIX = "wf:"


class ExactCounter(Metric):
    """A counter whose sample name is exactly the given name.

    ``prometheus_client`` appends ``_total`` to counters; Triton's series
    (``nv_inference_request_success``) have no suffix, and dashboards query them as such.
    """

    def __init__(self, name: str, documentation: str, labels: list[str]) -> None:
        super().__init__(name, documentation, "counter")
        self.sample_name = name
        self.label_names = labels

    def add_metric(self, values: list[str], value: float) -> None:
        """Add one sample with these label values."""
        self.samples.append(
            Sample(self.sample_name, dict(zip(self.label_names, values, strict=True)), value)
        )


def _split_key(key: str) -> tuple[str, str]:
    name, _, version = key.rpartition("/")
    return name, version


def _histogram(name: str, doc: str, labels: list[str]) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, labels=labels)


def _add_histogram(family: HistogramMetricFamily, values: list[str], stats: VersionStats) -> None:
    cumulative, buckets = 0, []
    for bound, count in zip(LATENCY_BUCKETS_S, stats.latency_buckets, strict=False):
        cumulative += count
        buckets.append((repr(bound), cumulative))
    total = cumulative + stats.latency_buckets[-1]
    buckets.append(("+Inf", total))
    seconds = (stats.durations["success"][1] + stats.durations["fail"][1]) / 1e9
    family.add_metric(values, buckets, seconds)


class StateCollector(Collector):
    """Scrape-time collector over the statistics actor and the database."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        gateway: ServeGateway,
        torc_workflows: int = 100,
    ) -> None:
        self.session_factory = session_factory
        self.gateway = gateway
        self.torc_workflows = torc_workflows

    def collect(self) -> Iterator[Metric]:
        """Yield every platform-state family (errors in one source never hide the others)."""
        try:
            raw = self.gateway.inference_stats()
        except DomainError as exc:
            logger.warning("metrics: %s", exc.message)
            raw = {}
        stats = {key: VersionStats.from_dict(data) for key, data in raw.items()}
        with self.session_factory() as session:
            loaded = platform_state.loaded_model_names(session)
            yield from self._triton(stats, loaded)
            yield from self._torchserve(stats)
            yield from self._workflows(stats)
            yield from self._jobs(session)
            yield from self._registry(session, len(loaded))

    def _triton(self, stats: dict[str, VersionStats], loaded: list[str]) -> Iterator[Metric]:
        labels = ["model", "version"]
        triton = {k: v for k, v in stats.items() if not k.startswith((TS_PREFIX, WF_PREFIX))}
        for name in loaded:  # loaded models exist at 0 before their first request, as in Triton
            if not any(_split_key(k)[0] == name for k in triton):
                triton[f"{name}/1"] = VersionStats()
        success = ExactCounter(
            "nv_inference_request_success",
            "Number of successful inference requests, all batch sizes",
            labels=labels,
        )
        failure = ExactCounter(
            "nv_inference_request_failure",
            "Number of failed inference requests, all batch sizes",
            labels=[*labels, "reason"],
        )
        count = ExactCounter(
            "nv_inference_count", "Number of inferences performed (batch elements)", labels=labels
        )
        execs = ExactCounter(
            "nv_inference_exec_count", "Number of model executions performed", labels=labels
        )
        durations = {
            n: ExactCounter(n, doc, labels=labels) for n, (doc, _) in _NV_DURATIONS.items()
        }
        latency = _histogram(
            "platform_inference_request_duration_seconds",
            "Inference request latency (model replica)",
            labels,
        )
        for key, item in sorted(triton.items()):
            values = list(_split_key(key))
            success.add_metric(values, item.durations["success"][0])
            failure.add_metric([*values, "OTHER"], item.durations["fail"][0])
            count.add_metric(values, item.inference_count)
            execs.add_metric(values, item.execution_count)
            for metric, (_, phase) in _NV_DURATIONS.items():
                durations[metric].add_metric(values, item.durations[phase][1] / 1000.0)
            _add_histogram(latency, values, item)
        yield from (success, failure, count, execs, *durations.values(), latency)

    def _torchserve(self, stats: dict[str, VersionStats]) -> Iterator[Metric]:
        labels = ["model_name", "model_version"]
        requests = ExactCounter(
            "ts_inference_requests_total", "Total number of inference requests", labels=labels
        )
        latency = ExactCounter(
            "ts_inference_latency_microseconds",
            "Cumulative inference duration in microseconds",
            labels=labels,
        )
        queue = ExactCounter(
            "ts_queue_latency_microseconds",
            "Cumulative queue duration in microseconds",
            labels=labels,
        )
        for key, item in sorted(stats.items()):
            if not key.startswith(TS_PREFIX):
                continue
            values = list(_split_key(key[len(TS_PREFIX) :]))
            requests.add_metric(values, item.durations["success"][0] + item.durations["fail"][0])
            latency.add_metric(values, item.durations["success"][1] / 1000.0)
            queue.add_metric(values, item.durations["queue"][1] / 1000.0)
        yield from (requests, latency, queue)

    def _workflows(self, stats: dict[str, VersionStats]) -> Iterator[Metric]:
        labels = ["workflow", "node"]
        requests = ExactCounter(
            "platform_workflow_node_requests_total",
            "Workflow node executions",
            labels=[*labels, "outcome"],
        )
        latency = _histogram(
            "platform_workflow_node_duration_seconds", "Workflow node latency", labels
        )
        for key, item in sorted(stats.items()):
            if not key.startswith(WF_PREFIX):
                continue
            workflow, _, node = _split_key(key[len(WF_PREFIX) :])[0].partition(":")
            requests.add_metric([workflow, node, "success"], item.durations["success"][0])
            requests.add_metric([workflow, node, "failure"], item.durations["fail"][0])
            _add_histogram(latency, [workflow, node], item)
        yield from (requests, latency)

    def _jobs(self, session: Session) -> Iterator[Metric]:
        counts = platform_state.job_counts(session, self.torc_workflows)
        jobs = GaugeMetricFamily(
            "torc_jobs", "Torc jobs by workflow and status", labels=["workflow_id", "status"]
        )
        for (workflow, status), number in sorted(counts.by_status.items()):
            jobs.add_metric([str(workflow), status], number)
        done = ExactCounter(
            "torc_job_completions_total",
            "Completed job runs by result status",
            labels=["workflow_id", "status"],
        )
        seconds = ExactCounter(
            "torc_job_duration_seconds_total",
            "Summed run time of completed job runs",
            labels=["workflow_id", "status"],
        )
        for (workflow, status), (number, total_s) in sorted(counts.results.items()):
            done.add_metric([str(workflow), status], number)
            seconds.add_metric([str(workflow), status], total_s)
        progress = GaugeMetricFamily(
            "torc_workflow_progress_ratio", "Finished jobs / all jobs", labels=["workflow_id"]
        )
        totals: dict[int, list[int]] = {}
        for (workflow, status), number in counts.by_status.items():
            entry = totals.setdefault(workflow, [0, 0])
            entry[1] += number
            if status in FINISHED:
                entry[0] += number
        for workflow, (finished, total) in sorted(totals.items()):
            progress.add_metric([str(workflow)], finished / total if total else 0.0)
        every = GaugeMetricFamily(
            "torc_jobs_all", "Torc jobs of every workflow by status", labels=["status"]
        )
        for status, number in sorted(counts.all_by_status.items()):
            every.add_metric([status], number)
        every_done = ExactCounter(
            "torc_job_completions_all_total",
            "Completed job runs of every workflow by result status",
            labels=["status"],
        )
        for status, (number, _seconds) in sorted(counts.all_results.items()):
            every_done.add_metric([status], number)
        yield from (jobs, done, seconds, progress, every, every_done)

    def _registry(self, session: Session, loaded: int) -> Iterator[Metric]:
        apps = GaugeMetricFamily(
            "platform_serve_applications",
            "Serve applications the platform wants, by owner",
            labels=["owner"],
        )
        for owner, number in sorted(platform_state.serve_apps_by_owner(session).items()):
            apps.add_metric([owner], number)
        models = GaugeMetricFamily(
            "platform_registered_models", "Models in the Triton-layout registry", labels=["state"]
        )
        total = platform_state.registered_model_count(session)
        models.add_metric(["loaded"], loaded)
        models.add_metric(["unloaded"], total - loaded)
        yield from (apps, models)


class PlatformMetrics:
    """The control plane's registry: API counters plus the scrape-time collector."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        gateway: ServeGateway,
        torc_workflows: int = 100,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.api_requests = Counter(
            "platform_api_requests",
            "Control-plane API requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.api_latency = Histogram(
            "platform_api_request_duration_seconds",
            "Control-plane API latency",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(StateCollector(session_factory, gateway, torc_workflows))
        self.gateway = gateway

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one API request under its route template."""
        self.api_requests.labels(method, route, str(status)).inc()
        self.api_latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        """Prometheus text exposition of every family, TorchServe handler metrics last."""
        return generate_latest(self.registry) + self.handler_metrics()

    def handler_metrics(self) -> bytes:
        """TorchServe ``context.metrics`` series summed over replicas, in TorchServe's format.

        Rendered apart from ``prometheus_client``, which would rename a counter's family to
        ``<name>_total`` and sort the labels; TorchServe keeps both as the handler gave them.
        """
        try:
            records = self.gateway.handler_metrics()
        except DomainError as exc:
            logger.warning("metrics: %s", exc.message)
            return b""
        return handler_exposition(records).encode("utf-8")


def route_template(scope: Mapping[str, Any]) -> str:
    """The matched route's path template (``/v2/models/{model_name}``), or ``unmatched``."""
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))
