"""The prove stage: place batches on the providers' prover actors and collect what they return.

Runs in the pipeline's ``prove`` thread: ``[prove q] + re-auctioned batches -> earliest-finish
placement (:func:`~market.pipeline.placement.choose_provider`) -> prover actor -> [verify q]``.

Faults, decided here and not by Ray:

* a worker that dies mid-batch (actor killed, node lost) or raises: the batch's jobs are
  re-auctioned (:meth:`~market.pipeline.state.JobBook.requeue`: a new batch, ``attempt + 1``,
  that excludes that provider); a dead actor's slot is dropped. No slash: a crash may be an
  infrastructure fault (MISSION: no unfair slashing).
* a worker slower than ``batch_timeout_factor * predicted latency + batch_timeout_grace_s``:
  its batch is re-auctioned the same way and its late result ignored.
* no provider left for a batch (all excluded): its jobs fail (and are refunded).
"""

from __future__ import annotations

import collections
import secrets
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError

from market.pipeline.batching import Batch
from market.pipeline.errors import NoProviders
from market.pipeline.placement import choose_provider
from market.pipeline.state import TICK_S, StageContext
from market.pipeline.stages import OutcomeStatus
from market.pipeline.workers import ProvedBatchLike, ProviderPool


@dataclass
class Inflight:
    """A batch on a provider: its blinding seed, when it started and when it is due (pipeline clock)."""

    batch: Batch
    provider: str
    seed: str | None
    started_s: float
    due_s: float


@dataclass
class Proved:
    """A batch as its worker returned it, on its way to verification."""

    batch: Batch
    result: ProvedBatchLike
    seed: str | None


class DispatchStage:
    """Placement and collection (one loop, :meth:`run`); ``inflight_view`` is readable from other threads.

    Args:
        ctx: the pipeline's wiring.
        pool: the providers and their prover actors.
    """

    def __init__(self, ctx: StageContext, pool: ProviderPool) -> None:
        self.ctx = ctx
        self.pool = pool
        self.inflight_view: dict[str, tuple[str, tuple[str, ...]]] = {}

    def run(self) -> None:
        """Until stop: place pending batches (re-auctioned ones first), collect finished ones."""
        pending: collections.deque[Batch] = collections.deque()
        inflight: dict[Any, Inflight] = {}
        retry = self.ctx.book.retry
        while not self.ctx.stop.is_set():
            while retry:
                pending.appendleft(retry.pop())
            if not pending:
                b = self.ctx.prove_q.get(TICK_S if inflight else TICK_S * 4)
                if b is not None:
                    pending.append(b)
            self._place(pending, inflight)
            self._collect(inflight)

    def _place(self, pending: collections.deque[Batch], inflight: dict[Any, Inflight]) -> None:
        ctx = self.ctx
        while pending:
            b = pending[0]
            live = self.pool.live_slots(b.key.circuit_id, ctx.book.failed_providers(b.jobs))
            by_p = collections.Counter(f.provider for f in inflight.values())
            proofs: collections.Counter[str] = collections.Counter()
            for f in inflight.values():
                proofs[f.provider] += f.batch.size
            try:
                slot = choose_provider(live, b.size, proofs, by_p, circuit_id=b.key.circuit_id)
            except NoProviders as exc:
                pending.popleft()
                ctx.sizing.add_backlog(-b.size)
                for j in b.jobs:
                    ctx.book.finish(j.job_id, OutcomeStatus.FAILED, error=str(exc))
                continue
            if slot is None:
                return
            pending.popleft()
            self._dispatch(b, slot.name, inflight)

    def _dispatch(self, b: Batch, provider: str, inflight: dict[Any, Inflight]) -> None:
        ctx, s = self.ctx, self.ctx.settings
        seed = secrets.token_hex(16) if s.blinding == "derived" else None
        worker = self.pool.workers[(provider, b.key.circuit_id)]
        ref = worker.prove_batch.remote(b.batch_id, [j.job_id for j in b.jobs], [j.witness for j in b.jobs], seed)
        now = ctx.clock()
        predicted = ctx.sizing.predicted_latency_s(b.key.circuit_id, b.size)
        pending_ahead = sum(f.batch.size for f in inflight.values() if f.provider == provider)
        predicted += pending_ahead / self.pool.slots[provider].proofs_per_s
        due = now + s.batch_timeout_factor * predicted + s.batch_timeout_grace_s
        inflight[ref] = Inflight(b, provider, seed, now, due)
        self.inflight_view[b.batch_id] = (provider, tuple(j.job_id for j in b.jobs))
        ctx.sizing.add_backlog(-b.size)
        ctx.book.dispatched(b.jobs)
        ctx.metrics.entered("prove", b.size)

    def _collect(self, inflight: dict[Any, Inflight]) -> None:
        if not inflight:
            return
        ready, _ = ray.wait(list(inflight), num_returns=len(inflight), timeout=TICK_S)
        for ref in ready:
            f = inflight.pop(ref)
            self.inflight_view.pop(f.batch.batch_id, None)
            self._completed(ref, f)
        now = self.ctx.clock()
        for ref in [r for r, f in inflight.items() if now > f.due_s]:
            f = inflight.pop(ref)
            self.inflight_view.pop(f.batch.batch_id, None)
            self.pool.update_speed(f.provider, f.batch.size, now - f.started_s)  # it is at most this fast
            self.ctx.metrics.batch_done("prove", f.batch.size, now - f.started_s, failed=f.batch.size)
            self.ctx.book.requeue(f.batch, f.provider, "slow worker: batch past its timeout")

    def _completed(self, ref: Any, f: Inflight) -> None:
        ctx = self.ctx
        try:
            result: ProvedBatchLike = ray.get(ref, timeout=30)
        except RayError as exc:
            if isinstance(exc, RayActorError):  # the actor (or its node) is gone
                self.pool.drop_worker(f.provider, f.batch.key.circuit_id)
            ctx.metrics.count("worker_failures")
            ctx.metrics.batch_done("prove", f.batch.size, ctx.clock() - f.started_s, failed=f.batch.size)
            ctx.book.requeue(f.batch, f.provider, f"worker failed: {type(exc).__name__}")
            return
        ctx.sizing.observe(f.batch.key.circuit_id, f.batch.size, result.prove_s)
        self.pool.update_speed(f.provider, f.batch.size, result.prove_s)
        ctx.metrics.batch_done("prove", f.batch.size, result.prove_s)
        ctx.put_blocking(ctx.verify_q, Proved(f.batch, result, f.seed))
