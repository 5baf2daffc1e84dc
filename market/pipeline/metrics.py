"""Per-stage metrics of the pipeline: queue depth, batch size, latency, throughput.

A :class:`PipelineMetrics` is shared by the stage threads (a lock guards it); its
:meth:`~PipelineMetrics.snapshot` is a JSON-able dict that the runtime also writes to
``<data_dir>/metrics.json`` for ``raymarket pipeline stats`` to print from another process.
Latency percentiles are computed over the last ``window`` samples of each stage (a sliding
window, so a long run does not grow memory).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Stage names, in pipeline order.
STAGES = ("intake", "prove", "verify", "pay")

METRICS_FILE = "metrics.json"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


@dataclass
class StageMetrics:
    """Counters of one stage.

    Attributes:
        queue_depth: items waiting in the stage's input queue now; queue_capacity its bound.
        max_queue_depth: the largest depth seen.
        items_in, items_out: items (jobs) that entered and left the stage.
        batches: batches the stage processed; batch_sizes the last ``window`` sizes.
        latencies_s: the last ``window`` per-batch processing times (seconds).
        failures: items that failed in the stage (re-queued, rejected or slashed).
    """

    queue_capacity: int = 0
    queue_depth: int = 0
    max_queue_depth: int = 0
    items_in: int = 0
    items_out: int = 0
    batches: int = 0
    failures: int = 0
    batch_sizes: deque[int] = field(default_factory=lambda: deque(maxlen=1024))
    latencies_s: deque[float] = field(default_factory=lambda: deque(maxlen=1024))


class PipelineMetrics:
    """Thread-safe metrics of all stages plus job-level counters and end-to-end latencies."""

    def __init__(self, clock=time.monotonic, stages: Sequence[str] = STAGES) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.started_s = clock()
        self.stages = {name: StageMetrics() for name in stages}
        self.counters: dict[str, int] = {"submitted": 0, "completed": 0, "rejected": 0, "requeued": 0,
                                         "slashed": 0, "bad_proofs": 0, "worker_failures": 0}
        self.job_latencies_s: deque[float] = deque(maxlen=4096)

    def set_capacity(self, stage: str, capacity: int) -> None:
        """Record the bound of ``stage``'s input queue."""
        with self._lock:
            self.stages[stage].queue_capacity = capacity

    def queue_depth(self, stage: str, depth: int) -> None:
        """Record ``stage``'s current input-queue depth."""
        with self._lock:
            m = self.stages[stage]
            m.queue_depth = depth
            m.max_queue_depth = max(m.max_queue_depth, depth)

    def entered(self, stage: str, n: int = 1) -> None:
        """``n`` items entered ``stage``."""
        with self._lock:
            self.stages[stage].items_in += n

    def batch_done(self, stage: str, size: int, latency_s: float, failed: int = 0) -> None:
        """``stage`` finished a batch of ``size`` items in ``latency_s`` seconds, ``failed`` of them bad."""
        with self._lock:
            m = self.stages[stage]
            m.batches += 1
            m.items_out += size - failed
            m.failures += failed
            m.batch_sizes.append(size)
            m.latencies_s.append(latency_s)

    def item_done(self, stage: str, latency_s: float, failed: bool = False) -> None:
        """One item left ``stage`` after ``latency_s`` seconds there (``failed``: it was bad). For stages where
        every item waits its own time (the exchange's): latency samples per item; batches are counted apart
        with :meth:`batch_formed`."""
        with self._lock:
            m = self.stages[stage]
            m.items_in += 1
            m.items_out += 0 if failed else 1
            m.failures += 1 if failed else 0
            m.latencies_s.append(latency_s)

    def batch_formed(self, stage: str, size: int) -> None:
        """``stage`` handled a batch of ``size`` items together (with :meth:`item_done` for its items)."""
        with self._lock:
            m = self.stages[stage]
            m.batches += 1
            m.batch_sizes.append(size)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the job-level counter ``name``."""
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def job_done(self, latency_s: float) -> None:
        """A job was verified and paid ``latency_s`` seconds after it was submitted."""
        with self._lock:
            self.counters["completed"] += 1
            self.job_latencies_s.append(latency_s)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view: ``{"uptime_s", "counters", "jobs": {p50_s, p99_s, proofs_per_s}, "stages": {...}}``
        (``stages`` in pipeline order)."""
        with self._lock:
            up = max(1e-9, self._clock() - self.started_s)
            stages = {name: _stage_view(m, up) for name, m in self.stages.items()}
            lat = list(self.job_latencies_s)
            return {
                "uptime_s": up,
                "counters": dict(self.counters),
                "jobs": {"p50_s": _num(percentile(lat, 0.5)), "p99_s": _num(percentile(lat, 0.99)),
                         "proofs_per_s": self.counters["completed"] / up},
                "stages": stages,
            }


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def _stage_view(m: StageMetrics, uptime_s: float) -> dict[str, Any]:
    sizes, lats = list(m.batch_sizes), list(m.latencies_s)
    return {
        "queue_depth": m.queue_depth, "queue_capacity": m.queue_capacity, "max_queue_depth": m.max_queue_depth,
        "items_in": m.items_in, "items_out": m.items_out, "failures": m.failures, "batches": m.batches,
        "mean_batch_size": (sum(sizes) / len(sizes)) if sizes else None,
        "p50_latency_s": _num(percentile(lats, 0.5)), "p99_latency_s": _num(percentile(lats, 0.99)),
        "throughput_per_s": m.items_out / uptime_s,
    }


def write_snapshot(snapshot: dict[str, Any], data_dir: Path) -> Path:
    """Write ``snapshot`` atomically to ``<data_dir>/metrics.json``; returns the path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / METRICS_FILE
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(snapshot, indent=2, sort_keys=True))
    os.replace(tmp, path)
    return path


def read_snapshot(data_dir: Path) -> dict[str, Any] | None:
    """The last snapshot written under ``data_dir``, or None when there is none."""
    path = data_dir / METRICS_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text())
