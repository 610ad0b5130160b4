"""Prometheus metrics: one registry, every metric declared once here.

Hot-path code never calls ``labels(...)`` per PDU: it increments plain integer attributes (connection, link and
engine stats) that a collector reads at scrape time, or it holds a labelled child resolved once at start-up."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)


class CounterSource:
    """A set of named integer counters read at scrape time from live objects.

    ``read`` returns ``{labels tuple: value}`` for one metric; it is called only when Prometheus scrapes."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, ...],
        read: Callable[[], dict[tuple[str, ...], float]],
        *,
        kind: str = "counter",
    ) -> None:
        if kind not in ("counter", "gauge"):
            raise ValueError("kind must be counter or gauge")
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self.read = read
        self.kind = kind

    def metric(self) -> Metric:
        family: CounterMetricFamily | GaugeMetricFamily
        if self.kind == "counter":
            family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        else:
            family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        for label_values, value in self.read().items():
            family.add_metric(list(label_values), value)
        return family


class ScrapeTimeCollector(Collector):
    """Exposes every registered ``CounterSource``."""

    def __init__(self) -> None:
        self._sources: dict[str, CounterSource] = {}

    def add(self, source: CounterSource) -> None:
        if source.name in self._sources:
            raise ValueError(f"metric {source.name} is already declared")
        self._sources[source.name] = source

    def collect(self) -> Iterable[Metric]:
        for source in list(self._sources.values()):
            yield source.metric()

    def describe(self) -> Iterable[Metric]:
        return []


SCRAPE_TIME = ScrapeTimeCollector()
REGISTRY.register(SCRAPE_TIME)


def exposition() -> bytes:
    """The Prometheus text exposition of the registry."""
    return generate_latest(REGISTRY)
