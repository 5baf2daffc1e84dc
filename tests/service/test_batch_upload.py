"""``lease.complete_batch``: several uploads under one signature, proofs batch-verified, one outcome per item.

A batch with good proofs, one provably wrong proof, one upload for a lease that is not the signer's and one
repeated lease: the good ones are paid, the wrong one rejected (its job re-auctioned), the foreign one refused
alone, the repeat answered like a retry; nothing else is affected, and a replayed batch is refused whole.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from market.client import ApiError
from market.protocol import Action, sign_request
from tests.service.conftest import ROUNDS
from tests.service.harness import Heartbeats, attest, run_lease


def _leases(pc, name, n):
    got, deadline = [], time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        got += pc.poll(name, max_leases=n - len(got), wait_s=2)
    assert len(got) == n, got
    return got


def test_batch_upload_pays_rejects_and_refuses_per_item(service, parties, keys_dir):
    client, provs = parties
    jobs = [client.submit_proof(100 + i, rounds=ROUNDS, max_price_wei=10**15)["job_id"] for i in range(4)]
    pc, key = provs["p1"]
    leases = _leases(pc, "p1", 4)
    uploads = []
    with Heartbeats(pc, "p1", [ls["job_id"] for ls in leases]):
        for i, lease in enumerate(leases):
            result = run_lease(lease, keys_dir)
            if i == 1:  # another statement's valid proof: a provably wrong result for this job
                other = dict(lease, ticket=dict(lease["ticket"], preimage="999"))
                result = run_lease(other, keys_dir)
                proof = json.loads(result)
                proof["public"] = json.loads(run_lease(lease, keys_dir))["public"]
                result = json.dumps(proof, separators=(",", ":"), sort_keys=True).encode()
            h, sig = attest(lease, key, result)
            uploads.append({"lease": lease, "result": result, "result_hash": h, "signature": sig, "logs": ["ok"]})
    p2, _ = provs["p2"]
    answers = pc.complete_many(uploads + [uploads[0]])
    assert [a["status"] for a in answers] == ["paid", "rejected", "paid", "paid", "paid"], answers
    assert answers[1]["reason"].startswith("proof rejected"), answers[1]
    assert answers[4] == answers[0]  # the same lease twice: answered like a retried upload
    stranger = p2.complete_many(uploads[:2])  # a stranger's batch of p1's leases: each item refused
    assert [(a["status"], a["error"]) for a in stranger] == [("error", "not_owner")] * 2, stranger
    states = {j: client.status(j)["status"] for j in jobs}
    assert [states[ls["job_id"]] in ("paid", "settled") for ls in leases] == [True, False, True, True]
    assert states[leases[1]["job_id"]] in ("open", "assigned", "running")  # re-auctioned without p1
    item = {"lease_id": leases[2]["lease_id"], "job_id": leases[2]["job_id"], "logs": [],
            "result_b64": base64.b64encode(uploads[2]["result"]).decode(), "result_hash": uploads[2]["result_hash"],
            "signature": uploads[2]["signature"]}
    body = sign_request(pc.t.account, Action.LEASE_COMPLETE_BATCH, {"items": [item]}, pc.t.domain).model_dump_json()
    assert pc.t._send("POST", "/v1/leases/complete-batch", content=body)["results"][0] == answers[2]
    with pytest.raises(ApiError) as info:  # the same signed request again: refused as a whole
        pc.t._send("POST", "/v1/leases/complete-batch", content=body)
    assert info.value.code == "replayed_nonce"
    assert client.logs(leases[0]["job_id"]) == ["ok"]



def test_batch_submit_escrows_each_and_refuses_per_spec(service, parties):
    client, _ = parties
    before = int(client.balance()["balance_wei"])

    def spec(i, **kw):
        return {"kind": "proof", "circuit": "mimc7", "rounds": ROUNDS, "preimage": str(i), "max_price_wei": str(10**15),
                **kw}

    got = client.submit_many([spec(1, job_id="j-batch-a"), spec(2, rounds=10**4), spec(3)])
    assert [g["status"] for g in got] == ["open", "error", "open"], got
    assert got[0]["job_id"] == "j-batch-a" and got[1]["error"] == "invalid"
    assert client.balance() == {"address": client.address, "balance_wei": str(before - 2 * 10**15),
                                "escrowed_wei": str(2 * 10**15)}
    again = client.submit_many([spec(1, job_id="j-batch-a")])  # idempotent on a given id, like job.submit
    assert again[0]["job_id"] == "j-batch-a" and again[0]["status"] in ("open", "assigned")
    assert client.status(got[2]["job_id"])["history"][0]["event"] == "submitted"
