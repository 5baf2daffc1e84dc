"""The one challenge -> slash hook, as the exchange registers it (what `raymarket watch` and the runner run):
a bad-proof challenge of a paid job slashes its provider exactly once, however often the hooks are registered
or the event delivered; a reorged-away challenge cancels that slash; other reasons slash nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from market import exchange as ex
from market import ledger
from market.core import ids
from market.db.base import make_engine
from market.db.migrate import upgrade
from market.settlement.hooks import (
    cancel_slash_on_challenge_reverted,
    register_challenge_slashing,
    slash_provider_on_challenge,
)
from market.settlement.watcher import WatcherHooks
from tests.money.funding import standalone_bond, standalone_deposit

NOW = 1_800_000_000.0
BOND = 10**18
COLLATERAL = 10**16
ADDRESS = "0x" + "ab" * 20


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


def _paid_job(engine) -> int:
    """p1 ran and was paid for j1 (its collateral unlocked at payment); returns the cleared price."""
    with Session(engine) as s, s.begin():
        ex.register_provider(s, ex.ProviderOffer(name="p1", address=ADDRESS, cpus=2, memory_bytes=8 * ex.GIB,
                                                 price_per_cpu_s_wei=20 * 10**9), now_s=NOW)
        # a standalone ledger (no Vault): the hook's own ledger slash is under test (a chain-backed ledger leaves
        # a BadProof fault to Vault.slashChallenged: tests/money/test_one_slash.py)
        standalone_bond(s, "p1", BOND, "bond-p1")
        ledger.open_client(s, "alice")
        standalone_deposit(s, ledger.client_account("alice"), 10**17, "dep-1")
        ex.submit_job(s, ex.JobSpec(job_id="j1", client="alice", kind="inference", input_hash="0x" + "ab" * 32,
                                    params={}, max_price_wei=10**15, duration_estimate_s=10,
                                    collateral_wei=COLLATERAL), now_s=NOW)
        (a,), _ = ex.run_round(s, "r-1", now_s=NOW)
        ex.mark_started(s, "j1", now_s=NOW)
        ex.complete_job(s, "j1", result_path="/x", result_hash="0x" + "cd" * 32, attestation={}, fee_bps=100,
                        now_s=NOW)
        assert ledger.balance(s, ledger.bond_account("p1")) == BOND
    return a.price_wei


def _deliver(engine, hooks: list, reason: str, times: int = 2) -> None:
    """What the watcher does for one event: call every registered hook in one transaction (``times`` replays)."""
    for _ in range(times):
        with Session(engine) as s, s.begin():
            for hook in hooks:
                hook(s, "j1", ADDRESS.upper().replace("0X", "0x"), reason)


def _slash_rows(engine) -> list[tuple[str, str]]:
    with Session(engine) as s:
        return [tuple(r) for r in s.execute(text("SELECT id, status FROM ledger_slashes")).all()]


def test_registered_hook_slashes_a_bad_proof_exactly_once(engine):
    price = _paid_job(engine)
    hooks = ex.register_settlement_hooks(WatcherHooks())
    ex.register_settlement_hooks(hooks)  # registering again (runner + `--hooks`) adds no second slasher
    register_challenge_slashing(hooks)
    assert hooks.on_leaf_challenged.count(slash_provider_on_challenge) == 1
    assert hooks.on_challenge_reverted == [cancel_slash_on_challenge_reverted]

    _deliver(engine, hooks.on_leaf_challenged, "bad_proof")
    amount = max(COLLATERAL, price)
    assert _slash_rows(engine) == [(ids.challenge_slash_id("j1"), "pending")]
    with Session(engine) as s:
        sl = ledger.get_slash(s, ids.challenge_slash_id("j1"))
        assert (sl.provider, sl.job_id, sl.amount_wei, sl.client) == ("p1", "j1", amount, "alice")
        assert ledger.balance(s, ledger.bond_account("p1")) == BOND - amount
        assert ledger.balance(s, ledger.slashing_account("p1")) == amount
        assert ledger.check_invariants(s) == []
        # the job's history records the challenge (the exchange's own, non-money hook)
        assert "challenged" in [e.event for e in ex.job_history(s, "j1")]

    # the challenge is reorged away (event undone, possibly twice): the slash is cancelled once
    _deliver(engine, hooks.on_challenge_reverted, "bad_proof")
    assert _slash_rows(engine) == [(ids.challenge_slash_id("j1"), "cancelled")]
    with Session(engine) as s:
        assert ledger.balance(s, ledger.bond_account("p1")) == BOND
        assert ledger.check_invariants(s) == []


@pytest.mark.parametrize("reason", ["bad_signature", "duplicate"])
def test_challenges_that_are_not_the_providers_fault_slash_nothing(engine, reason):
    _paid_job(engine)
    hooks = ex.register_settlement_hooks(WatcherHooks())
    _deliver(engine, hooks.on_leaf_challenged, reason)
    assert _slash_rows(engine) == []


def test_unknown_signer_is_not_slashed(engine):
    _paid_job(engine)
    with Session(engine) as s, s.begin():
        assert slash_provider_on_challenge(s, "j1", "0x" + "cd" * 20, "bad_proof", now_s=NOW) is None
    assert _slash_rows(engine) == []
