"""Wei keeps the full 256-bit range on SQLite (exact decimal text) and Postgres (NUMERIC(78, 0)), identically.

Deposits, transfers, escrow, payment, stake, collateral, unbonding and slashes of amounts near 2**255, totals
above 2**63 and 2**128, a flagged debt near -2**255; balances exact, invariants and journal replay hold, and
SQLite and Postgres end in the same state. Out-of-range and float amounts are refused with clear errors.
Regression (issue 12): many deposits totalling more than 2**63 succeed on SQLite (the "third demo" failure).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from market import ledger as L
from market.core.slashing import DEFAULT_PROTOCOL_FEE_BPS, SLASH_CANCEL_WINDOW_S, protocol_fee_wei
from market.db.base import MAX_WEI, wei_sum
from market.db.models import JobRecord
from market.ledger import chain
from market.ledger.errors import InvalidAmount, InvalidArgument
from market.ledger.models import Account, Transfer

BIG = 2**255 - 12_345
ALICE, BOB, P1, P2 = (L.client_account("alice"), L.client_account("bob"), L.provider_account("p1"),
                      L.provider_account("p2"))
WEI_TABLES = {"ledger_accounts": ("balance_wei",), "ledger_transfers": ("amount_wei",),
              "ledger_pendings": ("amount_wei", "remaining_wei"), "ledger_unbonds": ("amount_wei",),
              "ledger_slashes": ("amount_wei", "from_collateral_wei", "from_bond_wei", "burn_wei", "rescuer_wei",
                                 "client_wei")}


def _scenario(s: Session) -> None:
    """Every kind of ledger movement with amounts near 2**255 (one transaction)."""
    for c in ("alice", "bob"):
        L.open_client(s, c)
    for p in ("p1", "p2"):
        L.open_provider(s, p)
    L.deposit(s, "dep-alice", ALICE, BIG)
    L.deposit(s, "dep-bob", BOB, 2**200 + 1)
    L.deposit(s, "dep-p1", P1, 2**254 + 5)
    L.transfer(s, "a-to-b", ALICE, BOB, 2**254 + 3)
    L.escrow_job(s, "esc-1", "alice", "job-1", 2**253)
    L.release_payment(s, "pay-1", "job-1", "p2", 2**252 + 7)
    L.bond(s, "bond-p1", "p1", 2**254 + 1)
    L.lock_collateral(s, "lock-1", "p1", "job-2", 2**253 + 11)
    L.slash(s, "sl-1", "p1", "job-2", "wrong_result", now_s=0.0, client="alice")
    L.finalize_slash(s, "fin-1", "sl-1", now_s=SLASH_CANCEL_WINDOW_S + 1)
    L.request_unbond(s, "unb-1", "p1", 2**252 + 13, now_s=0.0)
    L.slash(s, "sl-2", "p1", "job-3", "missed_deadline", now_s=1.0, rescuer="p2", amount_wei=2**252 + 17)
    L.post_batch(s, [L.TransferSpec(f"many-{i}", L.WORLD_ACCOUNT, BOB, 2**128 + i, "deposit") for i in range(20)])


def _state(s: Session) -> dict:
    """Everything a scenario leaves: balances, the journal, open records (compared across backends)."""
    return {"balances": L.balances(s),
            "journal": [tuple(r) for r in s.execute(select(Transfer.op_id, Transfer.leg, Transfer.debit_account_id,
                                                           Transfer.credit_account_id, Transfer.amount_wei)
                                                    .order_by(Transfer.seq))],
            "pendings": [L.pending_for_job(s, j, k) for j, k in (("job-1", "escrow"), ("job-2", "collateral"))],
            "unbonds": L.unbonds(s, "p1"), "slashes": [L.get_slash(s, "sl-1"), L.get_slash(s, "sl-2")]}


def test_amounts_near_2_255_are_exact(tx, engine):
    with tx() as s:
        _scenario(s)
    with tx() as s:
        b = L.balances(s)
        price = 2**252 + 7
        fee = protocol_fee_wei(price, DEFAULT_PROTOCOL_FEE_BPS)
        assert b[BOB] == 2**200 + 1 + 2**254 + 3 + sum(2**128 + i for i in range(20))
        assert b[P2] == price - fee  # sl-2's rescuer share is paid only when it is final
        assert b[L.slashing_account("p1")] == L.get_slash(s, "sl-2").amount_wei == 2**252 + 17
        sl = L.get_slash(s, "sl-1")
        assert sl.amount_wei == 2**253 + 11 == sl.from_collateral_wei + sl.from_bond_wei
        assert sl.burn_wei + sl.rescuer_wei + sl.client_wei == sl.amount_wei
        assert b[ALICE] == BIG - (2**254 + 3) - price + sl.client_wei
        assert sum(b.values()) == 0 and b[L.WORLD_ACCOUNT] < -2**255
        assert all(type(v) is int for v in b.values())
        assert L.check_invariants(s) == []
        for account_id, balance in b.items():  # the journal replays to every balance
            assert sum(h.delta_wei for h in L.history(s, account_id)) == balance
        assert s.scalar(select(wei_sum(Account.balance_wei))) == 0
        assert s.scalar(select(wei_sum(Transfer.amount_wei))) > 2**256  # exact past the column range
        if engine.dialect.name == "sqlite":  # stored as canonical decimal text, never a float
            for table, cols in WEI_TABLES.items():
                for col in cols:
                    kinds = {r[0] for r in s.execute(text(f"SELECT DISTINCT typeof({col}) FROM {table}"))}
                    assert kinds <= {"text"}, (table, col, kinds)
            raw = s.execute(text("SELECT balance_wei FROM ledger_accounts WHERE id = :id"), {"id": ALICE}).scalar()
            assert raw == str(b[ALICE])


def test_sqlite_and_postgres_end_identical(pg_engine, sqlite_engine):
    states = []
    for engine in (pg_engine, sqlite_engine):
        with Session(engine) as s, s.begin():
            _scenario(s)
        with Session(engine) as s:
            states.append(_state(s))
            assert L.check_invariants(s) == []
    assert states[0] == states[1]


def test_the_full_uint256_range_and_no_further(tx):
    with tx() as s:
        L.open_client(s, "alice")
        L.deposit(s, "max", ALICE, MAX_WEI)
        assert L.balance(s, ALICE) == MAX_WEI and L.balance(s, L.WORLD_ACCOUNT) == -MAX_WEI
    with tx() as s:
        with pytest.raises(InvalidArgument, match="amount_wei"):
            L.deposit(s, "one-more", ALICE, 1)  # alice would exceed 2**256 - 1
        with pytest.raises(InvalidArgument, match=r"amount_wei.*2\*\*256 - 1"):
            L.transfer(s, "too-big", L.WORLD_ACCOUNT, ALICE, MAX_WEI + 1)
        with pytest.raises(InvalidAmount):
            L.deposit(s, "float", ALICE, 1.0)  # type: ignore[arg-type]
        assert L.check_invariants(s) == []


def _job(job_id: str, wei) -> JobRecord:
    return JobRecord(job_id=job_id, client="c", kind="proof", status="open", spec={}, input_hash="0x",
                     max_price_wei=wei, collateral_wei=0, deadline_s=1.0, created_at=1.0, updated_at=1.0)


def test_wei_columns_refuse_floats_and_out_of_range_naming_the_field(engine):
    with pytest.raises(StatementError, match=r"jobs\.max_price_wei: .* outside the wei range"), \
            Session(engine) as s, s.begin():
        s.add(_job("big", 2**256))
    with pytest.raises(StatementError, match=r"jobs\.max_price_wei: wei amounts must be int, got float"), \
            Session(engine) as s, s.begin():
        s.add(_job("float", 1.5))
    with pytest.raises(StatementError, match="got bool"), Session(engine) as s, s.begin():
        s.add(_job("bool", True))
    with Session(engine) as s, s.begin():
        s.add(_job("max", MAX_WEI))
        s.add(_job("big-255", BIG))
    with Session(engine) as s:
        assert {j.job_id: j.max_price_wei for j in s.scalars(select(JobRecord))} == {"max": MAX_WEI, "big-255": BIG}


def test_flagged_debt_near_minus_2_255(tx):
    """A reorged deposit that was already spent: the debt account goes far below zero, exactly."""
    addr = "0x" + "ab" * 20
    with tx() as s:
        chain.credit_deposit(s, "dep-1", addr, BIG)
        L.open_provider(s, "p1")
        L.transfer(s, "spend", L.client_account(addr), P1, BIG - 1)
        chain.reverse(s, "reorg-1", "dep-1", addr)
    with tx() as s:
        assert chain.debt_wei(s, addr) == BIG - 1
        assert L.balance(s, chain.debt_account(addr)) == -(BIG - 1)
        assert L.balance(s, P1) == BIG - 1
        assert L.check_invariants(s) == []


def test_regression_many_deposits_beyond_2_63_on_sqlite(sqlite_engine):
    """Issue 12: the world account floor capped all deposits at 2**63 wei in total on SQLite."""
    with Session(sqlite_engine) as s, s.begin():
        for i in range(3):
            L.open_client(s, f"demo{i}")
    for demo in range(3):  # three demos' worth of deposits in one data dir
        with Session(sqlite_engine) as s, s.begin():
            L.post_batch(s, [L.TransferSpec(f"d{demo}-{i}", L.WORLD_ACCOUNT, L.client_account(f"demo{i % 3}"),
                                            10**18, "deposit") for i in range(10)])
            L.deposit(s, f"single-{demo}", L.client_account("demo0"), 5 * 10**18)
    with Session(sqlite_engine) as s:
        assert L.balance(s, L.WORLD_ACCOUNT) == -(30 + 15) * 10**18 < -(2**63)
        assert L.balance(s, L.client_account("demo0")) == (3 * 4 + 15) * 10**18  # i % 3 == 0: 4 of 10
        assert L.check_invariants(s) == []
