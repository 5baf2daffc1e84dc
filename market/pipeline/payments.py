"""The pipeline's pay stage on the real ledger (:mod:`market.ledger`): release, slash, refund.

:class:`LedgerPayments` implements :class:`market.pipeline.stages.Payments`. Each call is one
ledger transaction (``with Session(engine) as s, s.begin():``), and every transfer id is derived
from the job, so a retried or duplicated call is idempotent in the ledger itself, whatever the
pipeline does:

* ``pay:<job_id>`` -- :func:`market.ledger.release_payment` of the job's escrow to the provider
  (minus the protocol fee). A second completion of the same job (a re-auctioned job finished by
  two providers) cannot post the escrow again: the ledger answers ``PendingAlreadyResolved`` or
  ``IdempotencyConflict``, and :meth:`LedgerPayments.pay` returns False. When the provider had
  locked collateral for the job, it is unlocked (``unlock:<job_id>:<provider>``).
* ``slash:<job_id>:<provider>`` -- :func:`market.ledger.slash` with reason ``wrong_result``
  (the rule of :mod:`market.core.slashing`: the whole collateral lock, half to the client, half
  burned), or ``slash_amount_wei`` from the free bond when the provider locked nothing for the job.
* ``void:<job_id>`` -- :func:`market.ledger.void_escrow`: a rejected or failed job's budget goes back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from market import ledger
from market.core import ids
from market.ledger.errors import IdempotencyConflict, PendingAlreadyResolved, PendingNotFound
from market.pipeline.batching import ProofJob
from market.core.slashing import DEFAULT_PROTOCOL_FEE_BPS, SlashReason


def pay_transfer_id(job_id: str) -> str:
    """The ledger transfer id of ``job_id``'s payment."""
    return ids.payment_id(job_id)


def slash_transfer_id(job_id: str, provider: str) -> str:
    """The ledger transfer id (and slash id) of ``provider``'s slash for ``job_id``."""
    return ids.slash_id(job_id, provider)


class LedgerPayments:
    """:class:`~market.pipeline.stages.Payments` through :mod:`market.ledger` on ``engine``.

    Args:
        engine: the ledger database.
        fee_bps: protocol fee of each release (basis points).
        slash_amount_wei: what a wrong result costs a provider that locked no collateral for the job.
        clock: unix seconds (the slash's cancel window starts then).
    """

    def __init__(self, engine: Engine, *, fee_bps: int = DEFAULT_PROTOCOL_FEE_BPS, slash_amount_wei: int = 0,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.fee_bps = fee_bps
        self.slash_amount_wei = slash_amount_wei
        self.clock = clock

    def pay(self, job: ProofJob, provider: str, proof_sha256: str, batch_id: str) -> bool:
        """Release ``job``'s escrow: ``price_wei`` (less the fee) to ``provider``.

        Returns:
            True when paid by this call; False when the escrow was no longer open (already paid,
            to this or another provider, or refunded): nothing moves then.

        Raises:
            market.ledger.errors.LedgerError: the ledger refused (``PendingNotFound``: the job was never
                escrowed; ``UnknownAccount``: the provider has no account; ...).
        """
        try:
            with Session(self.engine) as s, s.begin():
                if _escrow_settled(s, job.job_id):
                    return False
                ledger.release_payment(s, pay_transfer_id(job.job_id), job.job_id, provider, job.price_wei,
                                       fee_bps=self.fee_bps)
                self._unlock(s, job.job_id, provider)
        except (PendingAlreadyResolved, IdempotencyConflict):  # a concurrent payment won the row lock
            return False
        return True

    def _unlock(self, s: Session, job_id: str, provider: str) -> None:
        for p in ledger.pending_for_job(s, job_id, "collateral"):
            if p.party == provider and p.status == "pending":
                ledger.unlock_collateral(s, ids.collateral_unlock_id(job_id, provider), provider, job_id)

    def slash(self, job: ProofJob, provider: str, batch_id: str, reason: str) -> bool:
        """Queue a ``wrong_result`` slash of ``provider`` for ``job``; False if already slashed for it.

        Raises:
            market.ledger.errors.LedgerError: e.g. nothing locked and ``slash_amount_wei`` is 0.
        """
        with Session(self.engine) as s, s.begin():
            try:
                ledger.get_slash(s, slash_transfer_id(job.job_id, provider))
                return False
            except ledger.LedgerError:
                pass
            locked = any(p.party == provider and p.status == "pending"
                         for p in ledger.pending_for_job(s, job.job_id, "collateral"))
            ledger.slash(s, slash_transfer_id(job.job_id, provider), provider, job.job_id,
                         SlashReason.WRONG_RESULT, self.clock(), client=job.client or None,
                         amount_wei=None if locked else self.slash_amount_wei)
        return True

    def refund(self, job: ProofJob, reason: str) -> bool:
        """Void ``job``'s escrow (rejected or failed job); False when none was open (never escrowed,
        already paid or already refunded)."""
        try:
            with Session(self.engine) as s, s.begin():
                if _escrow_settled(s, job.job_id):
                    return False
                ledger.void_escrow(s, ids.void_id(job.job_id), job.job_id)
        except (PendingNotFound, PendingAlreadyResolved, IdempotencyConflict):
            return False
        return True


def _escrow_settled(s: Session, job_id: str) -> bool:
    """The job was escrowed and its escrow is no longer open (paid, voided or expired)."""
    escrows = ledger.pending_for_job(s, job_id, "escrow")
    return bool(escrows) and not any(p.status == "pending" for p in escrows)
