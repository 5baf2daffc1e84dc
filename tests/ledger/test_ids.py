"""The idempotency ids (market.core.ids) keep their formats: ids already in a ledger must keep naming
the same operations, and the exchange and the pipeline must agree on the one id per operation."""

from __future__ import annotations

from market.core import ids


def test_formats_are_stable() -> None:
    assert ids.escrow_id("j1") == "escrow:j1"
    assert ids.payment_id("j1") == "pay:j1"
    assert ids.refund_id("j1", 2) == "refund:j1:2"
    assert ids.void_id("j1") == "void:j1"
    assert ids.cancel_id("j1") == "cancel:j1"
    assert ids.operator_id("unbond", "p1", "n") == "unbond:p1:n"
    assert ids.collateral_lock_id("j1", 1) == "lock:j1:1"
    assert ids.collateral_unlock_id("j1", 1) == "unlock:j1:1"
    assert ids.collateral_unlock_id("j1", "p1") == "unlock:j1:p1"
    assert ids.slash_id("j1", 3) == "slash:j1:3"
    assert ids.slash_id("j1", "p1") == "slash:j1:p1"
    assert ids.challenge_slash_id("j1") == "challenge:j1"
    assert ids.challenge_unslash_id("j1") == "challenge-unslash:j1"
    assert ids.bond_deposit_id("p1", "0xab", 10) == "bond-deposit:p1:0xab:10"
    assert ids.bond_id("p1", "0xab", 10) == "bond:p1:0xab:10"
    assert ids.deposit_id("bob", 5, "n") == "deposit:bob:5:n"
    assert ids.expiry_id("escrow:j1") == "expire:escrow:j1"


def test_the_pipeline_pays_and_slashes_under_the_same_ids() -> None:
    from market.pipeline.payments import pay_transfer_id, slash_transfer_id

    assert pay_transfer_id("j1") == ids.payment_id("j1")
    assert slash_transfer_id("j1", "p1") == ids.slash_id("j1", "p1")
