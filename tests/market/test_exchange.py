"""Exchange steps on a real database (SQLite file and the session's Postgres): escrow, rounds,
payment, re-auction after a fault, failure after the last attempt, idempotent submission."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from market import exchange as ex
from market import ledger
from market.db.base import make_engine
from market.db.migrate import upgrade
from market.db.models import JobRecord
from market.ledger.errors import InsufficientFunds
from tests.money.funding import chain_deposit, chain_stake

GWEI = 10**9
NOW = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


def _provider(name: str, price_gwei: int) -> ex.ProviderOffer:
    return ex.ProviderOffer(name=name, address="0x" + f"{ord(name[-1]):040x}", cpus=2, memory_bytes=8 * ex.GIB,
                            price_per_cpu_s_wei=price_gwei * GWEI)


def _spec(job_id: str, max_price: int = 10**15, collateral: int = 10**16) -> ex.JobSpec:
    return ex.JobSpec(job_id=job_id, client="alice", kind="inference", input_hash="0x" + "ab" * 32,
                      params={"n_sentences": 3}, max_price_wei=max_price, duration_estimate_s=10,
                      collateral_wei=collateral)


def _setup(engine, providers=(("p1", 20), ("p2", 30))):
    with Session(engine) as s, s.begin():
        for name, price in providers:
            offer = _provider(name, price)
            ex.register_provider(s, offer, now_s=NOW)
            chain_stake(s, offer.address, name, 10**18, f"stake-{name}")  # a confirmed Vault stake
        chain_deposit(s, "alice", 10**17, "dep-1")  # a confirmed Vault deposit


def test_submit_escrows_and_round_assigns_cheapest(engine):
    _setup(engine)
    with Session(engine) as s, s.begin():
        ex.submit_job(s, _spec("j1"), now_s=NOW)
        assert ledger.balance(s, ledger.client_account("alice")) == 10**17 - 10**15
        assignments, unmatched = ex.run_round(s, "r-1", now_s=NOW)
    assert [(a.job_id, a.provider) for a in assignments] == [("j1", "p1")]
    assert unmatched == {}
    # pay-as-bid: 10 s x 1 CPU x 20 gwei
    assert assignments[0].price_wei == 10 * 20 * GWEI
    with Session(engine) as s, s.begin():
        assert ledger.balance(s, ledger.bond_account("p1")) == 10**18 - 10**16  # collateral locked


def test_complete_pays_price_minus_fee_and_refunds_rest(engine):
    _setup(engine)
    with Session(engine) as s, s.begin():
        ex.submit_job(s, _spec("j1"), now_s=NOW)
        (a,), _ = ex.run_round(s, "r-1", now_s=NOW)
        ex.mark_started(s, "j1", now_s=NOW)
        ex.complete_job(s, "j1", result_path="/x", result_hash="0x" + "cd" * 32, attestation={}, fee_bps=100,
                        now_s=NOW)
    with Session(engine) as s:
        fee = a.price_wei // 100
        assert ledger.balance(s, ledger.provider_account("p1")) == a.price_wei - fee
        assert ledger.balance(s, ledger.PROTOCOL_FEE_ACCOUNT) == fee
        assert ledger.balance(s, ledger.client_account("alice")) == 10**17 - a.price_wei
        assert ledger.balance(s, ledger.bond_account("p1")) == 10**18  # collateral unlocked
        assert ex.get_job(s, "j1").status == "paid"
        assert ledger.check_invariants(s) == []


def test_fault_reauctions_to_another_provider_and_slashes_wrong_result(engine):
    _setup(engine)
    with Session(engine) as s, s.begin():
        ex.submit_job(s, _spec("j1"), now_s=NOW)
        ex.run_round(s, "r-1", now_s=NOW)
        ex.mark_started(s, "j1", now_s=NOW)
        job = ex.fail_job(s, "j1", reason="bad proof", wrong_result=True, max_attempts=3, now_s=NOW)
        assert job.status == "open" and job.attempt == 2 and job.spec["excluded"] == ["p1"]
        (a,), _ = ex.run_round(s, "r-2", now_s=NOW)
    assert a.provider == "p2"  # never back to the provider that failed it
    with Session(engine) as s:
        # wrong result: the whole 1e16 collateral is queued for slashing (cancel window), not free bond
        assert ledger.balance(s, ledger.bond_account("p1")) == 10**18 - 10**16
        assert ledger.balance(s, ledger.slashing_account("p1")) == 10**16
        history = [e.event for e in ex.job_history(s, "j1")]
        assert history == ["submitted", "matched", "started", "fault", "matched"]
        assert ledger.check_invariants(s) == []


def test_last_attempt_fails_the_job_and_refunds_escrow(engine):
    _setup(engine, providers=(("p1", 20),))
    with Session(engine) as s, s.begin():
        ex.submit_job(s, _spec("j1"), now_s=NOW)
        ex.run_round(s, "r-1", now_s=NOW)
        job = ex.fail_job(s, "j1", reason="timeout", wrong_result=False, max_attempts=1, now_s=NOW)
        assert job.status == "failed"
    with Session(engine) as s:
        assert ledger.balance(s, ledger.client_account("alice")) == 10**17  # all refunded
        assert ledger.balance(s, ledger.bond_account("p1")) == 10**18     # infrastructure fault: no slash


def test_unmatched_job_is_explained(engine):
    _setup(engine)
    with Session(engine) as s, s.begin():
        ex.submit_job(s, _spec("cheap", max_price=10), now_s=NOW)  # 10 wei cannot pay any ask
        assignments, unmatched = ex.run_round(s, "r-1", now_s=NOW)
    assert assignments == []
    assert "expensive" in unmatched["cheap"] or "price" in unmatched["cheap"]


def test_submit_is_idempotent_and_rejects_reused_id(engine):
    _setup(engine)
    with Session(engine) as s, s.begin():
        ex.submit_job(s, _spec("j1"), now_s=NOW)
        ex.submit_job(s, _spec("j1"), now_s=NOW)  # retry: same job, escrowed once
        assert ledger.balance(s, ledger.client_account("alice")) == 10**17 - 10**15
    with pytest.raises(ex.InvalidJob) as info, Session(engine) as s, s.begin():
        ex.submit_job(s, _spec("j1", max_price=2 * 10**15), now_s=NOW)
    assert info.value.field == "job_id"


def test_submit_beyond_balance_changes_nothing(engine):
    _setup(engine)
    with pytest.raises(InsufficientFunds), Session(engine) as s, s.begin():
        ex.submit_job(s, _spec("big", max_price=10**18), now_s=NOW)
    with Session(engine) as s:
        assert s.get(JobRecord, "big") is None
        assert ledger.balance(s, ledger.client_account("alice")) == 10**17


def test_spec_validation_names_the_field():
    with pytest.raises(ex.InvalidJob) as info:
        _spec("x", max_price=0)
    assert info.value.field == "max_price_wei"
    with pytest.raises(ex.InvalidJob) as info:
        ex.JobSpec(job_id="x", client="c", kind="mining", input_hash="0x", params={}, max_price_wei=1)
    assert info.value.field == "kind"


def test_recorded_round_replays_to_the_same_hashes(engine):
    from market.core.matching import replay
    from market.db.models import RoundRecord

    _setup(engine, providers=(("p1", 20), ("p2", 30), ("p3", 25)))
    with Session(engine) as s, s.begin():
        for i, job_id in enumerate(("zz", "aa", "mm")):  # submitted out of id order
            ex.submit_job(s, _spec(job_id), now_s=NOW + i)
        ex.run_round(s, "r-1", now_s=NOW + 5)
    with Session(engine) as s:
        rec = s.get(RoundRecord, "r-1")
        result = replay(rec.inputs)
        assert (result.input_hash, result.output_hash) == (rec.input_hash, rec.output_hash)
        assert rec.n_matched == 3


def test_quote_names_the_blocking_constraint_and_recent_prices(engine):
    _setup(engine)
    with Session(engine) as s, s.begin():
        ex.submit_job(s, _spec("j1"), now_s=NOW)
        (a,), _ = ex.run_round(s, "r-1", now_s=NOW)
    with Session(engine) as s:
        ok = ex.quote_job(s, _spec("q"), now_s=NOW)
        assert ok["feasible"] and ok["p50_wei"] == str(a.price_wei) and ok["samples"] == 1
        gpu = ex.quote_job(s, ex.JobSpec(job_id="q", client="c", kind="inference", input_hash="0x", params={},
                                         max_price_wei=10**15, cpus=0, gpus=1, gpu_model="H100"), now_s=NOW)
        assert not gpu["feasible"] and "H100" in gpu["explanation"]
        cheap = ex.quote_job(s, _spec("q", max_price=10), now_s=NOW)
        assert not cheap["feasible"] and "expensive" in cheap["explanation"]
