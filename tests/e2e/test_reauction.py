"""Re-auction on a real multi-node Ray cluster: a provider whose worker dies mid-job, or who signs
a wrong attestation, loses the job to another provider; the job completes once and is paid once."""

from __future__ import annotations

import ray
import pytest
from sqlalchemy.orm import Session

from market import exchange as ex
from market import ledger
from market.settings import Settings
from market.db.models import ProviderRecord
from market.exchange.runner import MarketRunner
from providers.keys import new_key

pytestmark = [pytest.mark.ray, pytest.mark.slow]
ROUNDS = 6


@pytest.fixture
def runner(ray_cluster, tmp_path):
    r = MarketRunner(Settings(data_dir=tmp_path / "data", job_timeout_s=120, max_attempts=3))
    r.start_database()
    r.start_ray()
    r.start_chain()
    for name, price in (("p1", 10), ("p2", 20), ("p3", 30)):
        r.add_provider(name, new_key(), price_per_cpu_s_wei=price * 10**9, bond_wei=10**18, speed=1.0)
    r.fund_client("bob", 10**18)
    yield r
    r.shutdown()


def test_worker_death_reauctions_to_next_provider(runner):
    job_id = runner.submit_proof("bob", 42, rounds=ROUNDS, max_price_wei=10**15, collateral_wei=10**16)
    ray.kill(runner.providers["p1"].actor)  # the cheapest provider's worker dies before it answers
    reports = runner.run_until_done(max_rounds=4)
    assert reports[0].matched == {job_id: "p1"} and job_id in reports[0].failed
    assert reports[1].matched == {job_id: "p2"} and reports[1].paid == [job_id]
    with Session(runner.engine) as s:
        job = ex.get_job(s, job_id)
        assert job.status == "settled" and job.provider == "p2" and job.attempt == 2
        # paid exactly once, to p2; p1's collateral came back (a crash is not slashed)
        assert ledger.balance(s, ledger.provider_account("p1")) == 0
        assert ledger.balance(s, ledger.provider_account("p2")) == job.cleared_price_wei * 99 // 100
        assert ledger.balance(s, ledger.bond_account("p1")) == 10**18
        assert ledger.check_invariants(s) == []


def test_wrong_attestation_is_slashed_and_reauctioned(runner):
    # p1's registered address is not its worker's key: its signatures cannot verify
    with Session(runner.engine) as s, s.begin():
        s.get(ProviderRecord, "p1").address = "0x" + "11" * 20
    runner.providers["p1"].address = "0x" + "11" * 20
    job_id = runner.submit_proof("bob", 7, rounds=ROUNDS, max_price_wei=10**15, collateral_wei=10**16)
    reports = runner.run_until_done(max_rounds=4)
    assert "signed by" in reports[0].failed[job_id]
    with Session(runner.engine) as s:
        job = ex.get_job(s, job_id)
        assert job.status == "settled" and job.provider == "p2"
        assert ledger.balance(s, ledger.slashing_account("p1")) == 10**16  # queued slash (cancel window)
        assert s.get(ProviderRecord, "p1").reputation < 1.0
        assert ledger.check_invariants(s) == []
