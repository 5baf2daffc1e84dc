"""The demo flow through the service, on SQLite + in-process EVM and on Postgres + anvil: an embedding job and
a proof job submitted with the SDK, leased, computed, uploaded, verified, paid, batched on-chain and settled;
the downloaded results match the attested hashes, balances add up, the batch root is on the contract."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.merkle import merkle_root
from market import ledger
from market.db.models import JobRecord
from market.settlement.models import LeafRecord
from tests.service.conftest import ROUNDS, make_parties
from tests.service.harness import Heartbeats, attest, run_lease

TEXT = b"The first sentence.\nA second one.\n\nAnd a third.\n"


def _serve(pc, key, name, keys_dir, n):
    """Poll, compute and upload ``n`` leases as provider ``name``; returns {job_id: (answer, result)}."""
    done = {}
    deadline = time.monotonic() + 30
    while len(done) < n and time.monotonic() < deadline:
        for lease in pc.poll(name, max_leases=n, wait_s=2):
            with Heartbeats(pc, name, [lease["job_id"]]):
                result = run_lease(lease, keys_dir)
            h, sig = attest(lease, key, result)
            answer = pc.complete(lease, result=result, result_hash=h, signature=sig, logs=[f"{lease['kind']} ok"])
            assert pc.complete(lease, result=result, result_hash=h, signature=sig) == answer  # idempotent retry
            done[lease["job_id"]] = (answer, result)
    return done


def _wait_settled(client, job_ids, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        jobs = {j: client.status(j) for j in job_ids}
        if all(v["status"] == "settled" for v in jobs.values()):
            return jobs
        time.sleep(0.2)
    raise AssertionError(f"not settled: {jobs}")


def test_inference_and_proof_jobs_paid_and_settled(any_service, keys_dir):
    svc = any_service
    client, provs = make_parties(svc)
    inf = client.submit_inference(TEXT, max_price_wei=10**15)
    prf = client.submit_proof(12345, rounds=ROUNDS, max_price_wei=10**15)
    pc, key = provs["p1"]
    # p2 verifies: the inference job is paid only after another provider re-embeds a secret sample of it
    verifier = threading.Thread(target=_serve, args=(*provs["p2"], "p2", keys_dir, 1), daemon=True)
    verifier.start()
    done = _serve(pc, key, "p1", keys_dir, 2)
    assert {j: a["status"] for j, (a, _) in done.items()} == {inf["job_id"]: "verifying", prf["job_id"]: "paid"}
    verifier.join(40)
    jobs = _wait_settled(client, list(done))
    for job_id, (_, result) in done.items():
        assert client.result(job_id) == result  # checked against the attested hash by the SDK
        assert client.logs(job_id) == [f"{jobs[job_id]['kind']} ok"]
        assert jobs[job_id]["tx_hash"] and jobs[job_id]["provider"] == "p1"
    spent = sum(int(j["price_wei"]) for j in jobs.values())
    assert client.balance() == {"address": client.address, "balance_wei": str(10**18 - spent), "escrowed_wei": "0"}
    rt = svc.runtime
    with Session(rt.engine) as s:
        assert ledger.check_invariants(s) == []
        assert ledger.balance(s, ledger.PROTOCOL_FEE_ACCOUNT) == sum(
            int(j["price_wei"]) * rt.settings.fee_bps // 10_000 for j in jobs.values())
        for batch_id in {j.batch_id for j in s.scalars(select(JobRecord))}:
            leaves = s.scalars(select(LeafRecord).where(LeafRecord.batch_id == batch_id)
                               .order_by(LeafRecord.leaf_index)).all()
            onchain = rt.chain.contract.get_batch(bytes.fromhex(batch_id[2:]))
            assert onchain.root == merkle_root([bytes.fromhex(leaf.leaf_hash[2:]) for leaf in leaves])
    text = client.t.http.get("/metrics").text
    assert 'raymarket_jobs{status="settled"} 2.0' in text and "raymarket_settlement_batches_total" in text
    assert "raymarket_round_seconds_count" in text and 'raymarket_ledger_balance_wei{kind="client"}' in text
