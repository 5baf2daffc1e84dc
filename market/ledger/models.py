"""Tables of the ledger (SQLAlchemy 2 declarative models on :class:`market.db.base.Base`).

The model is TigerBeetle's (accounts, immutable transfers with client-given ids, two-phase
pending transfers) realised the way Formance does it: a reservation moves the money into
a holding account (``escrow:<job>``, ``collateral:<provider>``, ``unbonding:<provider>``,
``slashing:<provider>``) by an ordinary journal transfer, and a row in a side table
(:class:`PendingTransfer`, :class:`UnbondRequest`, :class:`PendingSlash`) tracks what is held and its
status. So every balance change is a row of :class:`Transfer`, and balances replay exactly
from the journal.

Invariants held by Postgres itself (migration ``0001_ledger``):
  * ``ck_ledger_accounts_balance_nonnegative``: ``balance_wei >= 0 OR allow_negative``;
  * ``ck_ledger_transfers_amount_positive``, ``ck_ledger_transfers_distinct_accounts``;
  * triggers: the journal is append-only; a deferred constraint trigger checks at commit that
    each transaction's balance changes equal its journal transfers (see the migration).

On SQLite wei columns are decimal text (:class:`market.db.base.WeiType`): the CHECKs against ``0`` hold
as written (``'-5' < '0' <= '7'`` as text), the others have SQLite forms (:data:`SQLITE_CHECKS`, migration
``0008_wei_text``): a length-then-text comparison, and sums through the exact ``wei_add`` SQL function.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, DateTime, Double, ForeignKey, Identity,
                        Index, Integer, Numeric, SmallInteger, String, Text, func)
from sqlalchemy.orm import Mapped, mapped_column

from market.db.base import Base, Wei

#: Length of account, transfer, job and party ids.
ID_LEN = 200

#: CHECKs on wei columns that differ on SQLite (decimal text): constraint name -> (Postgres SQL, SQLite SQL).
SQLITE_CHECKS = {
    "remaining_in_range": (
        "remaining_wei >= 0 AND remaining_wei <= amount_wei",
        "remaining_wei >= 0 AND (length(remaining_wei) < length(amount_wei) OR "
        "(length(remaining_wei) = length(amount_wei) AND remaining_wei <= amount_wei))"),
    "sources_sum": ("from_collateral_wei + from_bond_wei = amount_wei",
                    "wei_add(from_collateral_wei, from_bond_wei) = amount_wei"),
    "split_sum": ("burn_wei + rescuer_wei + client_wei = amount_wei",
                  "wei_add(wei_add(burn_wei, rescuer_wei), client_wei) = amount_wei"),
}


def _wei_check(name: str) -> tuple[CheckConstraint, CheckConstraint]:
    """The Postgres and the SQLite form of the CHECK ``name`` (each emitted only on its dialect)."""
    pg, lite = SQLITE_CHECKS[name]
    return (CheckConstraint(pg, name=name).ddl_if(dialect="postgresql"),
            CheckConstraint(lite, name=name).ddl_if(dialect="sqlite"))


#: Account kinds (the ``kind`` column).
ACCOUNT_KINDS = ("world", "client", "escrow", "provider", "bond", "collateral", "unbonding",
                 "slashing", "protocol", "burn", "other")


class Account(Base):
    """An account: caller-given id, a kind, a balance in wei (int), whether it may go negative."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("balance_wei >= 0 OR allow_negative", name="balance_nonnegative"),
        CheckConstraint("kind IN (" + ", ".join(f"'{k}'" for k in ACCOUNT_KINDS) + ")", name="kind_known"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    allow_negative: Mapped[bool] = mapped_column(Boolean, server_default="false")
    balance_wei: Mapped[Wei] = mapped_column(server_default="0")


class Operation(Base):
    """One idempotent ledger request (the caller's transfer id): its kind, input hash and result.

    ``inputs_sha256`` is the SHA-256 of the canonical JSON of (kind, inputs); a retry with the
    same id must match it, else :class:`market.ledger.errors.IdempotencyConflict`.
    """

    __tablename__ = "ledger_operations"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    inputs_sha256: Mapped[str] = mapped_column(String(64))
    result_json: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Transfer(Base):
    """An immutable journal row: ``amount_wei`` moves from ``debit_account_id`` to ``credit_account_id``.

    ``op_id`` is the operation that wrote it, ``leg`` its index within that operation;
    ``seq`` orders the journal.

    No per-row foreign keys (they cost ~55 us per row, more than half of a batched transfer): on
    Postgres the deferred audit rejects at commit any journal row whose accounts did not move by
    exactly its amount, which an account that does not exist cannot do; ``check_invariants``
    reports journal rows without an operation or an account.
    """

    __tablename__ = "ledger_transfers"
    __table_args__ = (
        CheckConstraint("amount_wei > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="distinct_accounts"),
        Index("ix_ledger_transfers_debit_account_id", "debit_account_id"),
        Index("ix_ledger_transfers_credit_account_id", "credit_account_id"),
    )

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), Identity(),
                                     primary_key=True)
    op_id: Mapped[str] = mapped_column(String(ID_LEN))
    leg: Mapped[int] = mapped_column(SmallInteger)
    debit_account_id: Mapped[str] = mapped_column(String(ID_LEN))
    credit_account_id: Mapped[str] = mapped_column(String(ID_LEN))
    amount_wei: Mapped[Wei]
    kind: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[str | None] = mapped_column(String(ID_LEN))


class PendingTransfer(Base):
    """A reservation: ``amount_wei`` moved from ``debit_account_id`` into holding ``credit_account_id``.

    ``kind`` is ``escrow`` (a job budget; ``party`` = client) or ``collateral`` (a provider's
    per-job lock; ``party`` = provider). ``status``: ``pending`` then exactly one of
    ``posted``/``voided``/``expired``; ``remaining_wei`` is what is still held.
    """

    __tablename__ = "ledger_pendings"
    __table_args__ = (
        CheckConstraint("amount_wei > 0", name="amount_positive"),
        *_wei_check("remaining_in_range"),
        CheckConstraint("status IN ('pending', 'posted', 'voided', 'expired')", name="status_known"),
        CheckConstraint("kind IN ('escrow', 'collateral')", name="kind_known"),
        Index("ix_ledger_pendings_job_id", "job_id"),
        Index("ix_ledger_pendings_status_expires", "status", "expires_at_s"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[str] = mapped_column(String(ID_LEN))
    party: Mapped[str] = mapped_column(String(ID_LEN))
    debit_account_id: Mapped[str] = mapped_column(String(ID_LEN), ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[str] = mapped_column(String(ID_LEN), ForeignKey("ledger_accounts.id"))
    amount_wei: Mapped[Wei]
    remaining_wei: Mapped[Wei]
    status: Mapped[str] = mapped_column(String(16))
    expires_at_s: Mapped[float | None] = mapped_column(Double)
    resolved_by: Mapped[str | None] = mapped_column(String(ID_LEN))


class UnbondRequest(Base):
    """Stake moved from ``bond:<provider>`` to ``unbonding:<provider>`` until ``matures_at_s``."""

    __tablename__ = "ledger_unbonds"
    __table_args__ = (
        CheckConstraint("amount_wei > 0", name="amount_positive"),
        CheckConstraint("status IN ('pending', 'completed')", name="status_known"),
        Index("ix_ledger_unbonds_provider", "provider"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    provider: Mapped[str] = mapped_column(String(ID_LEN))
    amount_wei: Mapped[Wei]
    requested_at_s: Mapped[float] = mapped_column(Double)
    matures_at_s: Mapped[float] = mapped_column(Double)
    status: Mapped[str] = mapped_column(String(16))
    completed_by: Mapped[str | None] = mapped_column(String(ID_LEN))


class PendingSlash(Base):
    """A queued slash: ``amount_wei`` held in ``slashing:<provider>`` until finalized or cancelled.

    ``from_collateral_wei`` came out of the job's collateral lock ``lock_id``, ``from_bond_wei``
    out of the free bond. ``burn_wei + rescuer_wei + client_wei == amount_wei`` is the split
    applied at finalization. ``status``: ``pending`` then ``final`` or ``cancelled``.
    """

    __tablename__ = "ledger_slashes"
    __table_args__ = (
        CheckConstraint("amount_wei > 0", name="amount_positive"),
        *_wei_check("sources_sum"),
        *_wei_check("split_sum"),
        CheckConstraint("status IN ('pending', 'final', 'cancelled')", name="status_known"),
        Index("ix_ledger_slashes_provider", "provider"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    provider: Mapped[str] = mapped_column(String(ID_LEN))
    job_id: Mapped[str] = mapped_column(String(ID_LEN))
    reason: Mapped[str] = mapped_column(String(32))
    lock_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    amount_wei: Mapped[Wei]
    from_collateral_wei: Mapped[Wei]
    from_bond_wei: Mapped[Wei]
    rescuer: Mapped[str | None] = mapped_column(String(ID_LEN))
    client: Mapped[str | None] = mapped_column(String(ID_LEN))
    burn_wei: Mapped[Wei]
    rescuer_wei: Mapped[Wei]
    client_wei: Mapped[Wei]
    requested_at_s: Mapped[float] = mapped_column(Double)
    final_after_s: Mapped[float] = mapped_column(Double)
    status: Mapped[str] = mapped_column(String(16))
    resolved_by: Mapped[str | None] = mapped_column(String(ID_LEN))


class TxAudit(Base):
    """Scratch row per open database transaction, written by the Postgres audit triggers.

    ``balance_sum`` is the sum of balance changes, ``balance_fp`` / ``journal_fp`` are
    fingerprints (sum of change x ``hashtext(account id)``) of the balance changes and of the
    journal rows; the deferred constraint trigger compares them at commit and deletes the row.
    Always empty outside a transaction; unused on SQLite.
    """

    __tablename__ = "ledger_tx_audit"

    txid: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    balance_sum: Mapped[Decimal] = mapped_column(Numeric())
    balance_fp: Mapped[Decimal] = mapped_column(Numeric())
    journal_fp: Mapped[Decimal] = mapped_column(Numeric())
