"""Issue 14 finding 5: unbonding stake stays slashable until it matures; a job's default collateral is the
policy's function of price and verification; a provider whose free bond is below a job's collateral is
never matched (the real service)."""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from sqlalchemy.orm import Session

from market import ledger as L
from market.client import Client, ProviderClient
from market.core.policy import DEFAULT_COLLATERAL_BPS, UNBONDING_PERIOD_S, default_collateral_wei
from market.db import migrate
from market.db.base import make_engine
from market.db.models import JobRecord
from tests.service.conftest import start_service

T0 = 1_000.0


@pytest.fixture
def tx(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    migrate.upgrade(url, "0001_ledger")
    engine = make_engine(url)

    def _tx():
        return Session(engine)

    with _tx() as s, s.begin():
        L.open_client(s, "c1")
        L.open_provider(s, "p1")
        L.deposit(s, "fund:p1", L.provider_account("p1"), 10_000)
        L.bond(s, "bond:p1", "p1", 4_000)
    yield _tx
    engine.dispose()


def test_provider_cannot_unbond_out_of_a_slash(tx):
    """Paid, then unbonds everything at once: the bad-proof slash still reaches the unbonding stake."""
    with tx() as s, s.begin():
        L.request_unbond(s, "ub-1", "p1", 3_000, now_s=T0)
        L.request_unbond(s, "ub-2", "p1", 1_000, now_s=T0 + 1)
        assert L.balance(s, L.bond_account("p1")) == 0
        assert L.slashable_unbonding_wei(s, "p1", T0 + 2) == 4_000
        sl = L.slash(s, "sl-1", "p1", "job-1", "wrong_result", now_s=T0 + 2, amount_wei=2_500, client="c1")
        assert sl.amount_wei == 2_500 and sl.from_collateral_wei == 0
        assert L.balance(s, L.unbonding_account("p1")) == 1_500
        assert L.check_invariants(s) == []
    with tx() as s, s.begin():  # only what the slash left is paid out at maturity
        done = L.complete_unbond(s, "cu-1", "p1", now_s=T0 + 1 + UNBONDING_PERIOD_S)
        assert done.amount_wei == 1_500
        assert L.check_invariants(s) == []


def test_matured_unbonding_is_out_of_reach(tx):
    with tx() as s, s.begin():
        L.request_unbond(s, "ub-1", "p1", 4_000, now_s=T0)
        late = T0 + UNBONDING_PERIOD_S
        assert L.slashable_unbonding_wei(s, "p1", late) == 0
        with pytest.raises(L.SlashExceedsBond):
            L.slash(s, "sl-1", "p1", "job-1", "wrong_result", now_s=late, amount_wei=1)


def test_default_collateral_is_the_policy():
    assert DEFAULT_COLLATERAL_BPS == {"exact": 1_000, "spot": 10_000}
    assert default_collateral_wei(10**15, "proof") == 10**14
    assert default_collateral_wei(10**15, "inference") == 10**15
    assert default_collateral_wei(1, "proof") == 1  # a priced job always needs some bond
    with pytest.raises(KeyError):
        default_collateral_wei(10, "mining")


def _provider(url: str, name: str, bond_wei: int) -> ProviderClient:
    key = Account.create().key.hex()
    pc = ProviderClient(url, key)
    pc.register(name, offer={"price_per_cpu_s_wei": 10**9, "cpus": 4, "gpus": 0, "gpu_model": None,
                             "memory_bytes": 8 * 2**30, "speed": 1.0})
    if bond_wei:
        Client(url, key).faucet(0, bond_wei=bond_wei, provider_name=name)
    return pc


def test_service_never_matches_a_provider_without_the_collateral(tmp_path):
    svc = start_service(tmp_path / "data")
    try:
        client = Client(svc.url, Account.create().key.hex())
        client.faucet(10**18)
        price = 10**15
        poor = _provider(svc.url, "poor", default_collateral_wei(price, "inference") - 1)
        unbonded = _provider(svc.url, "unbonded", 0)
        job = client.submit_inference(b"one sentence here.\n", max_price_wei=price)  # no collateral given
        with Session(svc.runtime.engine) as s:
            assert s.get(JobRecord, job["job_id"]).collateral_wei == default_collateral_wei(price, "inference")
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:  # many rounds (0.1 s each): neither is ever matched
            for pc, name in ((poor, "poor"), (unbonded, "unbonded")):
                assert pc.poll(name, max_leases=1, wait_s=0.2) == [], name
        assert client.status(job["job_id"])["status"] == "open"
        rich = _provider(svc.url, "rich", 10**17)
        deadline = time.monotonic() + 30
        leases: list = []
        while not leases and time.monotonic() < deadline:
            leases = rich.poll("rich", max_leases=1, wait_s=1.0)
        assert leases and leases[0]["job_id"] == job["job_id"]
    finally:
        svc.stop()
