"""Leases: a silent provider's lease expires and the job is re-auctioned to another provider (paid once, no
slash); a wrong attestation is rejected, slashed and re-auctioned; cancel refunds exactly, before and after
assignment, and revokes the lease."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from market import ledger
from market.client import ApiError
from market.db.models import LeaseRecord
from tests.service.conftest import ROUNDS, new_key
from tests.service.harness import Heartbeats, attest, payments, run_lease

PRICE = 10**15
BOND = 10**17


def _complete(pc, name, key, lease, keys_dir, sign_key=None):
    with Heartbeats(pc, name, [lease["job_id"]]):
        result = run_lease(lease, keys_dir)
    h, sig = attest(lease, sign_key or key, result)
    return pc.complete(lease, result=result, result_hash=h, signature=sig)


def _paid_once(service, job_id, provider):
    with Session(service.runtime.engine) as s:
        (account, _), = payments(s, job_id)
        assert account == ledger.provider_account(provider)
        assert ledger.check_invariants(s) == []


def _poll_until(pc, name, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = pc.poll(name, wait_s=2)
        if got:
            return got[0]
    raise AssertionError(f"{name} got no lease within {timeout_s} s")


def test_silent_provider_loses_the_lease_and_the_job_goes_to_another(service, parties, keys_dir):
    client, provs = parties
    (p1, k1), (p2, k2) = provs["p1"], provs["p2"]
    job = client.submit_proof(77, rounds=ROUNDS, max_price_wei=PRICE, collateral_wei=10**16)
    lease1 = _poll_until(p1, "p1")
    assert client.status(job["job_id"])["status"] == "running"
    # p1 goes silent (no heartbeat); p2 keeps polling and gets the job after p1's lease (LEASE_S) expires
    lease2 = _poll_until(p2, "p2", timeout_s=30)
    assert lease2["job_id"] == job["job_id"] and lease2["lease_id"] != lease1["lease_id"]
    hist = [e["event"] for e in client.status(job["job_id"])["history"]]
    assert hist[:5] == ["submitted", "matched", "started", "fault", "matched"], hist
    assert _complete(p2, "p2", k2, lease2, keys_dir)["status"] == "paid"
    # p1's late upload is refused: its lease expired
    with pytest.raises(ApiError) as info:
        _complete(p1, "p1", k1, lease1, keys_dir)
    assert info.value.code == "conflict"
    done = client.wait(job["job_id"], timeout_s=20)
    assert done["provider"] == "p2" and done["attempt"] == 2
    _paid_once(service, job["job_id"], "p2")
    with Session(service.runtime.engine) as s:
        assert ledger.balance(s, ledger.bond_account("p1")) == BOND  # collateral back: infrastructure loss
        statuses = sorted(s.scalars(select(LeaseRecord.status).where(LeaseRecord.job_id == job["job_id"])))
        assert statuses == ["completed", "expired"]


def test_wrong_attestation_is_rejected_slashed_and_reauctioned(service, parties, keys_dir):
    client, provs = parties
    (p1, k1), (p2, k2) = provs["p1"], provs["p2"]
    job = client.submit_proof(78, rounds=ROUNDS, max_price_wei=PRICE, collateral_wei=10**16)
    lease1 = _poll_until(p1, "p1")
    answer = _complete(p1, "p1", k1, lease1, keys_dir, sign_key=new_key())  # signed by a key that is not p1's
    assert answer["status"] == "rejected" and "signed by" in answer["reason"]
    lease2 = _poll_until(p2, "p2")
    assert _complete(p2, "p2", k2, lease2, keys_dir)["status"] == "paid"
    assert client.wait(job["job_id"], timeout_s=20)["provider"] == "p2"
    _paid_once(service, job["job_id"], "p2")
    with Session(service.runtime.engine) as s:
        assert ledger.balance(s, ledger.slashing_account("p1")) == 10**16  # queued slash (cancel window)


def test_cancel_refunds_exactly_before_and_after_assignment(service, parties, keys_dir):
    client, provs = parties
    p1, k1 = provs["p1"]
    start = int(client.balance()["balance_wei"])
    # open: p1 is not polling yet, but it is online: keep it offline by draining first
    p1.heartbeat("p1", draining=True)
    time.sleep(0.3)
    job = client.submit_proof(79, rounds=ROUNDS, max_price_wei=PRICE)
    assert client.balance() == {"address": client.address, "balance_wei": str(start - PRICE),
                                "escrowed_wei": str(PRICE)}
    assert client.cancel(job["job_id"])["status"] == "cancelled"
    assert client.balance()["balance_wei"] == str(start)
    with pytest.raises(ApiError) as info:
        client.cancel(job["job_id"])
    assert info.value.code == "conflict"
    # running: the lease is revoked, the refund is full, p1's upload is refused and its heartbeat says so
    p1.heartbeat("p1", draining=False)
    job = client.submit_proof(80, rounds=ROUNDS, max_price_wei=PRICE, collateral_wei=10**16)
    lease = _poll_until(p1, "p1")
    assert client.cancel(job["job_id"])["status"] == "cancelled"
    assert client.balance() == {"address": client.address, "balance_wei": str(start), "escrowed_wei": "0"}
    assert p1.heartbeat("p1", running=[job["job_id"]])["revoked"] == [job["job_id"]]
    with pytest.raises(ApiError) as info:
        _complete(p1, "p1", k1, lease, keys_dir)
    assert info.value.code == "conflict"
    with Session(service.runtime.engine) as s:
        assert ledger.balance(s, ledger.bond_account("p1")) == BOND
        assert ledger.check_invariants(s) == []
