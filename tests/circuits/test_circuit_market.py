"""Issue 13 with real components: jobs from two clients on two different circom circuits (merkle4 and sumsq,
compiled here with circom2, zkeys from snarkjs) are proved by real provider agents (each on its own Ray
cluster), verified against each circuit's verification key and paid; ``snarkjs groth16 verify`` accepts every
delivered proof. A job given ``--input`` (the circuit's input JSON) instead of a witness gets its witness
computed by the provider from the circuit's wasm; bad inputs are refused at intake with errors that name the
place, never the value. A provider that returns a bad proof (the test-only lying agent of tests/chaos) is
slashed and its job re-auctioned and paid to an honest provider."""

from __future__ import annotations

import json

import pytest

from market import ledger
from market.client import ApiError, Client
from market.core import ids
from market.core.tickets import parse_proof_bytes
from market.db.models import JobBlob, JobRecord
from market.exchange.service import ServiceConfig
from market.settings import Settings
from tests.chaos.liar_agent import LIE_FILE, LIES_LOG
from tests.providers.harness import AgentProcess, bond, make_keystore, start_agents, wait_for
from tests.proving.protocol_fixtures import snarkjs_verify
from tests.service.harness import ThreadService

pytestmark = [pytest.mark.ray]

PRICE = 10**16
DONE = ("paid", "settled")


def _verified_by_snarkjs(client: Client, job_id: str, vk, out) -> list[str]:
    """Download the job's proof, write proof.json / public.json under ``out``, check them with snarkjs."""
    proof, public = parse_proof_bytes(client.result(job_id))
    out.mkdir(parents=True, exist_ok=True)
    (out / "proof.json").write_text(json.dumps(proof))
    (out / "public.json").write_text(json.dumps(public))
    assert snarkjs_verify(vk, out / "public.json", out / "proof.json"), job_id
    return public


def _faults(client: Client, job_id: str) -> list[dict]:
    return [e["detail"] for e in client.status(job_id)["history"] if e["event"] == "fault"]


def test_two_clients_two_circuits_input_witness_and_a_bad_proof(merkle, sumsq, tmp_path):
    settings = Settings(data_dir=tmp_path / "exchange", settlement_window_s=1.0, max_attempts=3)
    svc = ThreadService(settings, ServiceConfig(lease_s=6.0, round_interval_s=0.2, dev=True)).start()
    honest = AgentProcess("honest", svc.url, tmp_path, cpus=1)
    liar = AgentProcess("liar", svc.url, tmp_path, cpus=1)
    liar.module = "tests.chaos.liar_agent"  # TEST ONLY: falsifies the next N proofs it computed
    (liar.data_dir / LIE_FILE).write_text("1")
    try:
        key_a, _ = make_keystore(tmp_path / "a.keystore.json")
        key_b, _ = make_keystore(tmp_path / "b.keystore.json")
        alice, bob = Client(svc.url, key_a), Client(svc.url, key_b)
        alice.faucet(10**18)
        bob.faucet(10**18)
        merkle_id = alice.add_circuit(merkle.zkey)["circuit_id"]
        sumsq_rec = bob.add_circuit(sumsq.zkey, wasm=sumsq.wasm, name="sumsq")
        sumsq_id = sumsq_rec["circuit_id"]
        assert sumsq_rec["wasm_sha256"] and merkle_id != sumsq_id

        # bad inputs: refused at intake, the error names the place and never echoes the value
        secret = 2**300
        for bad, where in (({"a": 3, "b": 4}, "not all inputs"), ({"a": str(secret), "b": 4, "k": 1}, "input.a"),
                           ({"a-b": 1}, "signal name"), ({"a": 1.5, "b": 4, "k": 1}, "input.a"),
                           ({"a": [[[[[[[[[[1]]]]]]]]]], "b": 4, "k": 1}, "deeper")):
            with pytest.raises(ApiError) as refused:
                bob.submit_proof(circuit_id=sumsq_id, input=bad, max_price_wei=PRICE)
            assert refused.value.code == "invalid" and where in refused.value.message.lower(), (bad, refused.value)
            assert str(secret) not in refused.value.message
        with pytest.raises(ApiError) as no_wasm:
            alice.submit_proof(circuit_id=merkle_id, input={"salt": 1, "leaves": [1, 2, 3, 4]}, max_price_wei=PRICE)
        assert "has no wasm" in no_wasm.value.message

        start_agents([honest, liar])
        bond(svc.url, liar)  # only the liar can serve the first job: it falsifies that proof
        first = alice.submit_proof(circuit_id=merkle_id, witness=merkle.witness, max_price_wei=PRICE)["job_id"]
        faults = wait_for(lambda: _faults(alice, first), 600, "the bad proof rejected")
        assert faults[0]["provider"] == "liar" and faults[0]["wrong_result"] is True, faults
        lies = [json.loads(x) for x in (liar.data_dir / LIES_LOG).read_text().splitlines()]
        assert [x["job_id"] for x in lies] == [first]
        with svc.runtime.read() as s:  # slashed in the ledger for the wrong result
            slashes = [ledger.get_slash(s, ids.slash_id(first, n)) for n in (0, 1)
                       if _has_slash(s, ids.slash_id(first, n))]
        assert slashes and slashes[0].provider == "liar" and slashes[0].amount_wei > 0
        bond(svc.url, honest)

        jobs = {"a2": (alice, alice.submit_proof(circuit_id=merkle_id, witness=merkle.witness,
                                                 max_price_wei=PRICE)["job_id"], merkle),
                "b_input": (bob, bob.submit_proof(circuit_id=sumsq_id, input=sumsq.input,
                                                  max_price_wei=PRICE)["job_id"], sumsq),
                "b_wtns": (bob, bob.submit_proof(circuit_id=sumsq_id, witness=sumsq.witness,
                                                 max_price_wei=PRICE)["job_id"], sumsq),
                "first": (alice, first, merkle)}
        for name, (client, job_id, _) in jobs.items():
            final = client.wait(job_id, timeout_s=600)
            assert final["status"] in DONE, (name, final)
        assert alice.status(first)["provider"] == "honest"  # re-auctioned after the fault, paid to the honest one

        publics = {name: _verified_by_snarkjs(client, job_id, built.vk, tmp_path / "out" / name)
                   for name, (client, job_id, built) in jobs.items()}
        assert publics["b_input"] == publics["b_wtns"] == ["35", "10"]  # c = 3^2 + 4^2 + 10, k = 10
        with svc.runtime.read() as s:
            params = s.get(JobRecord, jobs["b_input"][1]).spec["params"]
            assert params["witness_from"] == "input" and params["wasm_sha256"] == sumsq_rec["wasm_sha256"]
            for _, job_id, _ in jobs.values():  # the client's secrets are gone once paid
                assert s.get(JobBlob, (job_id, "witness")) is None and s.get(JobBlob, (job_id, "input_json")) is None
        # the provider that computed the input job's witness (either one: the liar lied once, then may serve
        # honestly) fetched the wasm by hash and kept it
        prover = {"honest": honest, "liar": liar}[bob.status(jobs["b_input"][1])["provider"]]
        assert (prover.data_dir / "keys" / "circuits" / f"{sumsq_rec['wasm_sha256']}.wasm").exists()
    finally:
        liar.cleanup()
        honest.cleanup()
        svc.stop()


def _has_slash(s, slash_id: str) -> bool:
    try:
        ledger.get_slash(s, slash_id)
        return True
    except ledger.SlashNotFound:
        return False
