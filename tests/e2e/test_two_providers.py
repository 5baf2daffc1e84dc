"""Two providers, each with its own Ray cluster (token auth), against the real exchange service.

Provider A is a stranger to provider B: it cannot join B's cluster without B's token, and no API call
gives it B's key, B's results or B's leases. B's key never enters B's Ray cluster: B's own driver (with
B's token) reads every field of B's workers and finds no key.
"""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from eth_account import Account
from sqlalchemy import create_engine, text

from market.client import ApiError, Client, ProviderClient
from market.exchange.service import ServiceConfig
from market.settings import Settings
from tests.providers.harness import AgentProcess, bond, driver_result, ray_driver, start_agents, wait_for
from tests.service.harness import ThreadService

pytestmark = [pytest.mark.ray]

ROUNDS = 4


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    base = tmp_path_factory.mktemp("two")
    settings = Settings(data_dir=base / "exchange", settlement_window_s=1.0, max_attempts=3)
    svc = ThreadService(settings, ServiceConfig(lease_s=5.0, round_interval_s=0.2, dev=True)).start()
    agents = [AgentProcess("pA", svc.url, base, price_per_cpu_s_wei=2 * 10**9),
              AgentProcess("pB", svc.url, base, price_per_cpu_s_wei=10**9)]  # B is cheaper: B wins
    try:
        start_agents(agents)
        for a in agents:
            bond(svc.url, a)
        client = Client(svc.url, Account.create().key)
        client.faucet(10**18)
        yield svc, settings, {a.name: a for a in agents}, client
    finally:
        for a in agents:
            a.cleanup()
        svc.stop()


def test_a_stranger_provider_gets_nothing_of_b(market):
    svc, settings, agents, client = market
    # Both online before the job goes in, so the cheaper B usually wins; on a slow box the round may see only
    # A (B's first poll late). Either way the loser is the stranger: "B" below is whoever won the job.
    wait_for(lambda: {p["name"] for p in client.providers() if p["online"]} >= {"pA", "pB"}, 120,
             "both providers online")
    t0 = time.monotonic()
    job = client.submit_proof(11, rounds=ROUNDS, max_price_wei=10**15)
    done = client.wait(job["job_id"], timeout_s=600)
    assert done["status"] in ("paid", "settled") and done["provider"] in agents, done
    b = agents[done["provider"]]
    a = agents[({"pA", "pB"} - {b.name}).pop()]
    print(f"proof job on {b.name} (stranger {a.name}): {time.monotonic() - t0:.1f} s")
    result = client.result(job["job_id"])  # the owner gets it, checked against the attested hash
    assert json.loads(result)["public"]

    # -- B's Ray cluster: A's token and no token are refused; B's own driver reads B's workers' fields.
    procs = {"a_token": ray_driver(b.summary["ray_address"], a.cluster.env()),
             "no_token": ray_driver(b.summary["ray_address"], {"RAY_AUTH_MODE": "disabled"}),
             "b_token": ray_driver(b.summary["ray_address"], b.cluster.env(),
                                   actor_names=[f"raymarket-worker-{b.name}-{i}" for i in range(1, 4)],
                                   namespace=f"raymarket-{b.name}")}
    seen = {k: driver_result(p) for k, p in procs.items()}
    assert not seen["a_token"]["connected"] and not seen["no_token"]["connected"], seen
    assert "InvalidAuthToken" in seen["a_token"]["stderr"] + seen["no_token"]["stderr"]
    assert seen["b_token"]["connected"] and seen["b_token"]["actor_fields"], seen["b_token"]
    b_key = b.key.removeprefix("0x").lower()
    assert b_key not in json.dumps(seen["b_token"]["actor_fields"]).lower()  # the key never entered Ray

    # -- the API: everything A tries on B's name, lease, job and result is refused.
    engine = create_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        lease_id = conn.execute(text("SELECT lease_id FROM leases WHERE job_id = :j AND provider = :p"),
                                {"j": job["job_id"], "p": b.name}).scalar_one()
    engine.dispose()
    pa = ProviderClient(svc.url, a.key)
    ca = Client(svc.url, a.key)
    b_lease = {"lease_id": lease_id, "job_id": job["job_id"]}
    attempts = {
        "poll as B": lambda: pa.poll(b.name, wait_s=0),
        "heartbeat as B": lambda: pa.heartbeat(b.name, running=[job["job_id"]]),
        "re-register B's name": lambda: pa.register(b.name, offer={"price_per_cpu_s_wei": 1, "cpus": 1,
                                                                 "memory_bytes": 1}),
        "complete B's lease": lambda: pa.complete(b_lease, result=b"x", result_hash="0x" + "00" * 32,
                                                  signature="0x" + "00" * 65),
        "give back B's lease": lambda: pa.fail(b_lease, reason="mine"),
        "read B's result": lambda: ca.result(job["job_id"]),
        "read B's job logs": lambda: ca.logs(job["job_id"]),
        "bond as B": lambda: ca.faucet(0, bond_wei=1, provider_name=b.name),
    }
    codes = {}
    for label, call in attempts.items():
        with pytest.raises(ApiError) as info:
            call()
        codes[label] = info.value.code
    assert codes == {"poll as B": "not_owner", "heartbeat as B": "not_owner", "re-register B's name": "name_taken",
                     "complete B's lease": "not_owner", "give back B's lease": "not_owner",
                     "read B's result": "not_owner", "read B's job logs": "not_owner", "bond as B": "not_owner"}
    assert client.status(job["job_id"])["status"] in ("paid", "settled")  # nothing A did changed the job

    # -- the public reads carry neither B's key nor B's result bytes.
    result_b64 = base64.b64encode(result).decode()
    for path in ("/v1/info", "/v1/providers", f"/v1/jobs/{job['job_id']}"):
        body = httpx.get(svc.url + path, timeout=30).text
        assert b_key not in body.lower() and result_b64 not in body, path
    listed = {p["name"]: p for p in client.providers()}
    assert listed[a.name]["address"] == a.address and listed[b.name]["address"] == b.address
    assert listed[b.name]["online"]
