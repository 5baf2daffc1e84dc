"""Reservations (two-phase transfers): a job's escrow and a provider's per-job collateral lock.

Opening one moves the money into a holding account (``escrow:<job>``, ``collateral:<provider>``) by a
journal transfer and records a ``ledger_pendings`` row; posting (:func:`release_payment`), voiding
(:func:`void_escrow`, :func:`unlock_collateral`) or expiring (:func:`expire_pending`) it moves what it
still holds out again, exactly once (:class:`PendingAlreadyResolved`). Amounts are int wei, times unix
seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from market.core.ids import expiry_id
from market.core.slashing import DEFAULT_PROTOCOL_FEE_BPS, protocol_fee_wei
from market.ledger._checks import check_id, check_time, op_digest
from market.ledger._ops import Acct, Ctx, check_amount, commit, ctx, legs_of, lock_accounts, op_row, replay, require, \
    simulate, wei_params
from market.ledger.accounts import (PROTOCOL_FEE_ACCOUNT, bond_account, client_account, collateral_account,
                                    escrow_account, open_account, provider_account)
from market.ledger.errors import (InvalidArgument, LedgerError, PendingAlreadyResolved, PendingExists,
                                  PendingNotFound, PriceExceedsEscrow)


@dataclass(frozen=True)
class Pending:
    """A reservation (``kind`` = ``escrow`` or ``collateral``) and its state.

    ``pending_id`` is the transfer id that opened it; ``party`` is the client (escrow) or the
    provider (collateral); ``remaining_wei`` is still held in ``credit_account_id``.
    """

    pending_id: str
    kind: str
    job_id: str
    party: str
    debit_account_id: str
    credit_account_id: str
    amount_wei: int
    remaining_wei: int
    status: str
    expires_at_s: float | None


@dataclass(frozen=True)
class Settlement:
    """Result of :func:`release_payment`: ``provider_wei + fee_wei == price_wei``, ``price_wei + refund_wei == escrowed_wei``."""

    transfer_id: str
    job_id: str
    client: str
    provider: str
    escrowed_wei: int
    price_wei: int
    fee_wei: int
    provider_wei: int
    refund_wei: int


@dataclass(frozen=True)
class Resolution:
    """A reservation voided, unlocked or expired: ``amount_wei`` went back to ``debit_account_id``."""

    transfer_id: str
    pending_id: str
    kind: str
    job_id: str
    party: str
    amount_wei: int
    status: str


PENDING_COLS = ("id, kind, job_id, party, debit_account_id, credit_account_id, amount_wei, remaining_wei, "
                 "status, expires_at_s")
_PENDING_OPEN = text(f"SELECT {PENDING_COLS} FROM ledger_pendings "
                     "WHERE job_id = :job AND kind = :kind AND party = :party AND status = 'pending'")
_PENDING_OPEN_ANY = text(f"SELECT {PENDING_COLS} FROM ledger_pendings "
                         "WHERE job_id = :job AND kind = :kind AND status = 'pending'")
_PENDING_LAST = text(f"SELECT {PENDING_COLS} FROM ledger_pendings WHERE job_id = :job AND kind = :kind "
                     "AND party = :party ORDER BY id DESC LIMIT 1")
_PENDING_LAST_ANY = text(f"SELECT {PENDING_COLS} FROM ledger_pendings WHERE job_id = :job AND kind = :kind "
                         "ORDER BY id DESC LIMIT 1")
_PENDING_INSERT = wei_params(text(
    "INSERT INTO ledger_pendings (id, kind, job_id, party, debit_account_id, credit_account_id, amount_wei, "
    "remaining_wei, status, expires_at_s) VALUES (:id, :kind, :job, :party, :debit, :credit, :amount, :amount, "
    "'pending', :expires)"), "amount")
PENDING_UPDATE = wei_params(text("UPDATE ledger_pendings SET remaining_wei = :remaining, status = :status, "
                                 "resolved_by = :by WHERE id = :id"), "remaining")


def pending_row(row: Any) -> Pending:
    return Pending(row[0], row[1], row[2], row[3], row[4], row[5], int(row[6]), int(row[7]), row[8],
                   None if row[9] is None else float(row[9]))


def lock_open_pending(c: Ctx, job_id: str, kind: str, party: str | None, *,
                       for_update: bool = True) -> Pending | None:
    """The open reservation of ``kind`` for ``job_id`` (and ``party``), locked FOR UPDATE, or None."""
    stmt = _PENDING_OPEN if party is not None else _PENDING_OPEN_ANY
    sql = text(str(stmt) + (" ORDER BY id FOR UPDATE" if c.pg and for_update else " ORDER BY id"))
    params = {"job": job_id, "kind": kind} | ({} if party is None else {"party": party})
    row = c.s.execute(sql, params).first()
    return None if row is None else pending_row(row)


def _not_open(c: Ctx, job_id: str, kind: str, party: str | None) -> LedgerError:
    """The error for a missing open reservation: already resolved, or never made."""
    if party is None:
        row = c.s.execute(_PENDING_LAST_ANY, {"job": job_id, "kind": kind}).first()
    else:
        row = c.s.execute(_PENDING_LAST, {"job": job_id, "kind": kind, "party": party}).first()
    if row is not None:
        return PendingAlreadyResolved(row[0], row[8])
    who = f" of {party!r}" if party else ""
    return PendingNotFound(f"{kind}{who} for job {job_id!r}")


def _reserve(c: Ctx, op_kind: str, transfer_id: str, kind: str, job_id: str, party: str, debit: str,
             credit: str, credit_kind: str, amount_wei: int, expires_at_s: float | None) -> Pending:
    """Open a reservation: move ``amount_wei`` from ``debit`` into holding ``credit``; idempotent."""
    digest = op_digest(op_kind, job_id, party, amount_wei, expires_at_s)
    accts = lock_accounts(c, (debit, credit))
    if (done := replay(c, transfer_id, op_kind, digest)) is not None:
        return Pending(**done)
    require(accts, debit)
    # No FOR UPDATE here (accounts are locked already; pending rows are locked before accounts
    # elsewhere): two reservations of one party serialise on the party's account lock.
    if (open_ := lock_open_pending(c, job_id, kind, party, for_update=False)) is not None:
        raise PendingExists(open_.pending_id, kind, job_id)
    legs = legs_of(transfer_id, [(debit, credit, amount_wei, kind)], job_id)
    if credit not in accts:  # a new holding account: validate the debit side alone first
        simulate(c, {debit: Acct(accts[debit].balance, accts[debit].allow_negative), credit: Acct(0, False)}, legs)
        open_account(c.s, credit, credit_kind)
        accts.update(lock_accounts(c, (credit,)))
    pending = Pending(transfer_id, kind, job_id, party, debit, credit, amount_wei, amount_wei, "pending", expires_at_s)
    commit(c, accts, legs, [op_row(transfer_id, op_kind, digest, pending)],
           [(_PENDING_INSERT, {"id": transfer_id, "kind": kind, "job": job_id, "party": party, "debit": debit,
                               "credit": credit, "amount": amount_wei, "expires": expires_at_s})])
    return pending


def escrow_job(s: Session, transfer_id: str, client: str, job_id: str, amount_wei: int, *,
               expires_at_s: float | None = None) -> Pending:
    """Reserve a job's budget: move ``amount_wei`` from ``client:<client>`` into ``escrow:<job_id>``.

    The reservation is later posted by :func:`release_payment`, voided by :func:`void_escrow`, or
    expired by :func:`expire_pending` once ``expires_at_s`` (unix seconds) has passed.

    Raises:
        InvalidAmount, InvalidArgument, UnknownAccount, InsufficientFunds, PendingExists (the
        job already has an open escrow), IdempotencyConflict.
    """
    c = ctx(s)
    check_id("transfer_id", transfer_id), check_id("client", client), check_id("job_id", job_id)
    check_amount(c, "amount_wei", amount_wei)
    expires = None if expires_at_s is None else check_time("expires_at_s", expires_at_s)
    return _reserve(c, "escrow", transfer_id, "escrow", job_id, client, client_account(client),
                    escrow_account(job_id), "escrow", amount_wei, expires)


def lock_collateral(s: Session, transfer_id: str, provider: str, job_id: str, amount_wei: int, *,
                    expires_at_s: float | None = None) -> Pending:
    """Lock ``amount_wei`` of a provider's free bond as the collateral of ``job_id``.

    Moves it from ``bond:<provider>`` to ``collateral:<provider>``; released by
    :func:`unlock_collateral` (or expiry), taken by :func:`slash`.

    Raises:
        InvalidAmount, UnknownAccount (call open_provider), InsufficientFunds (free bond too
        small), PendingExists, IdempotencyConflict.
    """
    c = ctx(s)
    check_id("transfer_id", transfer_id), check_id("provider", provider), check_id("job_id", job_id)
    check_amount(c, "amount_wei", amount_wei)
    expires = None if expires_at_s is None else check_time("expires_at_s", expires_at_s)
    return _reserve(c, "lock", transfer_id, "collateral", job_id, provider, bond_account(provider),
                    collateral_account(provider), "collateral", amount_wei, expires)


def _resolve(c: Ctx, op_kind: str, transfer_id: str, job_id: str, kind: str, party: str | None,
             status: str) -> Resolution:
    """Return what a reservation still holds to its source (void / unlock); idempotent."""
    digest = op_digest(op_kind, job_id, party)
    if (done := replay(c, transfer_id, op_kind, digest)) is not None:
        return Resolution(**done)
    pending = lock_open_pending(c, job_id, kind, party)
    if pending is None:
        if (done := replay(c, transfer_id, op_kind, digest)) is not None:
            return Resolution(**done)
        raise _not_open(c, job_id, kind, party)
    accts = lock_accounts(c, (pending.debit_account_id, pending.credit_account_id))
    result = Resolution(transfer_id, pending.pending_id, kind, job_id, pending.party, pending.remaining_wei, status)
    legs = legs_of(transfer_id, [(pending.credit_account_id, pending.debit_account_id, pending.remaining_wei,
                                op_kind)], job_id)
    commit(c, accts, legs, [op_row(transfer_id, op_kind, digest, result)],
           [(PENDING_UPDATE, {"remaining": 0, "status": status, "by": transfer_id, "id": pending.pending_id})])
    return result


def void_escrow(s: Session, transfer_id: str, job_id: str) -> Resolution:
    """Void a job's open escrow: its whole remaining budget goes back to the client.

    Raises:
        PendingNotFound (never escrowed), PendingAlreadyResolved, IdempotencyConflict.
    """
    check_id("transfer_id", transfer_id), check_id("job_id", job_id)
    return _resolve(ctx(s), "void", transfer_id, job_id, "escrow", None, "voided")


#: Alias of :func:`void_escrow` (a job cancelled or failed with nothing to pay).
refund_job = void_escrow


def unlock_collateral(s: Session, transfer_id: str, provider: str, job_id: str) -> Resolution:
    """Release a provider's collateral lock for ``job_id`` back to its free bond.

    Raises:
        PendingNotFound, PendingAlreadyResolved, IdempotencyConflict.
    """
    check_id("transfer_id", transfer_id), check_id("provider", provider), check_id("job_id", job_id)
    return _resolve(ctx(s), "unlock", transfer_id, job_id, "collateral", provider, "posted")


def release_payment(s: Session, transfer_id: str, job_id: str, provider: str, price_wei: int, *,
                    fee_bps: int = DEFAULT_PROTOCOL_FEE_BPS) -> Settlement:
    """Post a job's escrow: ``price_wei - fee`` to ``provider:<provider>``, the fee to
    :data:`PROTOCOL_FEE_ACCOUNT`, the rest back to the client.

    ``fee = floor(price_wei * fee_bps / 10_000)`` (:func:`market.core.slashing.protocol_fee_wei`).

    Raises:
        InvalidAmount, InvalidArgument (fee_bps outside [0, 10_000]), UnknownAccount (provider
        account not open), PendingNotFound, PendingAlreadyResolved, PriceExceedsEscrow,
        IdempotencyConflict.
    """
    c = ctx(s)
    check_id("transfer_id", transfer_id), check_id("job_id", job_id), check_id("provider", provider)
    check_amount(c, "price_wei", price_wei)
    if isinstance(fee_bps, bool) or not isinstance(fee_bps, int) or not 0 <= fee_bps <= 10_000:
        raise InvalidArgument("fee_bps", fee_bps, "give basis points as an int in [0, 10000]")
    digest = op_digest("release", job_id, provider, price_wei, fee_bps)
    if (done := replay(c, transfer_id, "release", digest)) is not None:
        return Settlement(**done)
    pending = lock_open_pending(c, job_id, "escrow", None)
    if pending is None:
        if (done := replay(c, transfer_id, "release", digest)) is not None:
            return Settlement(**done)
        raise _not_open(c, job_id, "escrow", None)
    payee = provider_account(provider)
    accts = lock_accounts(c, (pending.credit_account_id, pending.debit_account_id, payee, PROTOCOL_FEE_ACCOUNT))
    require(accts, payee)
    if price_wei > pending.remaining_wei:
        raise PriceExceedsEscrow(job_id, price_wei, pending.remaining_wei)
    fee = protocol_fee_wei(price_wei, fee_bps)
    refund = pending.remaining_wei - price_wei
    result = Settlement(transfer_id, job_id, pending.party, provider, pending.remaining_wei, price_wei, fee,
                        price_wei - fee, refund)
    hold = pending.credit_account_id
    legs = legs_of(transfer_id, [(hold, payee, price_wei - fee, "payment"), (hold, PROTOCOL_FEE_ACCOUNT, fee, "fee"),
                               (hold, pending.debit_account_id, refund, "refund")], job_id)
    commit(c, accts, legs, [op_row(transfer_id, "release", digest, result)],
           [(PENDING_UPDATE, {"remaining": 0, "status": "posted", "by": transfer_id, "id": pending.pending_id})])
    return result


_EXPIRED = text(f"SELECT {PENDING_COLS} FROM ledger_pendings WHERE status = 'pending' "
                "AND expires_at_s IS NOT NULL AND expires_at_s <= :now ORDER BY id")


def expire_pending(s: Session, now_s: float, *, limit: int = 1000) -> list[Resolution]:
    """Expire every open reservation whose ``expires_at_s <= now_s``: its remaining goes back to its source.

    Each expiry is an operation with the deterministic id ``expire:<pending_id>``; reservations
    locked by a concurrent transaction are skipped (``FOR UPDATE SKIP LOCKED``) and picked up
    by the next call. At most ``limit`` per call.

    Returns:
        the reservations expired now (status ``expired``).
    """
    c = ctx(s)
    now = check_time("now_s", now_s)
    sql = text(str(_EXPIRED) + (" LIMIT :limit FOR UPDATE SKIP LOCKED" if c.pg else " LIMIT :limit"))
    pendings = [pending_row(r) for r in c.s.execute(sql, {"now": now, "limit": int(limit)}).all()]
    if not pendings:
        return []
    accts = lock_accounts(c, [p.debit_account_id for p in pendings] + [p.credit_account_id for p in pendings])
    results, ops, legs = [], [], []
    for p in pendings:
        op_id = expiry_id(p.pending_id)
        result = Resolution(op_id, p.pending_id, p.kind, p.job_id, p.party, p.remaining_wei, "expired")
        ops.append(op_row(op_id, "expire", op_digest("expire", p.pending_id), result))
        legs.extend(legs_of(op_id, [(p.credit_account_id, p.debit_account_id, p.remaining_wei, "expire")], p.job_id))
        results.append(result)
    commit(c, accts, legs, ops, [(PENDING_UPDATE, [{"remaining": 0, "status": "expired", "by": expiry_id(p.pending_id),
                                                    "id": p.pending_id} for p in pendings])])
    return results


def pending_for_job(s: Session, job_id: str, kind: str = "escrow") -> list[Pending]:
    """All reservations of ``kind`` (``escrow``/``collateral``) for ``job_id``, open ones first."""
    rows = s.execute(text(f"SELECT {PENDING_COLS} FROM ledger_pendings WHERE job_id = :job AND kind = :kind "
                          "ORDER BY status = 'pending' DESC, id"), {"job": job_id, "kind": kind}).all()
    return [pending_row(r) for r in rows]

