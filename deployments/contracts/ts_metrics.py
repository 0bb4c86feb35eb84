"""TorchServe handler metrics (``context.metrics``) as both planes agree on them (Ray-free).

A replica records what its handlers emit into a :class:`HandlerMetricsBook`, resolved the way
TorchServe 0.12's frontend does in ``prometheus`` mode (``MetricCache``/``WorkerLifeCycle``):

* a metric declared in the ``model_metrics`` section of the server's ``metrics.yaml`` keeps its
  declared type and dimension names; an undeclared one is exported only with
  ``model_metrics_auto_detect`` (then with the type and dimensions it was emitted with);
* the labels are the handler's dimensions (``add_*`` append ``ModelName`` and ``Level``), then
  ``Hostname``; the name is exported exactly (a counter gets no ``_total``);
* a counter adds up, a gauge keeps the last value, a histogram observes each value (the
  Prometheus Java client's default buckets).

Increments travel as plain records to the cluster's handler-metrics actor, which sums them
across replicas; the control plane renders the totals on ``/metrics``.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

HANDLER_METRICS_STORE_NAME: Final = "platform-ts-handler-metrics"
HANDLER_METRICS_NAMESPACE: Final = "platform"
# io.prometheus.client.Histogram's default buckets (TorchServe's PrometheusHistogram uses them).
HISTOGRAM_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
# Families the platform itself exports on /metrics: a handler metric may not shadow them
# (two TYPE lines for one name make Prometheus reject the whole scrape).
RESERVED_PREFIXES: Final = ("ts_", "nv_", "platform_", "torc_")
HOSTNAME: Final = "Hostname"
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

Kind = Literal["counter", "gauge", "histogram"]
KINDS: Final[tuple[Kind, ...]] = ("counter", "gauge", "histogram")


class MetricsConfigError(ValueError):
    """A ``metrics.yaml`` the platform cannot use."""


class MetricSpec(BaseModel):
    """One metric of a ``metrics.yaml`` ``model_metrics`` section."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(description="The metric name, exported exactly.")
    unit: str = Field("", description="The unit (part of the HELP text).")
    dimensions: list[str] = Field(
        default_factory=list, description="Dimension names (``Hostname`` is added)."
    )


def _default_model_metrics() -> dict[Kind, list[MetricSpec]]:
    """TorchServe's default ``model_metrics`` (``ts/configs/metrics.yaml``)."""
    dims = ["ModelName", "Level"]
    return {
        "gauge": [
            MetricSpec(name="HandlerTime", unit="ms", dimensions=dims),
            MetricSpec(name="PredictionTime", unit="ms", dimensions=dims),
        ]
    }


class HandlerMetricsConfig(BaseModel):
    """What a replica exports of its handlers' metrics (TorchServe's ``metrics_config``)."""

    model_config = ConfigDict(extra="forbid")

    model_metrics: dict[Kind, list[MetricSpec]] = Field(
        default_factory=_default_model_metrics,
        description="Declared model metrics by type (TorchServe's default file when unset).",
    )
    auto_detect: bool = Field(
        True, description="Export undeclared handler metrics too (model_metrics_auto_detect)."
    )

    def declared(self) -> dict[str, tuple[Kind, MetricSpec]]:
        """Declared metrics by name (the last declaration of a name wins, as in TorchServe)."""
        result: dict[str, tuple[Kind, MetricSpec]] = {}
        for kind in KINDS:
            for spec in self.model_metrics.get(kind, []):
                result[spec.name] = (kind, spec)
        return result


def parse_metrics_config(text: str, *, auto_detect: bool = True) -> HandlerMetricsConfig:
    """The ``model_metrics`` of a TorchServe ``metrics.yaml`` (``ts_metrics`` is not used).

    Raises:
        MetricsConfigError: not YAML, or a section/metric of the wrong shape.
    """
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise MetricsConfigError(f"metrics.yaml is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise MetricsConfigError("metrics.yaml must be a mapping")
    section = raw.get("model_metrics") or {}
    if not isinstance(section, dict):
        raise MetricsConfigError("Got a non-mapping for model_metrics in metrics.yaml")
    metrics: dict[Kind, list[MetricSpec]] = {}
    for kind, items in section.items():
        if kind not in KINDS:
            raise MetricsConfigError(
                f"Got {kind!r} in model_metrics of metrics.yaml; must be one of {list(KINDS)}"
            )
        specs = []
        for item in items or []:
            if not isinstance(item, dict) or "name" not in item:
                raise MetricsConfigError(f"Got {item!r} in model_metrics.{kind}; needs a name")
            specs.append(MetricSpec.model_validate(item))
        metrics[kind] = specs
    return HandlerMetricsConfig(model_metrics=metrics, auto_detect=auto_detect)


def exportable(name: str, label_names: tuple[str, ...]) -> bool:
    """Whether Prometheus accepts the name and labels, and the name is not the platform's."""
    if not _NAME.match(name) or name.startswith(RESERVED_PREFIXES):
        return False
    if len(set(label_names)) != len(label_names):
        return False
    return all(_LABEL.match(label) and not label.startswith("__") for label in label_names)


# name, kind, unit, label names, label values
SeriesKey = tuple[str, str, str, tuple[str, ...], tuple[str, ...]]


@dataclass
class SeriesState:
    """One labelled series: enough to render it as a counter, a gauge or a histogram."""

    count: int = 0
    total: float = 0.0
    last: float = 0.0
    last_at: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(HISTOGRAM_BUCKETS) + 1))

    def observe(self, value: float, at: float) -> None:
        """Add one emitted value."""
        self.count += 1
        self.total += value
        self.last, self.last_at = value, at
        self.buckets[bisect.bisect_left(HISTOGRAM_BUCKETS, value)] += 1

    def merge(self, other: SeriesState) -> None:
        """Add another replica's increments (a gauge keeps the most recent value)."""
        self.count += other.count
        self.total += other.total
        if other.last_at >= self.last_at:
            self.last, self.last_at = other.last, other.last_at
        for i, n in enumerate(other.buckets):
            self.buckets[i] += n


def to_record(key: SeriesKey, state: SeriesState) -> dict[str, Any]:
    """Plain-data form of one series (crosses process boundaries)."""
    name, kind, unit, labels, values = key
    return {
        "name": name,
        "kind": kind,
        "unit": unit,
        "labels": list(labels),
        "values": list(values),
        "count": state.count,
        "sum": state.total,
        "last": state.last,
        "last_at": state.last_at,
        "buckets": list(state.buckets),
    }


def from_record(record: dict[str, Any]) -> tuple[SeriesKey, SeriesState]:
    """Inverse of :func:`to_record`."""
    key = (
        str(record["name"]),
        str(record["kind"]),
        str(record["unit"]),
        tuple(record["labels"]),
        tuple(str(v) for v in record["values"]),
    )
    state = SeriesState(
        count=int(record["count"]),
        total=float(record["sum"]),
        last=float(record["last"]),
        last_at=float(record["last_at"]),
        buckets=[int(n) for n in record["buckets"]],
    )
    return key, state


def merge_records(totals: dict[SeriesKey, SeriesState], records: list[dict[str, Any]]) -> None:
    """Add drained increments into running totals."""
    for record in records:
        key, state = from_record(record)
        mine = totals.get(key)
        if mine is None:
            totals[key] = state
        else:
            mine.merge(state)


class HandlerMetricsBook:
    """A replica's handler metrics since the last drain (handlers record from worker threads)."""

    def __init__(self, config: HandlerMetricsConfig | None, hostname: str) -> None:
        self.config = config or HandlerMetricsConfig()
        self.declared = self.config.declared()
        self.hostname = hostname
        self.pending: dict[SeriesKey, SeriesState] = {}
        self.refused: set[str] = set()
        self._lock = threading.Lock()

    def resolve(
        self, name: str, emitted: str, unit: str, dimension_names: tuple[str, ...]
    ) -> tuple[str, str, tuple[str, ...]] | None:
        """(kind, unit, label names) a metric is exported with, or None when it is not."""
        declared = self.declared.get(name)
        if declared is not None:
            kind, spec = declared
            if tuple(spec.dimensions) != dimension_names:
                return None  # TorchServe: "Incorrect number of labels", the update is dropped
            labels = (*spec.dimensions, HOSTNAME)
            return (kind, spec.unit, labels) if exportable(name, labels) else None
        if not self.config.auto_detect or emitted not in KINDS:
            return None
        labels = (*dimension_names, HOSTNAME)
        return (emitted, unit, labels) if exportable(name, labels) else None

    def record(
        self,
        name: str,
        emitted: str,
        unit: str,
        dimension_names: tuple[str, ...],
        dimension_values: tuple[str, ...],
        value: float,
    ) -> bool:
        """Record one emitted value; False when the metric is not exported."""
        resolved = self.resolve(name, emitted, unit, dimension_names)
        if resolved is None:
            self.refused.add(name)
            return False
        kind, unit, labels = resolved
        key = (name, kind, unit, labels, (*dimension_values, self.hostname))
        with self._lock:
            state = self.pending.get(key)
            if state is None:
                state = self.pending[key] = SeriesState()
            state.observe(float(value), time.time())
        return True

    def drain(self) -> list[dict[str, Any]]:
        """Take the accumulated increments as plain records."""
        with self._lock:
            pending, self.pending = self.pending, {}
        return [to_record(key, state) for key, state in pending.items()]


@dataclass
class MetricFamily:
    """One family as the Prometheus text format shows it: name, type, help, samples."""

    name: str
    kind: str
    documentation: str
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


def families(records: list[dict[str, Any]]) -> list[MetricFamily]:
    """Render summed series: one family per name (its first-seen type), samples by kind."""
    result: dict[str, MetricFamily] = {}
    for record in records:
        (name, kind, unit, labels, values), state = from_record(record)
        family = result.get(name)
        if family is None:
            doc = f"Torchserve prometheus {kind} metric with unit: {unit}"
            family = result[name] = MetricFamily(name, kind, doc)
        elif family.kind != kind:
            continue  # TorchServe keeps the first registration of a name
        base = dict(zip(labels, values, strict=True))
        if kind == "counter":
            family.samples.append((name, base, state.total))
        elif kind == "gauge":
            family.samples.append((name, base, state.last))
        else:
            cumulative = 0
            for bound, n in zip(HISTOGRAM_BUCKETS, state.buckets, strict=False):
                cumulative += n
                family.samples.append((f"{name}_bucket", {**base, "le": repr(bound)}, cumulative))
            family.samples.append((f"{name}_bucket", {**base, "le": "+Inf"}, state.count))
            family.samples.append((f"{name}_count", base, state.count))
            family.samples.append((f"{name}_sum", base, state.total))
    return list(result.values())


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(value)]
    return repr(float(value))


def exposition(records: list[dict[str, Any]]) -> str:
    """Prometheus text of summed series as TorchServe's frontend writes it.

    ``# HELP``/``# TYPE`` under the exact name, labels in dimension order then ``Hostname``
    with the Java client's trailing comma (``Requests{ModelName="m",Level="Model",Hostname="h",}``).
    """
    lines: list[str] = []
    for family in families(records):
        lines.append(f"# HELP {family.name} {family.documentation}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for sample, labels, value in family.samples:
            text = "".join(f'{k}="{_label_value(v)}",' for k, v in labels.items())
            lines.append(f"{sample}{{{text}}} {_number(value)}")
    return "".join(line + "\n" for line in lines)
