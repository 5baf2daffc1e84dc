"""Prometheus metrics of one service (own ``CollectorRegistry``), refreshed from the database at scrape time.

``raymarket_jobs{status}``, ``raymarket_providers_online``, ``raymarket_leases_open``,
``raymarket_ledger_balance_wei{kind}`` (gauges, from the database); ``raymarket_round_seconds`` (histogram,
observed by the background loop); ``raymarket_settlement_batches_total`` (counter of submitted batches);
the chain node's health (``chain_setup.ChainHealth``, read at scrape time): ``raymarket_chain_rpc_up`` (1 while
the node answers, 0 during a stall), ``raymarket_chain_seconds_since_ok`` (seconds since the last successful
chain call), ``raymarket_chain_stalls_total`` (stalls seen since the service started).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from market.core.jobs import JobStatus
from market.db.base import wei_sum
from market.db.models import JobRecord, LeaseRecord, ProviderRecord
from market.ledger.models import Account

ROUND_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RecentHistogram(Histogram):
    """A Histogram (no labels) that also keeps its last ``keep`` observations as ``recent``:
    ``(unix time observed s, value)``, oldest first (the web console's per-round seconds)."""

    def __init__(self, *args, keep: int = 200, **kwargs) -> None:
        self.recent: deque[tuple[float, float]] = deque(maxlen=keep)
        super().__init__(*args, **kwargs)

    def observe(self, amount: float, exemplar=None) -> None:
        super().observe(amount, exemplar)
        self.recent.append((time.time(), float(amount)))


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

    def render(self, s: Session) -> bytes:
        """Refresh, then the Prometheus text exposition."""
        self.refresh(s)
        return generate_latest(self.registry)
