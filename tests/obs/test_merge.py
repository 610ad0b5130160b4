"""Cross-worker metrics: one exposition of every worker's, labelled by worker; the shared directory of expositions."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from smppgw.obs.merge import MetricsShare, merge_expositions, share_dir

Samples = set[tuple[str, tuple[tuple[str, str], ...], float]]


def _exposition(scale: float, odd_value: str = 'a"b\\c\nd') -> str:
    """A worker's exposition: labelled and unlabelled counters, a gauge, a histogram and a summary."""
    registry = CollectorRegistry()
    pdus = Counter("pdus", 'PDUs by "command" \\ direction', ["command"], registry=registry)
    pdus.labels("submit_sm").inc(3 * scale)
    pdus.labels(odd_value).inc(scale)
    Counter("binds_total", "binds", registry=registry).inc(scale)
    Gauge("queue_depth", "queued", registry=registry).set(7 * scale)
    latency = Histogram("latency_seconds", "latency", ["connector"], buckets=(0.01, 0.1), registry=registry)
    latency.labels("mts").observe(0.05 * scale)
    Summary("batch_rows", "rows per batch", registry=registry).observe(10 * scale)
    return generate_latest(registry).decode()


def _samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _with_worker(samples: Samples, worker: str) -> Samples:
    return {(name, tuple(sorted((*labels, ("worker", worker)))), value) for name, labels, value in samples}


def test_merge_labels_every_sample_with_its_worker() -> None:
    texts = {0: _exposition(1), 1: _exposition(2)}
    merged = merge_expositions(texts)
    assert _samples(merged) == _with_worker(_samples(texts[0]), "0") | _with_worker(_samples(texts[1]), "1")
    per_worker = {"0": 0, "1": 0}
    for family in text_string_to_metric_families(merged):
        for sample in family.samples:
            per_worker[sample.labels["worker"]] += 1
    assert per_worker == {"0": len(_samples(texts[0])), "1": len(_samples(texts[1]))}


def test_merge_keeps_each_family_once_with_its_type_and_sample_names() -> None:
    merged = merge_expositions({0: _exposition(1), 3: _exposition(1)})
    type_lines = [line for line in merged.splitlines() if line.startswith("# TYPE ")]
    assert len(type_lines) == len(set(type_lines))
    assert "# TYPE pdus_total counter" in type_lines and "# TYPE binds_total counter" in type_lines
    assert "# TYPE latency_seconds histogram" in type_lines and "# TYPE batch_rows summary" in type_lines
    assert '# HELP pdus_total PDUs by "command" \\\\ direction' in merged
    assert 'pdus_total{command="a\\"b\\\\c\\nd",worker="3"} 1.0' in merged
    assert 'binds_total{worker="0"} 1.0' in merged
    assert 'latency_seconds_bucket{connector="mts",le="+Inf",worker="3"} 1.0' in merged
    assert 'latency_seconds_count{connector="mts",worker="0"} 1.0' in merged
    assert 'latency_seconds_sum{connector="mts",worker="0"} 0.05' in merged
    families = {family.name: family.type for family in text_string_to_metric_families(merged)}
    assert families["pdus"] == "counter" and families["pdus_created"] == "gauge"
    assert families["latency_seconds"] == "histogram"


def test_merge_edge_cases() -> None:
    assert merge_expositions({}) == ""
    # a worker label already present is replaced; a family only one worker has is kept
    merged = merge_expositions({0: 'only_here{worker="x"} 1\n', 1: "# TYPE g gauge\ng 2\n"})
    assert _samples(merged) == {("only_here", (("worker", "0"),), 1.0), ("g", (("worker", "1"),), 2.0)}
    # a family whose type differs (mixed versions) keeps the first worker's; an unparsable text is left out
    merged = merge_expositions(
        {0: "# TYPE g gauge\ng 1\n", 1: "# TYPE g_total counter\ng_total 5\n", 2: "garbage here\n"}
    )
    assert _samples(merged) == {("g", (("worker", "0"),), 1.0)}


label_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.integers(0, 7), st.lists(label_values, min_size=1, max_size=4, unique=True), max_size=4))
def test_merge_round_trips_any_label_value(values_by_worker: dict[int, list[str]]) -> None:
    texts: dict[int, str] = {}
    expected: Samples = set()
    for worker, values in values_by_worker.items():
        registry = CollectorRegistry()
        gauge = Gauge("g", "help", ["v"], registry=registry)
        for number, value in enumerate(values):
            gauge.labels(value).set(number)
            expected.add(("g", tuple(sorted((("v", value), ("worker", str(worker))))), float(number)))
        texts[worker] = generate_latest(registry).decode()
    assert _samples(merge_expositions(texts)) == expected


def test_share_reads_fresh_files_and_its_own_text(tmp_path: Path) -> None:
    directory = share_dir(str(tmp_path / "gw.sqlite3"))
    assert directory == tmp_path / "gw.sqlite3.metrics"
    mine, other, gone = MetricsShare(directory, 0), MetricsShare(directory, 1), MetricsShare(directory, 2)
    assert directory.is_dir()
    mine.write(b"old 0\n")
    other.write(b"g 1\n")
    gone.write(b"g 2\n")
    old = time.time() - 60
    os.utime(gone.path, (old, old))
    (directory / "worker-x.prom").write_text("not a worker\n")
    assert mine.read_all(0, "g 0\n") == {0: "g 0\n", 1: "g 1\n"}
    assert mine.read_all(0, "g 0\n", max_age=120) == {0: "g 0\n", 1: "g 1\n", 2: "g 2\n"}
    assert sorted(path.name for path in directory.iterdir()) == [
        "worker-0.prom",
        "worker-1.prom",
        "worker-2.prom",
        "worker-x.prom",
    ]  # no temporary file left behind
    gone.remove()
    gone.remove()  # idempotent
    assert not gone.path.exists()


async def test_share_run_writes_until_cancelled_then_removes_its_file(tmp_path: Path) -> None:
    share = MetricsShare(tmp_path / "m", 4)
    renders = 0

    def render() -> bytes:
        nonlocal renders
        renders += 1
        return f"g {renders}\n".encode()

    task = asyncio.create_task(share.run(render, interval=0.01))
    for _ in range(200):
        if renders >= 3:
            break
        await asyncio.sleep(0.01)
    assert share.path.read_text().startswith("g ")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert renders >= 3 and not share.path.exists()
