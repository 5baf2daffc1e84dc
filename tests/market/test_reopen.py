"""Re-auction goes through one function (market.core.orders.reopen, called by exchange.fail_job): the next
round sees the job with its attempt + 1, the failed provider excluded and its budget lowered by what was
already spent; a job whose budget is spent is given up and its escrow refunded."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from market import exchange as ex
from market import ledger
from market.core.matching import RoundInputs
from market.db.base import make_engine
from market.db.migrate import upgrade
from market.db.models import RoundRecord
from tests.money.funding import chain_deposit, chain_stake

GWEI = 10**9
NOW = 1_800_000_000.0
MAX_PRICE = 10**15


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


def _matched(engine) -> None:
    with Session(engine) as s, s.begin():
        for name, price in (("p1", 20), ("p2", 30)):
            address = "0x" + f"{ord(name[-1]):040x}"
            ex.register_provider(s, ex.ProviderOffer(name=name, address=address, cpus=2, memory_bytes=8 * ex.GIB,
                                                     price_per_cpu_s_wei=price * GWEI), now_s=NOW)
            chain_stake(s, address, name, 10**18, f"stake-{name}")  # a confirmed Vault stake
        chain_deposit(s, "alice", 10**17, "dep-1")  # a confirmed Vault deposit
        ex.submit_job(s, ex.JobSpec(job_id="j1", client="alice", kind="inference", input_hash="0x" + "ab" * 32,
                                    params={}, max_price_wei=MAX_PRICE, duration_estimate_s=10), now_s=NOW)
        (a,), _ = ex.run_round(s, "r-1", now_s=NOW)
        assert a.provider == "p1"


def _round_order(s: Session, round_id: str):
    (order,) = RoundInputs.from_json(s.get(RoundRecord, round_id).inputs).jobs
    return order


def test_reopened_order_excludes_the_provider_and_lowers_the_budget_by_the_spend(engine):
    _matched(engine)
    spent = 4 * 10**14
    with Session(engine) as s, s.begin():
        job = ex.fail_job(s, "j1", reason="lease expired", wrong_result=False, max_attempts=3, now_s=NOW,
                          spent_wei=spent)
        assert (job.status, job.attempt) == ("open", 2)
        (a,), _ = ex.run_round(s, "r-2", now_s=NOW)
        assert a.provider == "p2" and a.price_wei <= MAX_PRICE - spent
        order = _round_order(s, "r-2")
        assert (order.max_price_wei, order.exclude_providers, order.attempt) == (MAX_PRICE - spent,
                                                                                 frozenset({"p1"}), 1)
    # a second fault lowers it again, from what is left
    with Session(engine) as s, s.begin():
        ex.fail_job(s, "j1", reason="given back", wrong_result=False, max_attempts=3, now_s=NOW, spent_wei=10**14)
        ex.run_round(s, "r-3", now_s=NOW)
        order = _round_order(s, "r-3")
        assert (order.max_price_wei, order.exclude_providers) == (MAX_PRICE - spent - 10**14, frozenset({"p1", "p2"}))


def test_no_spend_keeps_the_budget(engine):
    _matched(engine)
    with Session(engine) as s, s.begin():
        job = ex.fail_job(s, "j1", reason="lease expired", wrong_result=False, max_attempts=3, now_s=NOW)
        assert "budget_wei" not in job.spec
        ex.run_round(s, "r-2", now_s=NOW)
        assert _round_order(s, "r-2").max_price_wei == MAX_PRICE


def test_spent_budget_gives_the_job_up_and_refunds_the_escrow(engine):
    _matched(engine)
    with Session(engine) as s, s.begin():
        job = ex.fail_job(s, "j1", reason="lease expired", wrong_result=False, max_attempts=3, now_s=NOW,
                          spent_wei=MAX_PRICE)
        assert job.status == "failed"
        assert ledger.balance(s, ledger.client_account("alice")) == 10**17
        assert ledger.check_invariants(s) == []


def test_spent_must_be_a_non_negative_int(engine):
    _matched(engine)
    with Session(engine) as s, s.begin(), pytest.raises(ex.InvalidJob, match="spent_wei"):
        ex.fail_job(s, "j1", reason="x", wrong_result=False, max_attempts=3, now_s=NOW, spent_wei=-1)
