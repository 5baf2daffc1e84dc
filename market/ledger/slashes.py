"""Slashes: queued (cancellable inside a window), then final (burned / rescuer / client shares).

:func:`slash` takes a provider's stake (its collateral lock for the job first, then its free bond)
into ``slashing:<provider>``; :func:`finalize_slash` pays it out after the window, :func:`cancel_slash`
returns it to the free bond inside it. The rules (fractions, split) are :mod:`market.core.slashing`.
Amounts are int wei, times unix seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from market.core.slashing import SLASH_CANCEL_WINDOW_S, SlashReason, rule_for, slash_amount_wei, split_slash
from market.ledger._checks import check_id, check_time, op_digest
from market.ledger._ops import Ctx, check_amount, commit, ctx, legs_of, lock_accounts, op_row, replay, require, \
    wei_params
from market.ledger.accounts import (BURN_ACCOUNT, bond_account, client_account, collateral_account,
                                    provider_account, slashing_account, unbonding_account)
from market.ledger.errors import (InvalidAmount, InvalidArgument, PendingNotFound, SlashAlreadyResolved,
                                  SlashExceedsBond, SlashNotFound, SlashWindowClosed, SlashWindowOpen)
from market.ledger.reservations import PENDING_UPDATE, lock_open_pending
from market.ledger.stake import slashable_unbonds, take_unbonding


@dataclass(frozen=True)
class Slash:
    """A slash (see :class:`market.ledger.models.PendingSlash` for the fields' meaning)."""

    slash_id: str
    provider: str
    job_id: str
    reason: str
    lock_id: str | None
    amount_wei: int
    from_collateral_wei: int
    from_bond_wei: int
    rescuer: str | None
    client: str | None
    burn_wei: int
    rescuer_wei: int
    client_wei: int
    requested_at_s: float
    final_after_s: float
    status: str


_SLASH_COLS = ("id, provider, job_id, reason, lock_id, amount_wei, from_collateral_wei, from_bond_wei, rescuer, "
               "client, burn_wei, rescuer_wei, client_wei, requested_at_s, final_after_s, status")
_SLASH_INSERT = wei_params(text(
    f"INSERT INTO ledger_slashes ({_SLASH_COLS}) VALUES (:slash_id, :provider, :job_id, :reason, "
    ":lock_id, :amount_wei, :from_collateral_wei, :from_bond_wei, :rescuer, :client, :burn_wei, "
    ":rescuer_wei, :client_wei, :requested_at_s, :final_after_s, :status)"),
    "amount_wei", "from_collateral_wei", "from_bond_wei", "burn_wei", "rescuer_wei", "client_wei")


_SLASH_RESOLVE = text("UPDATE ledger_slashes SET status = :status, resolved_by = :by WHERE id = :id")


def _slash_row(r: Any) -> Slash:
    return Slash(r[0], r[1], r[2], r[3], r[4], int(r[5]), int(r[6]), int(r[7]), r[8], r[9], int(r[10]), int(r[11]),
                 int(r[12]), float(r[13]), float(r[14]), r[15])


def slash(s: Session, transfer_id: str, provider: str, job_id: str, reason: SlashReason | str, now_s: float, *,
          rescuer: str | None = None, client: str | None = None, amount_wei: int | None = None,
          window_s: float = SLASH_CANCEL_WINDOW_S) -> Slash:
    """Queue a slash of ``provider`` for ``job_id``; it is final only after ``window_s`` (cancel window).

    The amount is the rule's fraction (:data:`market.core.slashing.SLASH_RULES`) of the provider's open
    collateral lock for the job, or ``amount_wei`` when an arbiter gives it. It is taken from that
    lock first, then from the free bond, then from unbonding stake that has not matured yet (newest
    request first: stake stays slashable until it matures, issue 14 finding 5), into ``slashing:<provider>``; :func:`finalize_slash` pays
    it out (burn / rescuer's ``provider:`` account / ``client:`` account) and :func:`cancel_slash`
    returns it to the free bond. The id of the slash is ``transfer_id``.

    Raises:
        InvalidArgument (unknown reason), InvalidAmount, PendingNotFound (no lock and no amount),
        SlashExceedsBond (amount > lock + free bond + unmatured unbonding), UnknownAccount (rescuer / client accounts
        must exist), IdempotencyConflict.
    """
    c = ctx(s)
    check_id("transfer_id", transfer_id), check_id("provider", provider), check_id("job_id", job_id)
    try:
        rule = rule_for(reason)
    except ValueError as exc:
        raise InvalidArgument("reason", reason, str(exc)) from None
    now, window = check_time("now_s", now_s), check_time("window_s", window_s)
    if amount_wei is not None:
        check_amount(c, "amount_wei", amount_wei)
    digest = op_digest("slash", provider, job_id, rule.reason.value, rescuer, client, amount_wei, window)
    if (done := replay(c, transfer_id, "slash", digest)) is not None:
        return Slash(**done)
    lock = lock_open_pending(c, job_id, "collateral", provider)
    coll, free, hold = collateral_account(provider), bond_account(provider), slashing_account(provider)
    unbonding = slashable_unbonds(c, provider, now)
    unb = unbonding_account(provider) if unbonding else None
    payees = [None if rescuer is None else provider_account(rescuer), None if client is None else client_account(client)]
    accts = lock_accounts(c, (coll, free, hold, unb, *payees))
    if (done := replay(c, transfer_id, "slash", digest)) is not None:
        return Slash(**done)
    require(accts, coll, free, hold, *payees)
    locked = lock.remaining_wei if lock else 0
    if amount_wei is None and lock is None:
        raise PendingNotFound(f"collateral of {provider!r} for job {job_id!r} (or give amount_wei)")
    amount = amount_wei if amount_wei is not None else slash_amount_wei(rule, locked)
    if amount <= 0:
        raise InvalidAmount("amount_wei", amount)
    free_wei, unb_wei = max(accts[free].balance, 0), sum(a for _, a in unbonding)
    if amount > locked + free_wei + unb_wei:
        raise SlashExceedsBond(provider, amount, locked + free_wei + unb_wei)
    from_coll = min(amount, locked)
    from_free = min(amount - from_coll, free_wei)
    split = split_slash(rule, amount, has_rescuer=rescuer is not None, has_client=client is not None)
    result = Slash(transfer_id, provider, job_id, rule.reason.value, lock.pending_id if lock else None, amount,
                   from_coll, amount - from_coll, rescuer, client, split.burn_wei, split.rescuer_wei,
                   split.client_wei, now, now + window, "pending")
    legs = legs_of(transfer_id, [(coll, hold, from_coll, "slash"), (free, hold, from_free, "slash"),
                                 (unb or free, hold, amount - from_coll - from_free, "slash")], job_id)
    writes = take_unbonding(unbonding, amount - from_coll - from_free, transfer_id)
    if lock is not None and from_coll:
        left = lock.remaining_wei - from_coll
        writes.append((PENDING_UPDATE, {"remaining": left, "status": "pending" if left else "posted",
                                        "by": None if left else transfer_id, "id": lock.pending_id}))
    writes.append((_SLASH_INSERT, asdict(result)))
    commit(c, accts, legs, [op_row(transfer_id, "slash", digest, result)], writes)
    return result


def _lock_slash(c: Ctx, slash_id: str) -> Slash:
    sql = text(f"SELECT {_SLASH_COLS} FROM ledger_slashes WHERE id = :id" + (" FOR UPDATE" if c.pg else ""))
    row = c.s.execute(sql, {"id": slash_id}).first()
    if row is None:
        raise SlashNotFound(slash_id)
    return _slash_row(row)


def _resolve_slash(c: Ctx, op_kind: str, transfer_id: str, slash_id: str, now: float,
                   status: str) -> Slash:
    digest = op_digest(op_kind, slash_id)
    if (done := replay(c, transfer_id, op_kind, digest)) is not None:
        return Slash(**done)
    sl = _lock_slash(c, slash_id)
    if sl.status != "pending":
        if (done := replay(c, transfer_id, op_kind, digest)) is not None:
            return Slash(**done)
        raise SlashAlreadyResolved(slash_id, sl.status)
    if status == "final" and now < sl.final_after_s:
        raise SlashWindowOpen(slash_id, sl.final_after_s, now)
    if status == "cancelled" and now >= sl.final_after_s:
        raise SlashWindowClosed(slash_id, sl.final_after_s, now)
    hold = slashing_account(sl.provider)
    if status == "final":
        moves = [(hold, BURN_ACCOUNT, sl.burn_wei, "burn"),
                 (hold, provider_account(sl.rescuer) if sl.rescuer else "", sl.rescuer_wei, "rescue"),
                 (hold, client_account(sl.client) if sl.client else "", sl.client_wei, "compensate")]
    else:
        moves = [(hold, bond_account(sl.provider), sl.amount_wei, "unslash")]
    legs = legs_of(transfer_id, moves, sl.job_id)
    accts = lock_accounts(c, [g.debit for g in legs] + [g.credit for g in legs])
    result = Slash(**{**asdict(sl), "status": status})
    commit(c, accts, legs, [op_row(transfer_id, op_kind, digest, result)],
           [(_SLASH_RESOLVE, {"status": status, "by": transfer_id, "id": slash_id})])
    return result


def cancel_slash(s: Session, transfer_id: str, slash_id: str, now_s: float) -> Slash:
    """Cancel a queued slash (an arbiter's decision, inside the window): the stake returns to the free bond.

    Raises:
        SlashNotFound, SlashAlreadyResolved, SlashWindowClosed, IdempotencyConflict.
    """
    check_id("transfer_id", transfer_id), check_id("slash_id", slash_id)
    return _resolve_slash(ctx(s), "cancel_slash", transfer_id, slash_id, check_time("now_s", now_s), "cancelled")


def finalize_slash(s: Session, transfer_id: str, slash_id: str, now_s: float) -> Slash:
    """Make a queued slash final after its window: pay out burn / rescuer / client shares.

    Raises:
        SlashNotFound, SlashAlreadyResolved, SlashWindowOpen, IdempotencyConflict.
    """
    check_id("transfer_id", transfer_id), check_id("slash_id", slash_id)
    return _resolve_slash(ctx(s), "finalize_slash", transfer_id, slash_id, check_time("now_s", now_s), "final")


def get_slash(s: Session, slash_id: str) -> Slash:
    """The slash ``slash_id``. Raises: SlashNotFound."""
    row = s.execute(text(f"SELECT {_SLASH_COLS} FROM ledger_slashes WHERE id = :id"), {"id": slash_id}).first()
    if row is None:
        raise SlashNotFound(slash_id)
    return _slash_row(row)

