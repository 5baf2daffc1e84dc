"""The intake stage: validate each job, window it with its group, size the batches, feed the prover.

Runs in the pipeline's ``intake`` thread: ``[intake q] -> validate (reject: refund, nobody
slashed) -> batching windows (deterministic flush rules, adaptive target size) -> [prove q]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from market.pipeline.batching import Batch, BatchingWindows, ProofJob
from market.pipeline.errors import InvalidJob
from market.pipeline.state import TICK_S, StageContext
from market.pipeline.stages import OutcomeStatus, intake_check
from market.pipeline.workers import ProviderPool


class IntakeStage:
    """Validation and batching windows (one loop, :meth:`run`).

    Args:
        ctx: the pipeline's wiring.
        pool: the providers (how many live workers a circuit has sizes its batches).
        on_tick: called once per loop turn (the pipeline writes its metrics snapshot there).
    """

    def __init__(self, ctx: StageContext, pool: ProviderPool, on_tick: Callable[[], None]) -> None:
        self.ctx = ctx
        self.pool = pool
        self.on_tick = on_tick
        self.windows = BatchingWindows(ctx.settings.window)

    def run(self) -> None:
        """Until stop: take a job, window it, flush the due windows into the prove queue."""
        ctx = self.ctx
        while not ctx.stop.is_set():
            now = ctx.clock()
            due = self.windows.next_due_s()
            wait_s = TICK_S * 4 if due is None else max(0.0, min(TICK_S * 4, due - now))
            job = ctx.intake_q.get(wait_s)
            batches = self.admit(job) if job is not None else []
            batches += self.windows.poll(ctx.clock(), ctx.sizing.expected_latency_s())
            for b in batches:
                ctx.put_blocking(ctx.prove_q, b)
            self.on_tick()

    def admit(self, job: ProofJob) -> list[Batch]:
        """Validate ``job`` (rejected: closed and refunded) and add it to its window; returns the
        batches this flushed."""
        ctx = self.ctx
        ctx.metrics.entered("intake")
        t0 = time.perf_counter()
        try:
            intake_check(job, ctx.circuits)
        except InvalidJob as exc:
            ctx.metrics.count("rejected")
            ctx.metrics.batch_done("intake", 1, time.perf_counter() - t0, failed=1)
            ctx.book.finish(job.job_id, OutcomeStatus.REJECTED, error=str(exc))
            return []
        now = ctx.clock()
        n_workers = max(1, len(self.pool.live_slots(job.circuit_id, ())))
        slack = job.deadline_s - now - ctx.settings.window.deadline_margin_s
        target, expected = ctx.sizing.admit(job.circuit_id, len(ctx.intake_q), n_workers, slack)
        ctx.metrics.batch_done("intake", 1, time.perf_counter() - t0)
        return self.windows.add(job, now, target, expected)
