"""The service end to end on SQLite + in-process EVM: submit, lease, prove, upload, pay, settle."""

from __future__ import annotations

import time

from eth_hash.auto import keccak

from tests.service.conftest import ROUNDS
from tests.service.harness import Heartbeats, attest, run_lease


def _serve_one(pc, key, name, keys_dir, wait_s=5.0):
    leases = pc.poll(name, wait_s=wait_s)
    assert leases, "no lease delivered"
    lease = leases[0]
    with Heartbeats(pc, name, [lease["job_id"]]):
        result = run_lease(lease, keys_dir)
    h, sig = attest(lease, key, result)
    return lease, pc.complete(lease, result=result, result_hash=h, signature=sig, logs=["proved", "ok"]), result


def test_proof_job_paid_and_settled(service, parties, keys_dir):
    client, provs = parties
    job = client.submit_proof(12345, rounds=ROUNDS, max_price_wei=10**15)
    assert job["status"] == "open"
    pc, key = provs["p1"]
    lease, answer, result = _serve_one(pc, key, "p1", keys_dir)
    assert answer == {"job_id": job["job_id"], "status": "paid", "reason": None}
    # a retried upload is idempotent
    h, sig = attest(lease, key, result)
    assert pc.complete(lease, result=result, result_hash=h, signature=sig) == answer
    done = client.wait(job["job_id"], timeout_s=30)
    assert done["status"] in ("paid", "settled") and done["provider"] == "p1"
    assert client.result(job["job_id"]) == result
    assert client.logs(job["job_id"]) == ["proved", "ok"]
    deadline = time.time() + 20
    while client.status(job["job_id"])["status"] != "settled" and time.time() < deadline:
        time.sleep(0.2)
    final = client.status(job["job_id"])
    assert final["status"] == "settled" and final["tx_hash"], final
    bal = client.balance()
    assert int(bal["balance_wei"]) == 10**18 - int(final["price_wei"]) and bal["escrowed_wei"] == "0"
    assert "0x" + keccak(result).hex() == final["result_hash"]
