"""The verification policy is part of the EIP-712 attestation (issue 13): the lease names the job's policy, the
provider signs it, the exchange refuses an upload signed under another policy (nothing paid, nothing slashed, the
provider may re-sign), and the settled leaf, ``status`` and ``settlement verify`` carry the signed policy."""

from __future__ import annotations

import copy
import threading
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from market import ledger
from market.client import ApiError
from market.settlement.models import LeafRecord
from market.settlement.verify import verify_report
from tests.service.conftest import ROUNDS
from tests.service.harness import Heartbeats, attest, run_lease

PRICE = 10**15
TEXT = b"one sentence.\nanother sentence.\na third.\n"


def _poll(pc, name, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = pc.poll(name, wait_s=2)
        if got:
            return got[0]
    raise AssertionError(f"{name} got no lease within {timeout_s} s")


def _serve_one(pc, key, name, keys_dir, seen):
    lease = _poll(pc, name)
    seen.append(copy.deepcopy(lease))
    result = run_lease(lease, keys_dir)
    h, sig = attest(lease, key, result)
    pc.complete(lease, result=result, result_hash=h, signature=sig)


def _settled_leaf(service, client, job_id) -> LeafRecord:
    """The job's leaf once the job is ``settled`` (its batch on chain)."""
    deadline = time.monotonic() + 30
    while client.status(job_id)["status"] != "settled":
        assert time.monotonic() < deadline, client.status(job_id)
        time.sleep(0.2)
    with Session(service.runtime.engine) as s:
        leaf = s.scalars(select(LeafRecord).where(LeafRecord.job_ref == job_id)).one()
        s.expunge(leaf)
        return leaf


def test_upload_signed_under_another_policy_is_refused_then_the_jobs_policy_settles(service, parties, keys_dir):
    client, provs = parties
    (p1, k1), (p2, k2) = provs["p1"], provs["p2"]
    job = client.submit_inference(TEXT, max_price_wei=PRICE, verification="spot-check:0.5")
    lease = _poll(p1, "p1")
    assert lease["job_id"] == job["job_id"]
    att = lease["attestation"]
    assert (att["verification"], att["sample_rate_ppm"], att["policy"]) == (1, 500_000, "spot-check:0.5")
    with Heartbeats(p1, "p1", [lease["job_id"]]):
        result = run_lease(lease, keys_dir)
        # the provider signs attest-only (no re-execution, paid at once): refused, the lease stays open
        dodge = copy.deepcopy(lease)
        dodge["attestation"].update(verification=2, sample_rate_ppm=0)
        h, sig = attest(dodge, k1, result)
        with pytest.raises(ApiError) as info:
            p1.complete(lease, result=result, result_hash=h, signature=sig)
        assert info.value.code == "invalid"
        assert "attest-only" in str(info.value) and "spot-check:0.5" in str(info.value)
        assert client.status(job["job_id"])["status"] == "running"
        with Session(service.runtime.engine) as s:
            assert ledger.balance(s, ledger.slashing_account("p1")) == 0  # refused, not slashed
        # signed under the job's policy: taken (held for its spot-check)
        h, sig = attest(lease, k1, result)
        assert p1.complete(lease, result=result, result_hash=h, signature=sig)["status"] == "verifying"
    seen: list = []
    verifier = threading.Thread(target=_serve_one, args=(p2, k2, "p2", keys_dir, seen), daemon=True)
    verifier.start()
    verifier.join(40)
    assert seen and seen[0]["lease_id"].startswith("lv-")
    assert (seen[0]["attestation"]["verification"], seen[0]["attestation"]["policy"]) == (2, "attest-only")
    done = client.wait(job["job_id"], timeout_s=30)
    assert done["verification"] == done["attested_verification"] == "spot-check:0.5"
    leaf = _settled_leaf(service, client, job["job_id"])
    assert (leaf.verification, leaf.sample_rate_ppm) == (1, 500_000)
    with Session(service.runtime.engine) as s:
        report = verify_report(s, job["job_id"], service.runtime.chain.contract)
    assert report["verification"] == "spot-check:0.5" and report["ok"], report


@pytest.mark.parametrize("kind", ["attest-only", "proof"])
def test_attest_only_and_proof_jobs_settle_under_their_policy(service, parties, keys_dir, kind):
    client, provs = parties
    p1, k1 = provs["p1"]
    if kind == "proof":
        job = client.submit_proof(4242, rounds=ROUNDS, max_price_wei=PRICE)
        want = (0, 0, "proof")
    else:
        job = client.submit_inference(TEXT, max_price_wei=PRICE, verification="attest-only")
        want = (2, 0, "attest-only")
    lease = _poll(p1, "p1")
    att = lease["attestation"]
    assert (att["verification"], att["sample_rate_ppm"], att["policy"]) == want
    with Heartbeats(p1, "p1", [lease["job_id"]]):
        result = run_lease(lease, keys_dir)
    h, sig = attest(lease, k1, result)
    assert p1.complete(lease, result=result, result_hash=h, signature=sig)["status"] == "paid"
    assert client.status(job["job_id"])["attested_verification"] == want[2]
    leaf = _settled_leaf(service, client, job["job_id"])
    assert (leaf.verification, leaf.sample_rate_ppm) == want[:2]
