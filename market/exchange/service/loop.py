"""The service's background loop: each tick expires leases and deadlines, runs an auction round, submits
due settlement batches and lets the watcher catch up. Every step is its own transaction, so a kill at any
point leaves a consistent database, and the next start continues from it."""

from __future__ import annotations

import logging
import threading
import time
import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from market import exchange as ex
from market.db.models import JobRecord, LeaseRecord, ProviderRecord, RequestNonce
from market.exchange import pricing_hooks
from market.exchange.pricing_hooks import HookLimits
from market.exchange.service import challenges, leases, money, providers, routes_circuits
from market.exchange.service.runtime import Runtime

log = logging.getLogger("raymarket.exchange")


def housekeeping(rt: Runtime, now_s: float) -> None:
    """Refresh which providers are online, expire leases (re-auction) and open jobs past their deadline."""
    with rt.tx() as s:
        providers.refresh_active(s, now_s, rt.config.lease_s)
        expired = leases.expire(s, now_s, rt.settings.max_attempts)
        ex.expire_jobs(s, now_s)
    if expired:
        log.info("leases expired: %s", ", ".join(expired))


#: A round whose inputs look unchanged (same open jobs, active providers and open leases) is skipped,
#: unless the last one is older than this (seconds): unmatched jobs are not re-cleared every tick.
ROUND_REFRESH_S = 5.0


def market_fingerprint(s: Session) -> tuple | None:
    """What a round's outcome depends on, cheaply: None when no round can match (no open job or no offer)."""
    jobs = s.execute(select(func.count(), func.max(JobRecord.updated_at)).where(JobRecord.status == "open")).one()
    active = tuple(s.scalars(select(ProviderRecord.name).where(ProviderRecord.active.is_(True))
                             .order_by(ProviderRecord.name)))
    if not jobs[0] or not active:
        return None
    busy = s.scalar(select(func.count()).select_from(LeaseRecord).where(LeaseRecord.status.in_(leases.OPEN)))
    return (*jobs, active, busy)


def auction(rt: Runtime, now_s: float) -> int:
    """One round over the open jobs and the active providers; a lease per match. Returns the matches."""
    with rt.read() as s:
        fp = market_fingerprint(s)
    if fp is None or (fp == rt.last_round[0] and now_s - rt.last_round[1] < ROUND_REFRESH_S):
        return 0
    rt.last_round = (fp, now_s)
    t0 = time.perf_counter()
    with rt.read() as s:
        inputs = ex.round_inputs(s, rule=rt.settings.matching_rule, now_s=now_s)
    inputs, hook_notes = pricing_hooks.price_round(  # provider hooks run in worker processes, never in here
        inputs, rt.config.pricing_hooks, HookLimits(timeout_s=rt.config.pricing_hook_timeout_s))
    result = inputs.clear()  # the slow part runs outside the write lock: requests are not held up by it
    with rt.tx() as s:
        assignments, unmatched = ex.apply_round(s, f"r-{uuid.uuid4().hex[:12]}", inputs, result)
        leases.create_leases(s, assignments, now_s, rt.config.lease_s)
    rt.metrics.round_seconds.observe(time.perf_counter() - t0)
    rt.explanations = {k: "; ".join([v, *hook_notes.get(k, [])]) for k, v in unmatched.items()}
    if assignments:
        rt.generation += 1
    return len(assignments)


def settle(rt: Runtime, now_s: float) -> int:
    """Submit due settlement batches, then apply new chain events (jobs -> ``settled``). Returns batches sent."""
    with rt.write_lock:
        sent = rt.settler.flush(now_s=now_s)
        rt.watcher.poll_once()
    rt.metrics.batches.inc(len(sent))
    return len(sent)


def prune_nonces(rt: Runtime, now_s: float) -> None:
    """Delete nonces of requests that expired (a replay of those is refused by its expiry)."""
    with rt.tx() as s:
        s.execute(delete(RequestNonce).where(RequestNonce.expiry < now_s - 1))


def tick(rt: Runtime, now_s: float | None = None) -> None:
    """One pass of every step (errors are logged; the next tick retries)."""
    now_s = time.time() if now_s is None else now_s
    for step in (housekeeping, challenges.step, auction, settle, money.step, routes_circuits.step):
        try:
            step(rt, now_s)
        except Exception:  # the loop must survive a failing step (chain down, lock timeout)
            log.exception("background step %s failed", step.__name__)


class Loop:
    """Runs :func:`tick` every ``round_interval_s`` seconds in a daemon thread until :meth:`stop`."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raymarket-exchange-loop", daemon=True)
        self._last_prune = 0.0

    def start(self) -> "Loop":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            tick(self.rt, now)
            if now - self._last_prune > self.rt.config.nonce_prune_s:
                self._last_prune = now
                try:
                    prune_nonces(self.rt, now)
                except Exception:
                    log.exception("nonce pruning failed")
            self._stop.wait(self.rt.config.round_interval_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the current tick (waits up to ``timeout_s`` seconds)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
