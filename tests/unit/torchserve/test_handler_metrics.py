"""Handler metrics: TorchServe's context.metrics API recorded, summed and rendered as TorchServe."""

from __future__ import annotations

import pytest
from ts.metrics.dimension import Dimension
from ts.metrics.metric_type_enum import MetricTypes

from control_plane.metrics import PlatformMetrics
from deployments.backends.torchserve_handler import TorchServeHandler
from deployments.contracts.ts_metrics import (
    HISTOGRAM_BUCKETS,
    HandlerMetricsBook,
    MetricsConfigError,
    SeriesState,
    families,
    merge_records,
    parse_metrics_config,
)
from deployments.ts_metrics import recording_metrics_cache
from tests.fakes import FakeServeGateway

HOST = "host-a"
METRICS_YAML = """
dimensions:
  - &model_name "ModelName"
  - &level "Level"
model_metrics:
  histogram:
    - name: InferenceTime
      unit: ms
      dimensions: [*model_name, *level]
  counter:
    - name: Declared
      unit: count
      dimensions: ["Shard", *model_name, *level]
"""
METRICS_HANDLER = """
from ts.metrics.dimension import Dimension


class Counting:
    def initialize(self, context):
        self.context = context

    def handle(self, data, context):
        context.metrics.add_counter("Requests", len(data), None, [Dimension("Path", "x")])
        context.metrics.add_size("PayloadSize", 3, None, "kB")
        return ["ok" for _ in data]
"""


def _render(records):
    """The handler-metrics part of /metrics for these records, as the control plane renders it."""
    gateway = FakeServeGateway()
    gateway.handler_records = records
    return PlatformMetrics(None, gateway).handler_metrics().decode()  # type: ignore[arg-type]


def test_add_counter_sums_and_renders_torchserve_name_type_and_labels():
    book = HandlerMetricsBook(None, HOST)
    metrics = recording_metrics_cache("m", book)
    metrics.add_counter("LoopCount", 1, None, [Dimension("Path", "a")])
    metrics.add_counter("LoopCount", 2, None, [Dimension("Path", "a")])
    text = _render(book.drain())
    assert "# TYPE LoopCount counter" in text
    assert 'LoopCount{Path="a",ModelName="m",Level="Model",Hostname="host-a",} 3.0' in text
    assert "LoopCount_total" not in text
    assert "Torchserve prometheus counter metric with unit: Count" in text


def test_time_size_percent_are_gauges_keeping_the_last_value():
    book = HandlerMetricsBook(None, HOST)
    metrics = recording_metrics_cache("m", book)
    metrics.add_time("Latency", 5)
    metrics.add_time("Latency", 7)
    metrics.add_size("Size", 2, None, "GB")
    metrics.add_percent("Util", 40.5)
    metrics.add_metric("Distance", 3, "km", None, [Dimension("Road", "r1")])
    text = _render(book.drain())
    assert "# TYPE Latency gauge" in text
    assert 'Latency{ModelName="m",Level="Model",Hostname="host-a",} 7.0' in text
    assert "unit: Milliseconds" in text  # TorchServe maps ms to its unit name
    assert 'Size{ModelName="m",Level="Model",Hostname="host-a",} 2.0' in text
    assert 'Util{ModelName="m",Level="Model",Hostname="host-a",} 40.5' in text
    assert "# TYPE Distance counter" in text  # add_metric defaults to a counter
    assert 'Distance{Road="r1",ModelName="m",Level="Model",Hostname="host-a",} 3.0' in text


def test_invalid_updates_are_dropped_like_torchserve():
    book = HandlerMetricsBook(None, HOST)
    metrics = recording_metrics_cache("m", book)
    metrics.add_counter("Neg", -1)  # TorchServe: counter update value cannot be negative
    with pytest.raises(ValueError, match="unit"):
        metrics.add_size("Bad", 1, None, "TB")
    metrics.add_counter("ts_inference_requests_total", 1)  # would shadow the frontend metric
    metrics.add_counter("bad-name", 1)
    assert book.drain() == []
    assert {"ts_inference_requests_total", "bad-name"} <= book.refused


def test_declared_metrics_keep_their_type_and_dimensions():
    config = parse_metrics_config(METRICS_YAML, auto_detect=False)
    book = HandlerMetricsBook(config, HOST)
    metrics = recording_metrics_cache("m", book, config)
    for value in (0.004, 0.3, 20.0):
        metrics.add_time("InferenceTime", value)  # emitted as a gauge, declared a histogram
    declared = metrics.get_metric("Declared", MetricTypes.COUNTER)
    declared.add_or_update(2, ["s0", "m", "Model"])
    metrics.add_counter("Undeclared", 1)  # no auto-detect: not exported
    metrics.add_counter("Declared", 1)  # wrong dimensions for the declaration: dropped
    text = _render(book.drain())
    assert "# TYPE InferenceTime histogram" in text
    base = 'ModelName="m",Level="Model",Hostname="host-a",'
    assert f'InferenceTime_bucket{{{base}le="0.005",}} 1.0' in text
    assert f'InferenceTime_bucket{{{base}le="0.5",}} 2.0' in text
    assert f'InferenceTime_bucket{{{base}le="+Inf",}} 3.0' in text
    assert f"InferenceTime_count{{{base}}} 3.0" in text
    assert f'Declared{{Shard="s0",{base}}} 2.0' in text
    assert "Undeclared" not in text
    assert len(HISTOGRAM_BUCKETS) == 14


def test_replicas_sum_counters_and_the_latest_gauge_wins():
    totals: dict = {}
    for host_value, at in ((3, 10.0), (4, 20.0)):
        book = HandlerMetricsBook(None, HOST)  # two replicas on one host
        metrics = recording_metrics_cache("m", book)
        metrics.add_counter("Requests", host_value)
        metrics.add_time("Latency", host_value)
        records = book.drain()
        for record in records:
            record["last_at"] = at
        merge_records(totals, records)
    from deployments.contracts.ts_metrics import to_record

    text = _render([to_record(k, v) for k, v in totals.items()])
    assert 'Requests{ModelName="m",Level="Model",Hostname="host-a",} 7.0' in text
    assert 'Latency{ModelName="m",Level="Model",Hostname="host-a",} 4.0' in text


def test_series_state_merge_keeps_buckets():
    a, b = SeriesState(), SeriesState()
    a.observe(0.001, 1.0)
    b.observe(100.0, 2.0)
    a.merge(b)
    assert (a.count, a.total, a.last) == (2, 100.001, 100.0)
    assert a.buckets[0] == 1
    assert a.buckets[-1] == 1


def test_metrics_yaml_errors_name_the_problem():
    with pytest.raises(MetricsConfigError, match="summary"):
        parse_metrics_config("model_metrics:\n  summary: []\n")
    with pytest.raises(MetricsConfigError, match="needs a name"):
        parse_metrics_config("model_metrics:\n  counter: [{unit: ms}]\n")
    with pytest.raises(MetricsConfigError, match="YAML"):
        parse_metrics_config("model_metrics: [")
    assert families([]) == []


def test_handler_context_metrics_reach_the_book(tmp_path):
    (tmp_path / "handler.py").write_text(METRICS_HANDLER)
    book = HandlerMetricsBook(None, HOST)
    handler = TorchServeHandler(
        "counted", tmp_path, "handler.py", metrics=recording_metrics_cache("counted", book)
    )
    assert [o.body for o in handler.predict([{"body": b"a"}, {"body": b"b"}])] == [b"ok", b"ok"]
    text = _render(book.drain())
    labels = 'ModelName="counted",Level="Model",Hostname="host-a",'
    assert f'Requests{{Path="x",{labels}}} 2.0' in text
    assert f"PayloadSize{{{labels}}} 3.0" in text
    assert "# TYPE PredictionTime gauge" in text  # recorded after every batch, as ts.service
    assert f"PredictionTime{{{labels}}} " in text


def test_two_models_in_one_process_keep_their_own_model_name():
    # ts's add_* share one default dimensions list; several models per replica process
    # (workflow nodes) must not inherit the first model's ModelName.
    book = HandlerMetricsBook(None, HOST)
    for name in ("a", "b"):
        recording_metrics_cache(name, book).add_time("Latency", 1)
    text = _render(book.drain())
    assert 'Latency{ModelName="a",Level="Model",Hostname="host-a",} 1.0' in text
    assert 'Latency{ModelName="b",Level="Model",Hostname="host-a",} 1.0' in text
