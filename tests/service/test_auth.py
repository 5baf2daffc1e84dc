"""Authorisation: forged, replayed, expired, tampered, misdirected or oversized requests are refused with a
4xx JSON body and change nothing (money and job tables compared before/after); parties cannot touch or read
what belongs to others."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from eth_account import Account

from market.client import ApiError, Client
from market.protocol import sign_request
from tests.service.conftest import ROUNDS, new_key
from tests.service.harness import Heartbeats, snapshot


@pytest.fixture
def db_url(service):
    return service.runtime.settings.resolved_database_url


def _post(service, path, req_or_body):
    body = req_or_body if isinstance(req_or_body, (str, bytes)) else req_or_body.model_dump_json()
    return httpx.post(service.url + path, content=body, headers={"content-type": "application/json"}, timeout=30)


def _refused(resp, status, code):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == code and body["message"] and "hint" in body, body
    return body


def _submit_req(client, key, **over):
    spec = {"kind": "proof", "circuit": "mimc7", "rounds": ROUNDS, "preimage": "9", "max_price_wei": "1000000"}
    return sign_request(key, over.pop("action", "job.submit"), {"spec": spec}, client.t.domain, **over)


def test_forged_replayed_expired_tampered_requests_change_nothing(service, parties, db_url):
    client, _ = parties
    key = client.t.account.key
    other = Account.from_key(new_key()).address
    before = snapshot(db_url)
    cases = []
    # wrong signer: signed by the client's key, claims another address
    cases.append(("/v1/jobs", _submit_req(client, key).model_copy(update={"signer": other}), 401, "bad_signature"))
    # tampered body: the payload changed after signing
    req = _submit_req(client, key)
    raw = json.loads(req.model_dump_json())
    raw["payload"]["spec"]["max_price_wei"] = "1"
    cases.append(("/v1/jobs", json.dumps(raw), 401, "bad_signature"))
    # expired, and an expiry too far ahead
    cases.append(("/v1/jobs", _submit_req(client, key, now_s=time.time() - 300), 401, "expired"))
    cases.append(("/v1/jobs", _submit_req(client, key, ttl_s=3600), 401, "expired"))
    # signed for another action / another domain
    cases.append(("/v1/jobs", _submit_req(client, key, action="job.cancel"), 400, "wrong_action"))
    wrong_domain = client.t.domain.model_copy(update={"chain_id": 1})
    cases.append(("/v1/jobs", sign_request(key, "job.submit", req.payload, wrong_domain), 401, "bad_signature"))
    # more than the balance; an invalid id; an oversized body
    rich = sign_request(key, "job.submit", {"spec": {**req.payload["spec"], "max_price_wei": str(4 * 10**18)}},  # > the 1e18 funded, < 2^62
                        client.t.domain)
    cases.append(("/v1/jobs", rich, 402, "insufficient_funds"))
    bad_id = sign_request(key, "job.submit", {"spec": {**req.payload["spec"], "job_id": "../x"}}, client.t.domain)
    cases.append(("/v1/jobs", bad_id, 422, "invalid"))
    cases.append(("/v1/jobs", "x" * (3 * 2**20), 413, "too_large"))
    for path, body, status, code in cases:
        _refused(_post(service, path, body), status, code)
    assert snapshot(db_url) == before
    # a replayed envelope: the first is taken, the replay refused and changes nothing more
    assert _post(service, "/v1/jobs", req).status_code == 200
    after_first = snapshot(db_url)
    _refused(_post(service, "/v1/jobs", req), 409, "replayed_nonce")
    assert snapshot(db_url) == after_first


def test_inputs_are_bounded(service, parties):
    client, _ = parties
    with pytest.raises(ApiError) as info:
        client.submit_inference(b"a sentence\n" * 30_000, max_price_wei=10**12)  # 330 KB > 256 KiB
    assert info.value.code == "too_large"
    with pytest.raises(ApiError) as info:
        client.status("no/such")
    assert info.value.status in (404, 422)
    with pytest.raises(ApiError) as info:
        client.submit_proof(1, rounds=10_000, max_price_wei=10**12)
    assert info.value.code == "invalid"


def test_parties_cannot_touch_what_is_not_theirs(service, parties, keys_dir):
    client, provs = parties
    (p1, k1), (p2, _k2) = provs["p1"], provs["p2"]
    job = client.submit_proof(5, rounds=ROUNDS, max_price_wei=10**15)
    leases = p1.poll("p1", wait_s=5)
    assert leases and leases[0]["job_id"] == job["job_id"]
    lease = leases[0]
    codes = {}
    with Heartbeats(p1, "p1", [job["job_id"]]):
        codes = _cross_party_codes(service, client, job, lease, p2)
        assert client.status(job["job_id"])["status"] == "running"
    assert codes == {
        "p2 completes p1's lease": "not_owner", "p2 gives back p1's lease": "not_owner",
        "p2 heartbeats as p1": "not_owner", "p2 polls as p1": "not_owner", "p2 re-registers p1's name": "name_taken",
        "stranger reads the result": "not_owner", "stranger reads the logs": "not_owner",
        "stranger cancels": "not_owner", "stranger bonds p1": "not_owner",
    }
    # the balance read is the signer's own: a stranger sees an empty account, not the client's
    assert Client(service.url, new_key()).balance()["balance_wei"] == "0"
    providers = {p["name"]: p for p in client.providers()}
    assert providers["p1"]["address"] == Account.from_key(k1).address


def _cross_party_codes(service, client, job, lease, p2):
    codes = {}
    for label, call in {
        "p2 completes p1's lease": lambda: p2.complete(lease, result=b"x", result_hash="0x" + "00" * 32,
                                                      signature="0x" + "00" * 65),
        "p2 gives back p1's lease": lambda: p2.fail(lease, reason="mine now"),
        "p2 heartbeats as p1": lambda: p2.heartbeat("p1", running=[job["job_id"]]),
        "p2 polls as p1": lambda: p2.poll("p1", wait_s=0),
        "p2 re-registers p1's name": lambda: p2.register("p1", offer={"price_per_cpu_s_wei": 1, "cpus": 1,
                                                                     "memory_bytes": 1}),
        "stranger reads the result": lambda: Client(service.url, new_key()).result(job["job_id"]),
        "stranger reads the logs": lambda: Client(service.url, new_key()).logs(job["job_id"]),
        "stranger cancels": lambda: Client(service.url, new_key()).cancel(job["job_id"]),
        "stranger bonds p1": lambda: Client(service.url, new_key()).faucet(0, bond_wei=1, provider_name="p1"),
    }.items():
        with pytest.raises(ApiError) as info:
            call()
        codes[label] = info.value.code
    return codes


def test_faucet_only_on_a_dev_exchange(tmp_path, keys_dir):
    from market.exchange.service import ServiceConfig
    from market.settings import Settings
    from tests.service.harness import ThreadService

    svc = ThreadService(Settings(data_dir=tmp_path / "prod"), ServiceConfig(dev=False)).start()
    try:
        with pytest.raises(ApiError) as info:
            Client(svc.url, new_key()).faucet(10**18)
        assert info.value.code == "not_dev" and info.value.status == 403
        assert Client(svc.url).info()["dev"] is False
    finally:
        svc.stop()
