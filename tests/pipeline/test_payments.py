"""The pay stage's ledger adapter on the real ledger (Postgres): idempotent pay, slash and refund."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from market import ledger
from market.db.base import make_engine
from market.db.migrate import upgrade
from market.pipeline.batching import ProofJob
from market.pipeline.payments import LedgerPayments, slash_transfer_id
from market.core.slashing import DEFAULT_PROTOCOL_FEE_BPS, protocol_fee_wei

pytestmark = pytest.mark.postgres

PRICE_WEI = 10**15
COLLATERAL_WEI = 4 * 10**14


def _job(job_id: str) -> ProofJob:
    return ProofJob(job_id, "c", "a" * 64, (1, 2), 0.0, 10.0, PRICE_WEI, "alice")


@pytest.fixture
def engine(pg_url):
    upgrade(pg_url)
    eng = make_engine(pg_url)
    with Session(eng) as s, s.begin():
        ledger.open_system_accounts(s)
        ledger.open_client(s, "alice")
        ledger.deposit(s, "dep:alice", ledger.client_account("alice"), 10**18)
        for p in ("p1", "p2"):
            ledger.open_provider(s, p)
            ledger.deposit(s, f"dep:{p}", ledger.provider_account(p), 10**18)
            ledger.bond(s, f"bond:{p}", p, 10**17)
        for j in ("a", "b", "c"):
            ledger.escrow_job(s, f"escrow:{j}", "alice", j, PRICE_WEI)
        ledger.lock_collateral(s, "lock:b:p2", "p2", "b", COLLATERAL_WEI)
    return eng


def test_pay_once_slash_once_refund_once(engine):
    pay = LedgerPayments(engine, slash_amount_wei=10**14, clock=lambda: 1_000.0)
    net = PRICE_WEI - protocol_fee_wei(PRICE_WEI, DEFAULT_PROTOCOL_FEE_BPS)
    with Session(engine) as s:
        before = ledger.balance(s, ledger.provider_account("p1"))
    assert pay.pay(_job("a"), "p1", "h", "batch") is True
    assert pay.pay(_job("a"), "p1", "h", "batch") is False  # a retry moves nothing
    assert pay.pay(_job("a"), "p2", "h", "batch2") is False  # another provider: never paid twice
    # a wrong result from p2 on job b: its collateral lock is slashed (wrong_result rule), once
    assert pay.slash(_job("b"), "p2", "batch", "wrong_result") is True
    assert pay.slash(_job("b"), "p2", "batch", "wrong_result") is False
    # p1 locked nothing for job c: the configured amount comes out of its free bond
    assert pay.slash(_job("c"), "p1", "batch", "wrong_result") is True
    assert pay.refund(_job("c"), "gave up") is True and pay.refund(_job("c"), "again") is False
    with Session(engine) as s:
        assert ledger.balance(s, ledger.provider_account("p1")) - before == net
        assert ledger.balance(s, ledger.provider_account("p2")) == 10**18 - 10**17
        sl = ledger.get_slash(s, slash_transfer_id("b", "p2"))
        assert (sl.reason, sl.amount_wei, sl.from_collateral_wei, sl.client) == (
            "wrong_result", COLLATERAL_WEI, COLLATERAL_WEI, "alice")
        assert ledger.get_slash(s, slash_transfer_id("c", "p1")).amount_wei == 10**14
        assert [p.status for p in ledger.pending_for_job(s, "c")] == ["voided"]
        assert ledger.check_invariants(s) == []
    with pytest.raises(ledger.LedgerError):  # never escrowed: a loud error, not a silent "already paid"
        pay.pay(_job("never-escrowed"), "p1", "h", "batch")
    assert pay.refund(_job("never-escrowed"), "x") is False
