"""The service's background loop: each tick expires leases and deadlines, sweeps stuck jobs, hands spot-checks
to verifiers, runs an auction round; a second thread submits due settlement batches and lets the watchers catch
up, only while the chain node answers (a paused node delays settlement, never the market). Every step is its
own transaction, so a kill at any point leaves a consistent database, and the next start continues from it."""

from __future__ import annotations

import contextlib
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
from market.exchange.service import challenges, leases, money, providers, routes_circuits, scrub, spot
from market.exchange.service.chain_setup import probe
from market.exchange.service.runtime import Runtime

log = logging.getLogger("raymarket.exchange")


def housekeeping(rt: Runtime, now_s: float) -> None:
    """Refresh which providers are online, expire leases (re-auction) and open jobs past their deadline."""
    with rt.tx() as s:
        providers.refresh_active(s, now_s, rt.config.lease_s)
        expired = leases.expire(s, now_s, rt.settings.max_attempts)
        swept = leases.sweep_stuck(s, now_s, rt.settings.max_attempts)
        ex.expire_jobs(s, now_s)
    if expired:
        log.info("leases expired: %s", ", ".join(expired))
    if swept:
        log.warning("jobs swept (no open lease, or past their deadline while running): %s", ", ".join(swept))


def verify_step(rt: Runtime, now_s: float) -> None:
    """Spot-checks (``spot.sweep``): give each ``verifying`` job's sample to a verifier, expire unverified ones."""
    with rt.tx() as s:
        created, unverified = spot.sweep(s, now_s, rt.config.lease_s)
    if created:
        rt.generation += 1  # wake the verifiers' long-polls
    if unverified:
        log.info("jobs unverified at their deadline (refunded, not paid): %s", ", ".join(unverified))


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
    """Submit due settlement batches, then apply new chain events (jobs -> ``settled``). Returns batches sent.

    Over RPC this runs without the service's write lock (its own short transactions wait on the database, not
    on this process): a node that stops answering must not hold up requests and rounds while its calls time
    out. The in-process EVM, which is not thread-safe, is still called under the lock (it never stalls)."""
    with rt.write_lock if rt.chain.chain.kind == "in-process" else contextlib.nullcontext():
        sent = rt.settler.flush(now_s=now_s)
        rt.watcher.poll_once()
    rt.metrics.batches.inc(len(sent))
    return len(sent)


def prune_nonces(rt: Runtime, now_s: float) -> None:
    """Delete nonces of requests that expired (a replay of those is refused by its expiry)."""
    with rt.tx() as s:
        s.execute(delete(RequestNonce).where(RequestNonce.expiry < now_s - 1))


#: Steps that touch only the database (and provider processes): they run whatever the chain does.
MARKET_STEPS = (housekeeping, verify_step, challenges.step, auction, scrub.step)
#: Steps that call the chain node: settlement batches + watcher, the Vault (deposits, epochs, audit), verifier
#: registration. Run by their own thread, gated by the node's health (``chain_setup.ChainHealth``).
CHAIN_STEPS = (settle, money.step, routes_circuits.step)
#: While the node answers, it is probed at most this often (seconds) to keep ``seconds_since_ok`` honest.
PROBE_EVERY_S = 1.0


def _run_steps(rt: Runtime, now_s: float, steps: tuple) -> None:
    for step in steps:
        try:
            step(rt, now_s)
        except Exception:  # the loop must survive a failing step (lock timeout, a bug)
            log.exception("background step %s failed", step.__name__)


def chain_tick(rt: Runtime, now_s: float) -> bool:
    """The chain steps, when the node answers: probed first while it is down (or not heard from for
    ``PROBE_EVERY_S``); a step that fails while the probe after it fails too is the stall (logged once by
    ``ChainHealth``), not a bug (logged with its traceback). Returns whether the node answered."""
    health = rt.chain.health
    if (not health.up or health.seconds_since_ok(now_s) > PROBE_EVERY_S) and not probe(rt.chain.chain, health):
        return False
    for step in CHAIN_STEPS:
        try:
            step(rt, now_s)
        except Exception:  # noqa: BLE001 -- a timeout of a stalled node, or a real failure: the probe tells
            if not probe(rt.chain.chain, health):
                return False
            log.exception("background step %s failed", step.__name__)
    return True


def tick(rt: Runtime, now_s: float | None = None) -> None:
    """One pass of every step, market then chain (errors are logged; the next tick retries)."""
    now_s = time.time() if now_s is None else now_s
    _run_steps(rt, now_s, MARKET_STEPS)
    chain_tick(rt, now_s)


class Loop:
    """Runs the market steps every ``round_interval_s`` seconds in one daemon thread, and the chain steps in
    another (a stalled chain node never holds up rounds, leases or verification), until :meth:`stop`."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raymarket-exchange-loop", daemon=True)
        self._chain_thread = threading.Thread(target=self._run_chain, name="raymarket-exchange-chain", daemon=True)
        self._last_prune = 0.0
        rt.metrics.watch_chain(rt.chain.health)

    def start(self) -> "Loop":
        self._thread.start()
        self._chain_thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            _run_steps(self.rt, now, MARKET_STEPS)
            if now - self._last_prune > self.rt.config.nonce_prune_s:
                self._last_prune = now
                try:
                    prune_nonces(self.rt, now)
                except Exception:
                    log.exception("nonce pruning failed")
            self._stop.wait(self.rt.config.round_interval_s)

    def _run_chain(self) -> None:
        while not self._stop.is_set():
            chain_tick(self.rt, time.time())
            self._stop.wait(self.rt.config.round_interval_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the current ticks (waits up to ``timeout_s`` seconds for each thread)."""
        self._stop.set()
        for thread in (self._thread, self._chain_thread):
            if thread.is_alive():
                thread.join(timeout_s)
