"""The pay stage: pay each verified job once, slash the providers of bad proofs, hand settlement batches on.

Runs in the pipeline's ``pay`` thread: ``[pay q] -> payment (idempotent per job id in the ledger,
``pay:<job_id>``, and paid at most once here: a job completed twice is never paid twice) or
slash (``wrong_result``; the provider is quarantined and the job re-auctioned) -> on_settled``
with settlement batches of at most ``settle_batch_max`` verified jobs (the attestation / Merkle
settlement hook).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from market.pipeline.batching import FlushReason, make_batch
from market.pipeline.state import TICK_S, StageContext
from market.pipeline.stages import OutcomeStatus, Payments, VerifiedJob
from market.pipeline.verify import Slash
from market.pipeline.workers import ProviderPool

log = logging.getLogger(__name__)


class PayStage:
    """Payments, slashes and settlement batches (one loop, :meth:`run`).

    Args:
        ctx: the pipeline's wiring.
        pool: the providers (a slashed one is quarantined there).
        payments: where money moves.
        on_settled: called with each settlement batch (list of :class:`~market.pipeline.stages.VerifiedJob`).
    """

    def __init__(self, ctx: StageContext, pool: ProviderPool, payments: Payments,
                 on_settled: Callable[[list[VerifiedJob]], None] | None = None) -> None:
        self.ctx = ctx
        self.pool = pool
        self.payments = payments
        self.on_settled = on_settled

    def run(self) -> None:
        """Until stop: pay or slash each item; flush a settlement batch when full or idle."""
        ctx = self.ctx
        settle: list[VerifiedJob] = []
        while not ctx.stop.is_set():
            item = ctx.pay_q.get(TICK_S * 4)
            if item is not None:
                t0 = time.perf_counter()
                ctx.metrics.entered("pay")
                paid = self.settle_item(item)
                ctx.metrics.batch_done("pay", 1, time.perf_counter() - t0, failed=0 if paid else 1)
                if paid:
                    settle.append(item)
            if settle and (item is None or len(settle) >= ctx.settings.settle_batch_max):
                if self.on_settled:
                    self.on_settled(settle)
                settle = []

    def settle_item(self, item: Any) -> bool:
        """Pay a :class:`~market.pipeline.stages.VerifiedJob` or carry out a :class:`~market.pipeline.verify.Slash`;
        True when a job was paid by this call."""
        ctx = self.ctx
        if isinstance(item, Slash):
            self._slash(item)
            return False
        assert isinstance(item, VerifiedJob)
        if not ctx.book.is_pending(item.job.job_id):
            ctx.metrics.count("duplicate_results")
            return False
        try:
            if not self.payments.pay(item.job, item.provider, item.proof_sha256, item.batch_id):
                ctx.metrics.count("duplicate_results")  # the ledger had it paid already: not paid again
        except Exception as exc:  # the ledger refused: the job is not paid, say why
            log.exception("payment of %s failed", item.job.job_id)
            ctx.book.finish(item.job.job_id, OutcomeStatus.FAILED, error=f"payment failed: {exc}")
            return False
        now = ctx.clock()
        ctx.book.finish(item.job.job_id, OutcomeStatus.PAID, provider=item.provider, batch_id=item.batch_id,
                        proof=item.proof, completed_s=now)
        ctx.metrics.job_done(now - item.job.submitted_s)
        return True

    def _slash(self, item: Slash) -> None:
        ctx = self.ctx
        try:
            if self.payments.slash(item.job, item.provider, item.batch_id, "wrong_result"):
                ctx.metrics.count("slashed")
        except Exception:  # the ledger refused the slash: log it, still re-auction the job
            log.exception("slash of %s for %s failed", item.provider, item.job.job_id)
        if ctx.settings.quarantine_on_bad_proof:
            self.pool.quarantine(item.provider)
        b = make_batch(item.job.key, [item.job], ctx.clock(), ctx.clock(), FlushReason.REQUEUE, 0)
        ctx.book.requeue(b, item.provider, "bad proof")
