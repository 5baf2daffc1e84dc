"""Stake that the Vault holds, in the ledger: on-chain stakes, unstake requests, withdrawals and slashes that
reach unbonding stake. Split from :mod:`market.ledger.chain` (same rules, same helpers; see its docstring)."""

from __future__ import annotations


from sqlalchemy import text
from sqlalchemy.orm import Session

from market.ledger._checks import check_id, check_time, op_digest
from market.ledger._ops import Ctx, check_amount, commit, ctx, legs_of, lock_accounts, op_row, wei_params
from market.ledger.accounts import (bond_account, open_account,
                                    open_provider, unbonding_account)

#: The Vault contract seen from the ledger: money comes from it (confirmed deposits and stake) and goes back to
#: it (confirmed claims, stake withdrawals, burns). Its balance is minus the wei the Vault holds for the ledger.
from market.ledger._ops import Acct
from market.ledger.accounts import BURN_ACCOUNT
from market.ledger.chain import (  # noqa: F401 (helpers shared with the deposit side)
    SLASH_POOL_ACCOUNT, VAULT_ACCOUNT, ChainMove, open_chain_accounts, _credit, _replayed, _run, _take, debt_account,
    parked_stake_account,
)


def credit_stake(s: Session, op_id: str, address: str, provider: str | None, amount_wei: int) -> ChainMove:
    """A confirmed ``Staked(address, amount)``: ``vault -> bond:<provider>`` (debt covered first), or into
    ``stake:<address>`` when the address has no provider name yet (``provider=None``).

    Raises:
        InvalidAmount, InvalidArgument, IdempotencyConflict.
    """
    c = ctx(s)
    check_id("op_id", op_id), check_amount(c, "amount_wei", amount_wei)
    digest = op_digest("chain_stake", address, provider, amount_wei)
    if (done := _replayed(c, op_id, "chain_stake", digest)) is not None:
        return done
    open_chain_accounts(s, address)
    if provider is None:
        dest = parked_stake_account(address)
        open_account(s, dest, "other")
    else:
        open_provider(s, provider)
        dest = bond_account(provider)
    return _run(c, op_id, "chain_stake", address, amount_wei, (VAULT_ACCOUNT, dest, debt_account(address)), digest,
                lambda a: (_credit(a, address, amount_wei, dest, "chain_stake"), 0))


def assign_parked_stake(s: Session, op_id: str, address: str, provider: str) -> ChainMove | None:
    """Move ``stake:<address>`` (stake made before the address registered) into ``bond:<provider>``; None when
    there is nothing parked.

    Raises:
        IdempotencyConflict.
    """
    c = ctx(s)
    parked = parked_stake_account(address)
    row = s.execute(text("SELECT balance_wei FROM ledger_accounts WHERE id = :id"), {"id": parked}).first()
    if row is None or int(row[0]) <= 0:
        return None
    amount = int(row[0])
    digest = op_digest("chain_stake_assign", address, provider, amount)
    open_provider(s, provider)
    return _run(c, op_id, "chain_stake_assign", address, amount, (parked, bond_account(provider)), digest,
                lambda a: ([(parked, bond_account(provider), amount, "stake_assign")], 0))


# ------------------------------------------------------------------------------------------------ stake out
_UNBOND_INSERT = wei_params(text(
    "INSERT INTO ledger_unbonds (id, provider, amount_wei, requested_at_s, matures_at_s, status) "
    "VALUES (:id, :provider, :amount, :at, :matures, 'pending')"), "amount")
_UNBOND_SHRINK = wei_params(text("UPDATE ledger_unbonds SET amount_wei = :a WHERE id = :id"), "a")


def request_unstake(s: Session, op_id: str, address: str, provider: str, amount_wei: int, now_s: float,
                    matures_at_s: float) -> ChainMove:
    """A confirmed ``UnstakeRequested``: up to ``amount_wei`` of ``bond:<provider>`` moves to
    ``unbonding:<provider>`` (an unbond row maturing at the chain's ``matures_at_s``). Stake the ledger holds as
    collateral for running jobs stays there (``shortfall_wei``); it is reconciled by :func:`stake_withdrawn`.

    Raises:
        InvalidAmount, InvalidArgument, IdempotencyConflict.
    """
    c = ctx(s)
    check_id("op_id", op_id), check_amount(c, "amount_wei", amount_wei)
    now, matures = check_time("now_s", now_s), check_time("matures_at_s", matures_at_s)
    digest = op_digest("chain_unstake", address, provider, amount_wei, matures)
    if (done := _replayed(c, op_id, "chain_unstake", digest)) is not None:
        return done
    open_provider(s, provider)
    src, hold = bond_account(provider), unbonding_account(provider)
    accts = lock_accounts(c, (src, hold))
    part = min(amount_wei, max(accts[src].balance, 0))
    legs = legs_of(op_id, [(src, hold, part, "chain_unstake")])
    result = ChainMove(op_id, "chain_unstake", address, amount_wei, [[g.debit, g.credit, g.amount] for g in legs],
                       amount_wei - part)
    writes = [(_UNBOND_INSERT, {"id": op_id, "provider": provider, "amount": part, "at": now, "matures": matures})] \
        if part else []
    commit(c, accts, legs, [op_row(op_id, "chain_unstake", digest, result)], writes)
    return result


def _pending_unbonds(c: Ctx, provider: str) -> list[tuple[str, int]]:
    lock = " FOR UPDATE" if c.pg else ""
    rows = c.s.execute(text(f"SELECT id, amount_wei FROM ledger_unbonds WHERE provider = :p AND status = 'pending' "
                            f"ORDER BY matures_at_s DESC, id DESC{lock}"), {"p": provider}).all()
    return [(r[0], int(r[1])) for r in rows]


def stake_withdrawn(s: Session, op_id: str, address: str, provider: str | None, amount_wei: int) -> ChainMove:
    """A confirmed ``StakeWithdrawn(address, amount)``: the ETH left the Vault. Every pending unbond of the
    provider completes; ``amount_wei`` goes ``unbonding -> vault`` (then from the bond, the parked stake and,
    for any rest, ``debt:<address>``); unbonding the chain did not pay out (it was slashed on chain meanwhile)
    returns to the bond.

    Raises:
        InvalidAmount, InvalidArgument, IdempotencyConflict.
    """
    c = ctx(s)
    check_id("op_id", op_id), check_amount(c, "amount_wei", amount_wei)
    digest = op_digest("chain_unstaked", address, provider, amount_wei)
    if (done := _replayed(c, op_id, "chain_unstaked", digest)) is not None:
        return done
    open_chain_accounts(s, address)
    parked = parked_stake_account(address)
    open_account(s, parked, "other")
    pend = _pending_unbonds(c, provider) if provider else []
    srcs = [unbonding_account(provider), bond_account(provider)] if provider else []
    if provider:
        open_provider(s, provider)
    accts = lock_accounts(c, (*srcs, parked, VAULT_ACCOUNT, debt_account(address)))
    if (done := _replayed(c, op_id, "chain_unstaked", digest)) is not None:
        return done
    unbonding = sum(a for _, a in pend)
    moves, shortfall = _take(accts, [*srcs, parked], amount_wei, VAULT_ACCOUNT, "chain_unstaked",
                             debt_account(address))
    from_unbonding = sum(m[2] for m in moves if provider and m[0] == unbonding_account(provider))
    if provider and unbonding - from_unbonding > 0:
        moves.append((unbonding_account(provider), bond_account(provider), unbonding - from_unbonding, "unbond_back"))
    legs = legs_of(op_id, moves)
    result = ChainMove(op_id, "chain_unstaked", address, amount_wei, [[g.debit, g.credit, g.amount] for g in legs],
                       shortfall)
    writes = [(text("UPDATE ledger_unbonds SET status = 'completed', completed_by = :by WHERE id = :id"),
               [{"by": op_id, "id": i} for i, _ in pend])] if pend else []
    commit(c, accts, legs, [op_row(op_id, "chain_unstaked", digest, result)], writes)
    return result


def reach_unbonding(s: Session, op_id: str, provider: str, amount_wei: int) -> int:
    """Make up to ``amount_wei`` of ``provider``'s unbonding stake slashable again by the ledger's ``slash``
    (which takes collateral, then free bond): ``unbonding -> bond``, newest unbond first (the Vault keeps
    unbonding stake slashable until it matures). Returns the wei moved (0 when nothing was unbonding).

    Raises:
        InvalidAmount, IdempotencyConflict.
    """
    c = ctx(s)
    check_id("op_id", op_id), check_amount(c, "amount_wei", amount_wei)
    digest = op_digest("reach_unbonding", provider, amount_wei)
    if (done := _replayed(c, op_id, "reach_unbonding", digest)) is not None:
        return done.amount_wei
    pend = _pending_unbonds(c, provider)
    hold, bond = unbonding_account(provider), bond_account(provider)
    accts = lock_accounts(c, (hold, bond))
    writes, left = [], min(amount_wei, sum(a for _, a in pend))
    total = left
    for unbond_id, amount in pend:
        if left == 0:
            break
        part = min(left, amount)
        if part == amount:
            writes.append((text("UPDATE ledger_unbonds SET status = 'completed', completed_by = :by WHERE id = :id"),
                           {"by": op_id, "id": unbond_id}))
        else:
            writes.append((_UNBOND_SHRINK, {"a": amount - part, "id": unbond_id}))
        left -= part
    legs = legs_of(op_id, [(hold, bond, total, "reach_unbond")])
    commit(c, accts, legs, [op_row(op_id, "reach_unbonding", digest,
                                   ChainMove(op_id, "reach_unbonding", provider, total))], writes)
    return total


# ------------------------------------------------------------------------------------------------ claims


def slash_onchain(s: Session, op_id: str, address: str, provider: str | None, amount_wei: int, burned_wei: int,
                  ours: bool) -> ChainMove:
    """A confirmed ``Slashed(address, ref, amount, burned, ...)``.

    ``ours`` (the ref is a ledger slash the exchange sent, :mod:`market.settlement.epochs`): the ledger already
    moved the stake when it finalized the slash; only the burned wei left the Vault: ``burn -> vault``.
    Otherwise (a permissionless ``slashChallenged``): ``amount`` is taken from the provider's stake (bond,
    unbonding, parked stake; the rest from ``debt:<address>``), ``burned`` goes to the vault and the rest to
    :data:`SLASH_POOL_ACCOUNT`.

    Raises:
        InvalidAmount, InvalidArgument, IdempotencyConflict.
    """
    c = ctx(s)
    check_id("op_id", op_id), check_amount(c, "amount_wei", amount_wei)
    digest = op_digest("chain_slash", address, provider, amount_wei, burned_wei, ours)
    if (done := _replayed(c, op_id, "chain_slash", digest)) is not None:
        return done
    open_chain_accounts(s, address)
    parked = parked_stake_account(address)
    open_account(s, parked, "other")
    if ours:
        return _run(c, op_id, "chain_slash", address, amount_wei, (BURN_ACCOUNT, VAULT_ACCOUNT, debt_account(address)),
                    digest, lambda a: _take(a, [BURN_ACCOUNT], burned_wei, VAULT_ACCOUNT, "chain_burn",
                                            debt_account(address)))
    srcs = [bond_account(provider), unbonding_account(provider)] if provider else []
    if provider:
        open_provider(s, provider)

    def build(a: dict[str, Acct]):
        m1, short1 = _take(a, [*srcs, parked], burned_wei, VAULT_ACCOUNT, "chain_burn", debt_account(address))
        taken = {}
        for d, _, amt, _ in m1:
            taken[d] = taken.get(d, 0) + amt
        view = {k: Acct(v.balance - taken.get(k, 0), v.allow_negative) for k, v in a.items()}
        m2, short2 = _take(view, [*srcs, parked], amount_wei - burned_wei, SLASH_POOL_ACCOUNT, "chain_slash",
                           debt_account(address))
        return m1 + m2, short1 + short2

    return _run(c, op_id, "chain_slash", address, amount_wei,
                (*srcs, parked, VAULT_ACCOUNT, SLASH_POOL_ACCOUNT, debt_account(address)), digest, build)


# ------------------------------------------------------------------------------------------------ reorgs
