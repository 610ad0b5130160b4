"""Metrics across worker processes: each worker drops its exposition in a shared directory; any worker can serve all
of them as one exposition with a ``worker`` label (so ``sum without (worker)`` gives the gateway's totals).

Why files and not prometheus_client's multiprocess mode: that mode needs every metric to be a prometheus_client
value class writing to mmap files, while the gateway's hot-path counters are plain integers read at scrape time."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from smppgw.obs.logging import get_logger

log = get_logger("metrics-share")

WORKER_LABEL = "worker"


def merge_expositions(texts: Mapping[int, str]) -> str:
    """One Prometheus text exposition of every worker's (``{worker index: its exposition}``), each sample labelled
    ``worker="<index>"`` (replacing a label of that name). A family's HELP and TYPE come from the lowest-numbered
    worker that has it; a worker whose family has another type (mixed versions) is left out of that family, and one
    whose text does not parse is left out entirely (logged). The texts are prometheus_client's own output."""
    families: dict[str, Metric] = {}
    for index in sorted(texts):
        worker = str(index)
        try:
            parsed = list(text_string_to_metric_families(texts[index]))
        except ValueError as exc:  # all or nothing per worker: a bad file must not break everyone's /metrics
            log.warning("unparsable worker metrics", worker=index, error=str(exc))
            continue
        for family in parsed:
            merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            if merged.type == family.type:
                merged.samples += [_labelled(sample, worker) for sample in family.samples]
    return generate_latest(_Families(families.values())).decode()


def _labelled(sample: Sample, worker: str) -> Sample:
    return sample._replace(labels={**sample.labels, WORKER_LABEL: worker})


class _Families:
    """A collector that yields fixed families (``generate_latest`` renders any object with ``collect``)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def share_dir(store_path: str) -> Path:
    """The metrics directory shared by the workers of the store at ``store_path``: ``<store path>.metrics``."""
    return Path(f"{store_path}.metrics")


class MetricsShare:
    """Worker ``index``'s side of the shared directory: it writes ``worker-<index>.prom`` and reads everyone's."""

    def __init__(self, directory: str | os.PathLike[str], index: int) -> None:
        self.directory = Path(directory)
        self.index = index
        self.path = self.directory / f"worker-{index}.prom"
        self.directory.mkdir(parents=True, exist_ok=True)

    def write(self, text: bytes) -> None:
        """Replace this worker's file atomically (a reader sees the old or the new exposition, never a mix)."""
        tmp = self.directory / f".worker-{self.index}.{os.getpid()}.tmp"
        tmp.write_bytes(text)
        os.replace(tmp, self.path)

    def read_all(self, own_index: int, own_text: str, max_age: float = 30.0) -> dict[int, str]:
        """``{index: exposition}`` of every worker whose file was written within ``max_age`` seconds (older ones
        belong to dead workers or an earlier run with more of them), with ``own_text`` as ``own_index``'s."""
        texts: dict[int, str] = {}
        now = time.time()
        for path in self.directory.glob("worker-*.prom"):
            index = _index_of(path)
            if index is None or index == own_index:
                continue
            with contextlib.suppress(FileNotFoundError):  # removed by a worker that stopped meanwhile
                if now - path.stat().st_mtime <= max_age:
                    texts[index] = path.read_text(encoding="utf-8")
        texts[own_index] = own_text
        return texts

    def remove(self) -> None:
        """Delete this worker's file (when it stops: its numbers leave the merged view at once)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def run(self, render: Callable[[], bytes], interval: float = 1.0) -> None:
        """Write ``render()`` every ``interval`` seconds until cancelled, then remove the file. A failed write
        (disk full) is logged and retried next time: metrics never stop the gateway."""
        try:
            while True:
                try:
                    self.write(render())
                except OSError as exc:
                    log.warning("metrics share write failed", path=str(self.path), error=str(exc))
                await asyncio.sleep(interval)
        finally:
            self.remove()


def _index_of(path: Path) -> int | None:
    """3 for ``worker-3.prom``; None for a name that is not a worker's."""
    digits = path.name.removeprefix("worker-").removesuffix(".prom")
    return int(digits) if digits.isdigit() else None
