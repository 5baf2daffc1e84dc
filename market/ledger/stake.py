"""Stake: bonding a provider's free balance, and unbonding it after the unbonding period.

``bond:<provider>`` holds free stake (usable as collateral); :func:`request_unbond` moves some to
``unbonding:<provider>`` where it waits ``period_s`` (still slashable history, no longer lockable);
:func:`complete_unbond` pays matured requests to ``provider:<provider>``. Amounts are int wei.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from market.core.slashing import UNBONDING_PERIOD_S
from market.ledger._checks import check_id, check_time, op_digest
from market.ledger._ops import Ctx, check_amount, commit, ctx, legs_of, lock_accounts, op_row, replay, wei_params
from market.ledger.accounts import bond_account, provider_account, unbonding_account
from market.ledger.errors import UnbondingNotMatured
from market.ledger.transfers import Receipt, transfer


@dataclass(frozen=True)
class Unbond:
    """An unbond request: ``amount_wei`` waits in ``unbonding:<provider>`` until ``matures_at_s``."""

    unbond_id: str
    provider: str
    amount_wei: int
    requested_at_s: float
    matures_at_s: float
    status: str


@dataclass(frozen=True)
class UnbondCompletion:
    """Result of :func:`complete_unbond`: ``amount_wei`` moved to ``provider:<provider>``."""

    transfer_id: str
    provider: str
    amount_wei: int
    unbond_ids: list[str]


def bond(s: Session, transfer_id: str, provider: str, amount_wei: int) -> Receipt:
    """Bond stake: move ``amount_wei`` from ``provider:<provider>`` to ``bond:<provider>``.

    Raises:
        InvalidAmount, UnknownAccount (call open_provider first), InsufficientFunds, IdempotencyConflict.
    """
    check_id("provider", provider)
    return transfer(s, transfer_id, provider_account(provider), bond_account(provider), amount_wei, kind="bond")


_UNBOND_INSERT = wei_params(text(
    "INSERT INTO ledger_unbonds (id, provider, amount_wei, requested_at_s, matures_at_s, status) "
    "VALUES (:id, :provider, :amount, :at, :matures, 'pending')"), "amount")
_UNBOND_COLS = "id, provider, amount_wei, requested_at_s, matures_at_s, status"
_UNBOND_COMPLETE = text("UPDATE ledger_unbonds SET status = 'completed', completed_by = :by WHERE id = :id")
_UNBOND_SHRINK = wei_params(text("UPDATE ledger_unbonds SET amount_wei = :a WHERE id = :id"), "a")


def request_unbond(s: Session, transfer_id: str, provider: str, amount_wei: int, now_s: float, *,
                   period_s: float = UNBONDING_PERIOD_S) -> Unbond:
    """Start unbonding ``amount_wei`` of free bond; it matures at ``now_s + period_s``.

    The stake moves to ``unbonding:<provider>`` (no longer usable as collateral) and is paid out
    by :func:`complete_unbond` after maturity (EigenLayer / SP1 withdrawal delay).

    Raises:
        InvalidAmount, UnknownAccount, InsufficientFunds (free bond too small), IdempotencyConflict.
    """
    c = ctx(s)
    check_id("transfer_id", transfer_id), check_id("provider", provider)
    check_amount(c, "amount_wei", amount_wei)
    now, period = check_time("now_s", now_s), check_time("period_s", period_s)
    digest = op_digest("unbond", provider, amount_wei, period)
    src, hold = bond_account(provider), unbonding_account(provider)
    accts = lock_accounts(c, (src, hold))
    if (done := replay(c, transfer_id, "unbond", digest)) is not None:
        return Unbond(**done)
    result = Unbond(transfer_id, provider, amount_wei, now, now + period, "pending")
    legs = legs_of(transfer_id, [(src, hold, amount_wei, "unbond")])
    commit(c, accts, legs, [op_row(transfer_id, "unbond", digest, result)],
           [(_UNBOND_INSERT, {"id": transfer_id, "provider": provider, "amount": amount_wei, "at": now,
                              "matures": now + period})])
    return result


def complete_unbond(s: Session, transfer_id: str, provider: str, now_s: float) -> UnbondCompletion:
    """Pay out every matured unbond request of ``provider`` to ``provider:<provider>``.

    Raises:
        UnbondingNotMatured (none matured yet; carries the earliest maturity, or None when there is
        no request at all), UnknownAccount, IdempotencyConflict.
    """
    c = ctx(s)
    check_id("transfer_id", transfer_id), check_id("provider", provider)
    now = check_time("now_s", now_s)
    digest = op_digest("complete_unbond", provider)
    if (done := replay(c, transfer_id, "complete_unbond", digest)) is not None:
        return UnbondCompletion(**done)
    lock = " FOR UPDATE" if c.pg else ""
    rows = c.s.execute(text(f"SELECT id, amount_wei, matures_at_s FROM ledger_unbonds WHERE provider = :p "
                            f"AND status = 'pending' ORDER BY id{lock}"), {"p": provider}).all()
    matured = [r for r in rows if float(r[2]) <= now]
    if not matured:
        if (done := replay(c, transfer_id, "complete_unbond", digest)) is not None:
            return UnbondCompletion(**done)
        raise UnbondingNotMatured(provider, min((float(r[2]) for r in rows), default=None), now)
    hold, dest = unbonding_account(provider), provider_account(provider)
    accts = lock_accounts(c, (hold, dest))
    total = sum(int(r[1]) for r in matured)
    result = UnbondCompletion(transfer_id, provider, total, [r[0] for r in matured])
    legs = legs_of(transfer_id, [(hold, dest, total, "unbonded")])
    commit(c, accts, legs, [op_row(transfer_id, "complete_unbond", digest, result)],
           [(_UNBOND_COMPLETE, [{"by": transfer_id, "id": r[0]} for r in matured])])
    return result


def slashable_unbonds(c: Ctx, provider: str, now_s: float) -> list[tuple[str, int]]:
    """``provider``'s pending unbond requests not matured at ``now_s`` as (id, amount_wei), newest first
    (locked FOR UPDATE on Postgres): the unbonding stake a slash may still take."""
    lock = " FOR UPDATE" if c.pg else ""
    rows = c.s.execute(text(f"SELECT id, amount_wei FROM ledger_unbonds WHERE provider = :p AND status = 'pending' "
                            f"AND matures_at_s > :now ORDER BY matures_at_s DESC, id DESC{lock}"),
                       {"p": provider, "now": now_s}).all()
    return [(r[0], int(r[1])) for r in rows]


def slashable_unbonding_wei(s: Session, provider: str, now_s: float) -> int:
    """Wei of ``provider``'s unbonding stake not matured at ``now_s``: still slashable (see ``slash``)."""
    return sum(a for _, a in slashable_unbonds(ctx(s), provider, now_s))


def take_unbonding(unbonding: list[tuple[str, int]], amount_wei: int, by: str) -> list[tuple[Any, Any]]:
    """Side writes that shrink the unbond requests ``unbonding`` (in order) by ``amount_wei`` in all; a request
    taken whole is closed (``completed`` by ``by``, nothing left to pay out)."""
    writes: list[tuple[Any, Any]] = []
    for unbond_id, amount in unbonding:
        if amount_wei <= 0:
            break
        part = min(amount_wei, amount)
        if part == amount:
            writes.append((_UNBOND_COMPLETE, {"by": by, "id": unbond_id}))
        else:
            writes.append((_UNBOND_SHRINK, {"a": amount - part, "id": unbond_id}))
        amount_wei -= part
    return writes


def unbonds(s: Session, provider: str) -> list[Unbond]:
    """All unbond requests of ``provider``, oldest maturity first."""
    rows = s.execute(text(f"SELECT {_UNBOND_COLS} FROM ledger_unbonds WHERE provider = :p ORDER BY matures_at_s, id"),
                     {"p": provider}).all()
    return [Unbond(r[0], r[1], int(r[2]), float(r[3]), float(r[4]), r[5]) for r in rows]

