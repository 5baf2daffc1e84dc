"""Prometheus metrics of one service (own ``CollectorRegistry``), refreshed from the database at scrape time.

``raymarket_jobs{status}``, ``raymarket_providers_online``, ``raymarket_leases_open``,
``raymarket_ledger_balance_wei{kind}`` (gauges, from the database); ``raymarket_round_seconds`` (histogram,
observed by the background loop); ``raymarket_settlement_batches_total`` (counter of submitted batches);
the chain node's health (``chain_setup.ChainHealth``, read at scrape time): ``raymarket_chain_rpc_up`` (1 while
the node answers, 0 during a stall), ``raymarket_chain_seconds_since_ok`` (seconds since the last successful
chain call), ``raymarket_chain_stalls_total`` (stalls seen since the service started).

The proving pipeline (``market.exchange.service.batches``, :class:`PipelineStageMetrics`):
``raymarket_pipeline_stage_seconds{stage}`` (histogram, seconds per job: ``queue_match``, ``dispatch``, ``prove``,
``verify``, ``pay``), ``raymarket_pipeline_batch_size`` (jobs per proof batch formed),
``raymarket_pipeline_verify_group_size`` (proofs checked together by one batch verification),
``raymarket_pipeline_batches_total``, ``raymarket_pipeline_proofs_verified_total``,
``raymarket_pipeline_proofs_rejected_total`` (faulty proofs isolated), ``raymarket_pipeline_proofs_lost_total``
(leases that expired or were given back), ``raymarket_pipeline_verify_checks_total`` (combined Groth16 checks,
bisection included), ``raymarket_pipeline_proofs_per_second`` (verified over the last minute) and
``raymarket_pipeline_queue_depth{stage}`` (jobs waiting in a stage now, from the database).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from market.core.jobs import JobStatus
from market.db.base import wei_sum
from market.db.models import JobRecord, LeaseRecord, ProviderRecord
from market.exchange.service import batches
from market.ledger.models import Account
from market.pipeline.metrics import PipelineMetrics

ROUND_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The exchange's pipeline stages, in order (see the module docstring).
PIPELINE_STAGES = ("queue_match", "dispatch", "prove", "verify", "pay")
STAGE_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024)
#: Throughput window, seconds.
RATE_WINDOW_S = 60.0


class RecentHistogram(Histogram):
    """A Histogram (no labels) that also keeps its last ``keep`` observations as ``recent``:
    ``(unix time observed s, value)``, oldest first (the web console's per-round seconds)."""

    def __init__(self, *args, keep: int = 200, **kwargs) -> None:
        self.recent: deque[tuple[float, float]] = deque(maxlen=keep)
        super().__init__(*args, **kwargs)

    def observe(self, amount: float, exemplar=None) -> None:
        super().observe(amount, exemplar)
        self.recent.append((time.time(), float(amount)))


class PipelineStageMetrics:
    """The proving pipeline's figures: Prometheus collectors on ``registry`` and, for ``GET /v1/pipeline/stats``,
    a :class:`market.pipeline.metrics.PipelineMetrics` over :data:`PIPELINE_STAGES` (per-job latency samples,
    sliding windows). Fed by ``batches`` after each commit; thread-safe."""

    def __init__(self, registry: CollectorRegistry, clock=time.monotonic) -> None:
        r, self._clock = registry, clock
        self.stage_seconds = Histogram("raymarket_pipeline_stage_seconds", "Seconds a proof job spent in a pipeline "
                                       "stage", ["stage"], buckets=STAGE_BUCKETS_S, registry=r)
        self.batch_size = Histogram("raymarket_pipeline_batch_size", "Jobs per proof batch formed",
                                    buckets=SIZE_BUCKETS, registry=r)
        self.group_size = Histogram("raymarket_pipeline_verify_group_size", "Proofs checked together by one batch "
                                    "verification", buckets=SIZE_BUCKETS, registry=r)
        self.batches = Counter("raymarket_pipeline_batches", "Proof batches formed", registry=r)
        self.verified = Counter("raymarket_pipeline_proofs_verified", "Proofs verified and accepted", registry=r)
        self.rejected = Counter("raymarket_pipeline_proofs_rejected", "Faulty proofs isolated and rejected",
                                registry=r)
        self.lost_total = Counter("raymarket_pipeline_proofs_lost", "Proof leases that expired or were given back",
                            registry=r)
        self.checks = Counter("raymarket_pipeline_verify_checks", "Combined Groth16 checks run (bisection included)",
                              registry=r)
        self.rate = Gauge("raymarket_pipeline_proofs_per_second", f"Proofs verified per second over the last "
                          f"{RATE_WINDOW_S:.0f} s", registry=r)
        self.depth = Gauge("raymarket_pipeline_queue_depth", "Proof jobs waiting in a pipeline stage now", ["stage"],
                           registry=r)
        self.rate.set_function(self.recent_rate)
        self.window = PipelineMetrics(clock=clock, stages=PIPELINE_STAGES)
        self._recent: deque[float] = deque(maxlen=100_000)

    def recent_rate(self) -> float:
        """Proofs accepted per second over the last :data:`RATE_WINDOW_S` seconds (or since the first one)."""
        now = self._clock()
        while self._recent and self._recent[0] < now - RATE_WINDOW_S:
            self._recent.popleft()
        if not self._recent:
            return 0.0
        return len(self._recent) / max(1e-3, min(RATE_WINDOW_S, now - self.window.started_s))

    def stage(self, stage: str, latencies_s: Sequence[float], failed: bool = False) -> None:
        """Per-job seconds ``latencies_s`` spent in ``stage`` (``failed``: those jobs' proofs were bad)."""
        for x in latencies_s:
            self.stage_seconds.labels(stage=stage).observe(max(0.0, x))
            self.window.item_done(stage, max(0.0, x), failed)

    def formed(self, batches: Sequence[tuple[int, Sequence[float]]]) -> None:
        """Proof batches formed by a round: per batch (its size, its first-attempt jobs' queue+match seconds)."""
        for size, waits in batches:
            self.batch_size.observe(size)
            self.window.batch_formed("queue_match", size)
            self.window.count("submitted", len(waits))
            self.stage("queue_match", waits)
        self.batches.inc(len(batches))
        self.window.count("batches", len(batches))

    def decided(self, ok: bool, prove_s: Sequence[float], verify_s: float, pay_s: float, e2e_s: Sequence[float],
                group: tuple[int, int] | None) -> None:
        """One proof's verdict: its prove and verify seconds, verified -> paid seconds, submitted -> paid seconds
        (accepted ones); ``group``: (size, checks) of its verification group, given once per group."""
        self.stage("prove", prove_s)
        self.stage("verify", [verify_s], failed=not ok)
        if group is not None:
            self.group_size.observe(group[0])
            self.checks.inc(group[1])
            self.window.batch_formed("verify", group[0])
            self.window.count("verify_checks", group[1])
        if ok:
            self.verified.inc()
            self.stage("pay", [pay_s])
            self._recent.append(self._clock())
            for x in e2e_s:
                self.window.job_done(x)
        else:
            self.rejected.inc()
            self.window.count("rejected")
            self.window.count("bad_proofs")

    def lost(self, n: int) -> None:
        """``n`` proof leases closed without a result."""
        self.lost_total.inc(n)
        self.window.count("requeued", n)

    def refresh(self, depths: dict[str, int]) -> None:
        """Set the queue-depth gauges (and the snapshot's depths) from ``batches.queue_depths``."""
        for stage_name in PIPELINE_STAGES:
            self.depth.labels(stage=stage_name).set(depths.get(stage_name, 0))
            self.window.queue_depth(stage_name, depths.get(stage_name, 0))

    def snapshot(self, depths: dict[str, int]) -> dict[str, Any]:
        """``PipelineMetrics.snapshot`` (stages in order, per-job latency percentiles) with the depths ``depths``,
        ``recent_proofs_per_s`` and ``source: "exchange"``."""
        self.refresh(depths)
        snap = self.window.snapshot()
        snap["recent_proofs_per_s"] = self.recent_rate()
        snap["source"] = "exchange"
        snap["stage_order"] = list(PIPELINE_STAGES)
        return snap


class Metrics:
    """The service's metrics (see the module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.jobs = Gauge("raymarket_jobs", "Jobs by status", ["status"], registry=r)
        self.providers_online = Gauge("raymarket_providers_online", "Providers seen within the lease time",
                                      registry=r)
        self.leases_open = Gauge("raymarket_leases_open", "Leases assigned or running", registry=r)
        self.balance = Gauge("raymarket_ledger_balance_wei", "Sum of ledger balances by account kind (wei)",
                             ["kind"], registry=r)
        self.round_seconds = RecentHistogram("raymarket_round_seconds", "Wall time of one auction round (s)",
                                       buckets=ROUND_BUCKETS_S, registry=r)
        self.batches = Counter("raymarket_settlement_batches_total", "Settlement batches submitted", registry=r)
        self.chain_up = Gauge("raymarket_chain_rpc_up", "1 while the chain node answers, 0 during a stall",
                              registry=r)
        self.chain_since_ok = Gauge("raymarket_chain_seconds_since_ok",
                                    "Seconds since the last successful chain call", registry=r)
        self.chain_stalls = Gauge("raymarket_chain_stalls_total", "Chain RPC stalls since the service started",
                                  registry=r)
        self.chain_up.set(1)
        self.pipeline = PipelineStageMetrics(r)

    def watch_chain(self, health: Any) -> None:
        """Read the chain gauges from ``health`` (a ``chain_setup.ChainHealth``) at every scrape."""
        self.chain_up.set_function(lambda: 1.0 if health.up else 0.0)
        self.chain_since_ok.set_function(health.seconds_since_ok)
        self.chain_stalls.set_function(lambda: float(health.stalls))

    def refresh(self, s: Session) -> None:
        """Read the gauges' values from the database."""
        counts = dict(s.execute(select(JobRecord.status, func.count()).group_by(JobRecord.status)).all())
        for status in JobStatus:
            self.jobs.labels(status=status.value).set(counts.get(status.value, 0))
        self.providers_online.set(s.scalar(select(func.count()).select_from(ProviderRecord)
                                           .where(ProviderRecord.active.is_(True))) or 0)
        self.leases_open.set(s.scalar(select(func.count()).select_from(LeaseRecord)
                                      .where(LeaseRecord.status.in_(("assigned", "running")))) or 0)
        for kind, total in s.execute(select(Account.kind, wei_sum(Account.balance_wei)).group_by(Account.kind)):
            self.balance.labels(kind=kind).set(float(total or 0))
        self.pipeline.refresh(batches.queue_depths(s))

    def render(self, s: Session) -> bytes:
        """Refresh, then the Prometheus text exposition."""
        self.refresh(s)
        return generate_latest(self.registry)
