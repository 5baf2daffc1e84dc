"""Issue 14 finding 3: one job's error stays with that job, and nothing stays stuck.

* a provider's malformed completion (short / non-string / unrecoverable signature, wrong types, a huge result,
  a job id with '/') is refused with a 4xx and changes no row of the money and job tables;
* a bad upload for one job of a round never blocks the others: its sibling is paid, and the lease of the bad one
  still takes a real answer;
* the sweeper returns ANY ``assigned``/``running`` job that no open lease holds (re-auction) or whose deadline has
  passed while it ran (refund); ``verifying`` jobs past their deadline are refunded by the spot sweep
  (``tests/hardening/test_spot_reexecution.py::test_single_provider_job_is_not_paid_then_refunded_at_deadline``).
"""

from __future__ import annotations

import base64
import time

import pytest
from sqlalchemy.orm import Session

from market import ledger
from market.client import ApiError
from market.db.models import JobRecord, LeaseRecord
from market.protocol import Action
from market.core.tickets import DEV_SETUP_SEED
from tests.service.conftest import ROUNDS, SMALL_LIMITS, make_parties, start_service
from tests.service.harness import Heartbeats, attest, payments, run_lease, snapshot


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory):
    """The dev proving key of the test circuit (as tests/service/conftest.py builds it)."""
    path = tmp_path_factory.mktemp("keys")
    run_lease({"kind": "proof", "ticket": {"preimage": "1", "rounds": ROUNDS, "setup_seed": DEV_SETUP_SEED}}, path)
    return path


@pytest.fixture
def svc(tmp_path, keys_dir):
    s = start_service(tmp_path / "data")
    yield s
    s.stop()


def _db_url(svc) -> str:
    return str(svc.runtime.engine.url)


def _raw_complete(pc, lease_id: str, payload: dict) -> ApiError:
    with pytest.raises(ApiError) as info:
        pc.t.signed(f"/v1/leases/{lease_id}/complete", Action.LEASE_COMPLETE, payload)
    return info.value


def _status(svc, job_id: str) -> str:
    with Session(svc.runtime.engine) as s:
        return s.get(JobRecord, job_id).status


def test_malformed_completions_are_refused_and_change_nothing(svc, keys_dir):
    client, provs = make_parties(svc)
    pc, key = provs["p1"]
    job = client.submit_proof(777, rounds=ROUNDS, max_price_wei=10**15)["job_id"]
    lease = pc.poll("p1", wait_s=10)[0]
    result = run_lease(lease, keys_dir)
    h, sig = attest(lease, key, result)
    good = {"lease_id": lease["lease_id"], "job_id": job, "result_b64": base64.b64encode(result).decode(),
            "result_hash": h, "signature": sig, "logs": []}
    huge = base64.b64encode(b"\0" * (SMALL_LIMITS["max_result_bytes"] + 10)).decode()
    bad = {
        "short signature": {"signature": "0x1234"},
        "signature not a string": {"signature": 12345},
        "unrecoverable signature": {"signature": "0x" + "00" * 65},
        "result not a string": {"result_b64": 123},
        "result hash not a string": {"result_hash": ["0x00"]},
        "logs not strings": {"logs": [{"a": 1}]},
        "huge result": {"result_b64": huge},
        "job id with a slash": {"job_id": "../" + job},
        "result not base64": {"result_b64": "%%%"},
    }
    pc.heartbeat("p1", running=[job])  # a fresh lease: the refused uploads below take far less than LEASE_S
    before = snapshot(_db_url(svc))
    for what, change in bad.items():
        err = _raw_complete(pc, lease["lease_id"], {**good, **change})
        assert 400 <= err.status < 500, f"{what}: HTTP {err.status} {err}"
    after = snapshot(_db_url(svc))
    for table in before:  # refused before any write: not even the request's nonce is kept
        assert before[table] == after[table], f"{table} changed after a refused upload"
    assert _status(svc, job) == "running"
    assert pc.complete(lease, result=result, result_hash=h, signature=sig)["status"] == "paid"  # the lease still works


def test_one_bad_upload_does_not_block_the_rest_of_its_round(svc, keys_dir):
    client, provs = make_parties(svc)
    pc, key = provs["p1"]
    for name, (prov, _) in provs.items():  # no round matches until both jobs are in: then one round takes both
        prov.heartbeat(name, draining=True)
    jobs = [client.submit_proof(900 + i, rounds=ROUNDS, max_price_wei=10**15)["job_id"] for i in range(2)]
    pc.heartbeat("p1", draining=False)
    got: list[dict] = []
    deadline = time.monotonic() + 30
    while len(got) < 2 and time.monotonic() < deadline:
        got += pc.poll("p1", max_leases=2, wait_s=5)
    assert sorted(le["job_id"] for le in got) == sorted(jobs)
    with Session(svc.runtime.engine) as s:  # one round matched both
        assert len({s.get(JobRecord, j).round_id for j in jobs}) == 1
    bad_lease, good_lease = got
    with Heartbeats(pc, "p1", jobs):
        results = {le["job_id"]: run_lease(le, keys_dir) for le in got}
        h, sig = attest(bad_lease, key, results[bad_lease["job_id"]])
        err = _raw_complete(pc, bad_lease["lease_id"], {
            "lease_id": bad_lease["lease_id"], "job_id": bad_lease["job_id"], "result_hash": h, "logs": [],
            "result_b64": base64.b64encode(results[bad_lease["job_id"]]).decode(), "signature": "0x" + "ff" * 65})
        assert err.status == 422
        h2, sig2 = attest(good_lease, key, results[good_lease["job_id"]])
        assert pc.complete(good_lease, result=results[good_lease["job_id"]], result_hash=h2,
                           signature=sig2)["status"] == "paid"
        assert _status(svc, bad_lease["job_id"]) == "running"
        assert pc.complete(bad_lease, result=results[bad_lease["job_id"]], result_hash=h,
                           signature=sig)["status"] == "paid"
    with Session(svc.runtime.engine) as s:
        assert all(len(payments(s, j)) == 1 for j in jobs)
        assert ledger.check_invariants(s) == []


def _wait(pred, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def test_sweeper_reauctions_a_running_job_no_lease_holds(svc, keys_dir):
    client, provs = make_parties(svc)
    pc, _ = provs["p1"]
    job = client.submit_proof(31, rounds=ROUNDS, max_price_wei=10**15)["job_id"]
    lease = pc.poll("p1", wait_s=10)[0]
    with svc.runtime.tx() as s:  # an inconsistency (a crash between two writes, a bug): the lease closed alone
        s.get(LeaseRecord, lease["lease_id"]).status = "completed"
    _wait(lambda: _status(svc, job) != "running")
    with Session(svc.runtime.engine) as s:
        rec = s.get(JobRecord, job)
        assert rec.attempt == 2 and "p1" in rec.spec["excluded"] and rec.status in ("open", "assigned", "running")
        assert ledger.balance(s, ledger.collateral_account("p1")) == 0  # released, not slashed
        assert ledger.check_invariants(s) == []


def test_sweeper_refunds_a_job_still_running_past_its_deadline(svc, keys_dir):
    client, provs = make_parties(svc)
    pc, _ = provs["p1"]
    job = client.submit_proof(32, rounds=ROUNDS, max_price_wei=10**15, deadline_s=40)["job_id"]
    lease = pc.poll("p1", wait_s=10)[0]
    with Heartbeats(pc, "p1", [job], every_s=0.5):  # alive and renewing the lease, but never done
        with svc.runtime.tx() as s:  # bring the deadline close rather than waiting 40 s
            s.get(JobRecord, job).deadline_s = time.time() + 2
        _wait(lambda: _status(svc, job) == "failed")
    with Session(svc.runtime.engine) as s:
        assert s.get(LeaseRecord, lease["lease_id"]).status == "expired"
        assert payments(s, job) == []
        assert ledger.balance(s, ledger.collateral_account("p1")) == 0
        assert ledger.check_invariants(s) == []
    assert client.balance() == {"address": client.address, "balance_wei": str(10**18), "escrowed_wei": "0"}
