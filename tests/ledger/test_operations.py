"""Ledger operations on Postgres and SQLite: results, balances, idempotency and every error path.

Each error test commits the transaction after the error (instead of rolling back) and checks
that nothing changed: the operations validate before they write.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from market import ledger as L
from market.ledger.errors import (AccountKindConflict, IdempotencyConflict, InsufficientFunds, InvalidAmount,
                                  InvalidArgument, LedgerError, PendingAlreadyResolved, PendingExists,
                                  PendingNotFound, PriceExceedsEscrow, SlashAlreadyResolved, SlashExceedsBond,
                                  SlashNotFound, SlashWindowClosed, SlashWindowOpen, UnbondingNotMatured,
                                  UnknownAccount)
from market.core.slashing import SLASH_CANCEL_WINDOW_S, UNBONDING_PERIOD_S
from tests.ledger.conftest import funded

ALICE, P1, P2 = L.client_account("alice"), L.provider_account("p1"), L.provider_account("p2")


@pytest.fixture
def world(tx):
    """alice holds 10_000 wei; p1 has 5_000 of which 4_000 bonded; p2 has 1_000, all bonded."""
    with tx() as s:
        funded(s, clients={"alice": 10_000}, providers={"p1": 5_000, "p2": 1_000}, bonds={"p1": 4_000, "p2": 1_000})
    return tx


TABLES = ("ledger_accounts", "ledger_operations", "ledger_transfers", "ledger_pendings", "ledger_unbonds",
          "ledger_slashes")


def snapshot(tx) -> tuple:
    """Balances, row counts of every ledger table, pending states, invariant violations."""
    with tx() as s:
        counts = tuple(s.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES)
        states = s.execute(text("SELECT id, status, remaining_wei FROM ledger_pendings ORDER BY id")).all()
        return L.balances(s), counts, [tuple(r) for r in states], L.check_invariants(s)


def assert_unchanged(tx, op, exc_type: type[LedgerError]) -> LedgerError:
    """Run ``op(s)`` expecting ``exc_type``; commit anyway; assert that nothing changed."""
    before = snapshot(tx)
    with tx() as s:
        with pytest.raises(exc_type) as info:
            op(s)
    after = snapshot(tx)
    assert after == before
    assert after[3] == []
    assert str(info.value)  # a message naming the field and the fix
    return info.value


def test_deposit_withdraw_and_idempotent_retry(world):
    with world() as s:
        r1 = L.deposit(s, "dep-1", ALICE, 500)
        assert L.deposit(s, "dep-1", ALICE, 500) == r1  # retry: same result, applied once
        L.withdraw(s, "wd-1", ALICE, 200)
        assert L.balance(s, ALICE) == 10_300
        assert L.balance(s, L.WORLD_ACCOUNT) == -(10_300 + 6_000)
        assert L.check_invariants(s) == []


def test_escrow_release_splits_price_fee_and_refund(world):
    with world() as s:
        pending = L.escrow_job(s, "esc-1", "alice", "job-1", 1_000)
        assert (pending.status, pending.remaining_wei, L.balance(s, L.escrow_account("job-1"))) == ("pending", 1_000, 1_000)
        st = L.release_payment(s, "rel-1", "job-1", "p1", 700, fee_bps=250)
        assert (st.price_wei, st.fee_wei, st.provider_wei, st.refund_wei) == (700, 17, 683, 300)
        assert L.balance(s, P1) == 1_000 + 683
        assert L.balance(s, L.PROTOCOL_FEE_ACCOUNT) == 17
        assert L.balance(s, ALICE) == 10_000 - 700
        assert L.balance(s, L.escrow_account("job-1")) == 0
        assert L.release_payment(s, "rel-1", "job-1", "p1", 700, fee_bps=250) == st
        assert [p.status for p in L.pending_for_job(s, "job-1")] == ["posted"]
        assert L.check_invariants(s) == []


def test_void_and_expire_return_the_budget(world):
    with world() as s:
        L.escrow_job(s, "esc-a", "alice", "job-a", 400)
        L.escrow_job(s, "esc-b", "alice", "job-b", 300, expires_at_s=100.0)
        assert L.void_escrow(s, "void-a", "job-a").amount_wei == 400
        assert L.expire_pending(s, 99.0) == []
        expired = L.expire_pending(s, 100.0)
        assert [(e.pending_id, e.amount_wei, e.status) for e in expired] == [("esc-b", 300, "expired")]
        assert L.expire_pending(s, 200.0) == []
        assert L.balance(s, ALICE) == 10_000
        assert L.check_invariants(s) == []


def test_bond_unbond_lifecycle(world):
    with world() as s:
        req = L.request_unbond(s, "ub-1", "p1", 1_500, now_s=1_000.0)
        assert req.matures_at_s == 1_000.0 + UNBONDING_PERIOD_S
        assert L.balance(s, L.bond_account("p1")) == 2_500
        assert L.balance(s, L.unbonding_account("p1")) == 1_500
        done = L.complete_unbond(s, "cu-1", "p1", now_s=req.matures_at_s)
        assert (done.amount_wei, done.unbond_ids) == (1_500, ["ub-1"])
        assert L.complete_unbond(s, "cu-1", "p1", now_s=req.matures_at_s + 5) == done
        assert L.balance(s, P1) == 1_000 + 1_500
        assert L.check_invariants(s) == []


def test_missed_deadline_slash_goes_half_burn_half_rescuer(world):
    with world() as s:
        L.lock_collateral(s, "lock-1", "p1", "job-1", 2_000)
        sl = L.slash(s, "sl-1", "p1", "job-1", "missed_deadline", now_s=10.0, rescuer="p2")
        assert (sl.amount_wei, sl.burn_wei, sl.rescuer_wei, sl.from_collateral_wei) == (1_000, 500, 500, 1_000)
        assert L.balance(s, L.slashing_account("p1")) == 1_000
        assert L.check_invariants(s) == []
        final = L.finalize_slash(s, "fin-1", "sl-1", now_s=10.0 + SLASH_CANCEL_WINDOW_S)
        assert final.status == "final"
        assert L.balance(s, L.BURN_ACCOUNT) == 500
        assert L.balance(s, P2) == 500
        L.unlock_collateral(s, "unl-1", "p1", "job-1")
        assert L.balance(s, L.bond_account("p1")) == 3_000
        assert L.check_invariants(s) == []


def test_wrong_result_slash_compensates_client_and_cancel_restores(world):
    with world() as s:
        L.lock_collateral(s, "lock-2", "p1", "job-2", 1_000)
        sl = L.slash(s, "sl-2", "p1", "job-2", "wrong_result", now_s=0.0, client="alice")
        assert (sl.amount_wei, sl.client_wei, sl.burn_wei) == (1_000, 500, 500)
        assert L.pending_for_job(s, "job-2", "collateral")[0].status == "posted"  # the whole lock was taken
        cancelled = L.cancel_slash(s, "cx-2", "sl-2", now_s=1.0)
        assert cancelled.status == "cancelled"
        assert L.balance(s, L.bond_account("p1")) == 4_000
        assert L.balance(s, ALICE) == 10_000
        assert L.check_invariants(s) == []


def test_post_batch_applies_in_order_and_replays(world):
    specs = [L.TransferSpec(f"b-{i}", ALICE, P2, 10 + i) for i in range(50)]
    with world() as s:
        assert L.post_batch(s, specs) == L.BatchResult(applied=50, replayed=0)
        assert L.post_batch(s, specs + [L.TransferSpec("b-x", P2, ALICE, 5)]) == L.BatchResult(applied=1, replayed=50)
        assert L.balance(s, P2) == sum(10 + i for i in range(50)) - 5
        # in order: a later transfer may spend what an earlier one brought
        chain = [L.TransferSpec("c-1", ALICE, L.client_account("bob"), 100), L.TransferSpec("c-2", L.client_account("bob"), P1, 100)]
        L.open_client(s, "bob")
        assert L.post_batch(s, chain).applied == 2
        assert L.check_invariants(s) == []


def test_history_lists_journal_rows_of_an_account(world):
    with world() as s:
        L.escrow_job(s, "esc-h", "alice", "job-h", 100)
        L.release_payment(s, "rel-h", "job-h", "p1", 100, fee_bps=0)
        rows = L.history(s, P1)
        assert [(r.op_id, r.kind, r.delta_wei) for r in rows] == [("fund:p1", "deposit", 5_000), ("bond:p1", "bond", -4_000),
                                                                  ("rel-h", "payment", 100)]
        assert [r.op_id for r in L.history(s, P1, limit=1)] == ["rel-h"]


# ---------------------------------------------------------------- error paths: nothing changes


def test_invalid_amount(world):
    for amount in (0, -1, 1.5, True, "10", None):
        err = assert_unchanged(world, lambda s: L.deposit(s, "bad", ALICE, amount), InvalidAmount)
        assert (err.field, err.value) == ("amount_wei", amount)
    assert_unchanged(world, lambda s: L.escrow_job(s, "e", "alice", "j", 0), InvalidAmount)
    assert_unchanged(world, lambda s: L.release_payment(s, "r", "j", "p1", -5), InvalidAmount)
    assert_unchanged(world, lambda s: L.post_batch(s, [L.TransferSpec("t", ALICE, P1, 0)]), InvalidAmount)


def test_insufficient_funds(world):
    err = assert_unchanged(world, lambda s: L.withdraw(s, "wd-big", ALICE, 10_001), InsufficientFunds)
    assert (err.account_id, err.amount_wei, err.available_wei) == (ALICE, 10_001, 10_000)
    assert_unchanged(world, lambda s: L.escrow_job(s, "esc-big", "alice", "job-big", 10_001), InsufficientFunds)
    assert_unchanged(world, lambda s: L.lock_collateral(s, "lk-big", "p1", "job-big", 4_001), InsufficientFunds)
    assert_unchanged(world, lambda s: L.request_unbond(s, "ub-big", "p1", 4_001, 0.0), InsufficientFunds)
    batch = [L.TransferSpec("ok-1", ALICE, P1, 9_000), L.TransferSpec("too-much", ALICE, P1, 1_001)]
    err = assert_unchanged(world, lambda s: L.post_batch(s, batch), InsufficientFunds)
    assert err.transfer_id == "too-much"


def test_unknown_account(world):
    err = assert_unchanged(world, lambda s: L.deposit(s, "d-x", L.client_account("nobody"), 1), UnknownAccount)
    assert err.account_id == "client:nobody"
    assert_unchanged(world, lambda s: L.escrow_job(s, "e-x", "nobody", "job-x", 1), UnknownAccount)
    with world() as s:
        L.escrow_job(s, "e-y", "alice", "job-y", 10)
    assert_unchanged(world, lambda s: L.release_payment(s, "r-y", "job-y", "ghost", 5, fee_bps=0), UnknownAccount)
    assert_unchanged(world, lambda s: L.post_batch(s, [L.TransferSpec("t-x", ALICE, "client:ghost", 1)]), UnknownAccount)
    assert_unchanged(world, lambda s: L.balance(s, "client:ghost"), UnknownAccount)


def test_resolving_a_resolved_pending(world):
    with world() as s:
        L.escrow_job(s, "e-1", "alice", "job-1", 100)
        L.release_payment(s, "r-1", "job-1", "p1", 60, fee_bps=0)
    err = assert_unchanged(world, lambda s: L.release_payment(s, "r-2", "job-1", "p1", 60, fee_bps=0), PendingAlreadyResolved)
    assert (err.pending_id, err.status) == ("e-1", "posted")
    assert_unchanged(world, lambda s: L.void_escrow(s, "v-1", "job-1"), PendingAlreadyResolved)
    assert_unchanged(world, lambda s: L.void_escrow(s, "v-2", "job-never"), PendingNotFound)
    with world() as s:
        L.lock_collateral(s, "l-1", "p1", "job-1", 100)
        L.unlock_collateral(s, "u-1", "p1", "job-1")
    assert_unchanged(world, lambda s: L.unlock_collateral(s, "u-2", "p1", "job-1"), PendingAlreadyResolved)


def test_pending_exists_and_price_exceeds_escrow(world):
    with world() as s:
        L.escrow_job(s, "e-1", "alice", "job-1", 100)
    assert_unchanged(world, lambda s: L.escrow_job(s, "e-2", "alice", "job-1", 100), PendingExists)
    err = assert_unchanged(world, lambda s: L.release_payment(s, "r-1", "job-1", "p1", 101, fee_bps=0), PriceExceedsEscrow)
    assert (err.price_wei, err.escrowed_wei) == (101, 100)
    assert_unchanged(world, lambda s: L.release_payment(s, "r-1", "job-1", "p1", 10, fee_bps=10_001), InvalidArgument)


def test_unbond_before_the_period(world):
    with world() as s:
        req = L.request_unbond(s, "ub-1", "p1", 100, now_s=0.0)
    err = assert_unchanged(world, lambda s: L.complete_unbond(s, "cu-1", "p1", now_s=req.matures_at_s - 1), UnbondingNotMatured)
    assert err.matures_at_s == req.matures_at_s
    err = assert_unchanged(world, lambda s: L.complete_unbond(s, "cu-2", "p2", now_s=0.0), UnbondingNotMatured)
    assert err.matures_at_s is None


def test_slash_above_the_bond_and_slash_lifecycle_errors(world):
    with world() as s:
        L.lock_collateral(s, "l-1", "p1", "job-1", 1_000)
    err = assert_unchanged(world, lambda s: L.slash(s, "s-1", "p1", "job-1", "wrong_result", 0.0, amount_wei=4_001),
                           SlashExceedsBond)
    assert (err.amount_wei, err.slashable_wei) == (4_001, 4_000)
    assert_unchanged(world, lambda s: L.slash(s, "s-2", "p1", "job-none", "wrong_result", 0.0), PendingNotFound)
    assert_unchanged(world, lambda s: L.slash(s, "s-3", "p1", "job-1", "lazy", 0.0), InvalidArgument)
    assert_unchanged(world, lambda s: L.slash(s, "s-4", "p1", "job-1", "missed_deadline", 0.0, rescuer="ghost"),
                     UnknownAccount)
    with world() as s:  # above the lock but within lock + free bond: the rest comes from the free bond
        sl = L.slash(s, "s-5", "p1", "job-1", "wrong_result", 0.0, amount_wei=1_500)
        assert (sl.from_collateral_wei, sl.from_bond_wei) == (1_000, 500)
    assert_unchanged(world, lambda s: L.finalize_slash(s, "f-1", "s-5", 1.0), SlashWindowOpen)
    assert_unchanged(world, lambda s: L.cancel_slash(s, "c-1", "s-5", SLASH_CANCEL_WINDOW_S), SlashWindowClosed)
    assert_unchanged(world, lambda s: L.cancel_slash(s, "c-2", "s-none", 1.0), SlashNotFound)
    with world() as s:
        L.finalize_slash(s, "f-2", "s-5", SLASH_CANCEL_WINDOW_S)
    assert_unchanged(world, lambda s: L.finalize_slash(s, "f-3", "s-5", SLASH_CANCEL_WINDOW_S), SlashAlreadyResolved)


def test_idempotency_conflict(world):
    with world() as s:
        L.deposit(s, "dep-1", ALICE, 500)
        L.escrow_job(s, "esc-1", "alice", "job-1", 100)
    err = assert_unchanged(world, lambda s: L.deposit(s, "dep-1", ALICE, 501), IdempotencyConflict)
    assert (err.transfer_id, err.stored_kind) == ("dep-1", "deposit")
    assert_unchanged(world, lambda s: L.withdraw(s, "dep-1", ALICE, 500), IdempotencyConflict)
    assert_unchanged(world, lambda s: L.escrow_job(s, "esc-1", "alice", "job-1", 101), IdempotencyConflict)
    assert_unchanged(world, lambda s: L.post_batch(s, [L.TransferSpec("dep-1", L.WORLD_ACCOUNT, ALICE, 7)]),
                     IdempotencyConflict)
    same_id_twice = [L.TransferSpec("x", ALICE, P1, 1), L.TransferSpec("x", ALICE, P1, 2)]
    assert_unchanged(world, lambda s: L.post_batch(s, same_id_twice), IdempotencyConflict)


def test_open_account_is_idempotent_and_checks_kind(world):
    with world() as s:
        assert L.open_client(s, "alice").balance_wei == 10_000
    assert_unchanged(world, lambda s: L.open_account(s, ALICE, "provider"), AccountKindConflict)
    assert_unchanged(world, lambda s: L.open_account(s, "x", "martian"), InvalidArgument)
    assert_unchanged(world, lambda s: L.transfer(s, "self", ALICE, ALICE, 1), InvalidArgument)


def test_amounts_beyond_the_database_range(world, engine):
    """The same uint256 range on both backends (SQLite stores exact decimal text: tests/ledger/test_wei_range.py)."""
    with world() as s:
        L.deposit(s, "huge", ALICE, 10**40 + 1)  # exact beyond 64 bits on SQLite and Postgres
        assert L.balance(s, ALICE) == 10**40 + 10_001
    assert_unchanged(world, lambda s: L.deposit(s, "too-huge", ALICE, 2**256), InvalidArgument)
    assert_unchanged(world, lambda s: L.deposit(s, "too-huge-2", ALICE, 10**78), InvalidArgument)
