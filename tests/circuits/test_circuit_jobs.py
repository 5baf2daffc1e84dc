"""Issue 13's thin slice with real components: a circom circuit the project has never seen (compiled here with
circom2, its zkey from snarkjs with a fresh 2^6 powers of tau) is registered with ``raymarket circuit add``;
``submit proof --circuit --witness`` is proved by a real provider agent on its own Ray cluster (the zkey fetched
by hash, cached on disk and prepared once); the exchange verifies the proof against the circuit's stored
verification key before paying; ``raymarket result JOB --out DIR`` writes proof.json + public.json that
``snarkjs groth16 verify`` accepts. A tampered witness (its public signal changed) is refused at intake, and the
witness is gone from the exchange once the job is paid."""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from cli import app as cli_app
from market.client import ApiError, Client
from market.db.models import JobBlob
from market.exchange.service import ServiceConfig
from market.settings import Settings
from proving.field import FR_MODULUS
from proving.formats.wtns_file import read_wtns, wtns_bytes
from tests.providers.harness import AgentProcess, bond, make_keystore
from tests.proving.protocol_fixtures import snarkjs_verify
from tests.service.harness import ThreadService

pytestmark = [pytest.mark.ray]

def _cli(*args: str) -> dict:
    res = CliRunner().invoke(cli_app, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_circuit_job_end_to_end(merkle, tmp_path):
    merkle_vk = json.loads(merkle.vk.read_text())
    settings = Settings(data_dir=tmp_path / "exchange", settlement_window_s=1.0, max_attempts=3)
    svc = ThreadService(settings, ServiceConfig(lease_s=6.0, round_interval_s=0.2, dev=True)).start()
    agent = AgentProcess("prover1", svc.url, tmp_path, cpus=1)
    try:
        agent.start()
        keystore = tmp_path / "client.keystore.json"
        key, password_file = make_keystore(keystore)
        common = ["--exchange", svc.url, "--data-dir", str(tmp_path / "client")]
        signer = ["--key", str(keystore), "--password-file", str(password_file)]
        client = Client(svc.url, key)
        client.faucet(10**18)

        zkey = merkle.zkey
        added = _cli("circuit", "add", str(zkey), "--json", *common, *signer)
        assert set(added) == {"circuit_id", "n_constraints", "n_public", "vk_sha256"}
        cid = added["circuit_id"]
        assert cid == hashlib.sha256(zkey.read_bytes()).hexdigest()
        assert added["n_public"] == 2 and added["n_constraints"] >= 6  # root (output) + salt
        again = client.add_circuit(zkey)  # stored once: same id, same record
        assert again["circuit_id"] == cid and len(client.circuits()) == 1
        listed = _cli("circuit", "list", "--json", *common)
        assert [c["circuit_id"] for c in listed] == [cid]
        vk_out, sol = tmp_path / "verification_key.json", tmp_path / "Verifier.sol"
        shown = _cli("circuit", "show", cid, "--vk-out", str(vk_out), "--verifier-out", str(sol), "--json", *common)
        assert "function verifyProof" in sol.read_text() and shown["verifier_out"] == str(sol)
        # registered on the service's settlement contract at `circuit add` (operator tx recorded)
        contract = svc.runtime.chain.contract
        assert shown["verifier_settlement"] == contract.address and shown["verifier_tx"].startswith("0x")
        with svc.runtime.write_lock:  # the in-process EVM is not thread-safe (the loop sends txs)
            assert contract.call("verifiers", bytes.fromhex(cid)) == shown["verifier_address"]
        ours, theirs = json.loads(vk_out.read_text()), merkle_vk
        for field in ("vk_alpha_1", "vk_beta_2", "vk_gamma_2", "vk_delta_2", "IC", "nPublic"):
            assert ours[field] == theirs[field], field

        # a tampered witness: its public salt changed, the client's public.json says otherwise -> refused at intake
        w = read_wtns(merkle.witness)
        public = [str(x) for x in w[1:3]]
        (tmp_path / "public.json").write_text(json.dumps(public))
        tampered = list(w)
        tampered[2] = (tampered[2] + 1) % FR_MODULUS
        with pytest.raises(ApiError) as refused:
            client.submit_proof(circuit_id=cid, witness=wtns_bytes(tampered), public=public, max_price_wei=10**16)
        assert refused.value.code == "invalid" and "public signals" in refused.value.message
        with pytest.raises(ApiError) as short:
            client.submit_proof(circuit_id=cid, witness=wtns_bytes(w[:-1]), max_price_wei=10**16)
        assert short.value.code == "invalid"

        agent.wait_started()
        bond(svc.url, agent)
        job = _cli("submit", "proof", "--circuit", cid, "--witness", str(merkle.witness), "--public",
                   str(tmp_path / "public.json"), "--max-price", str(10**16), "--wait", "--timeout-s", "600",
                   "--json", *common, *signer)
        assert job["status"] in ("paid", "settled") and job["provider"] == "prover1", job
        out = tmp_path / "out"
        _cli("result", job["job_id"], "--out", str(out), "--json", *common, *signer)
        assert json.loads((out / "public.json").read_text()) == public
        assert snarkjs_verify(vk_out, out / "public.json", out / "proof.json")
        assert snarkjs_verify(merkle.vk, out / "public.json", out / "proof.json")

        # the witness is the client's secret: gone from the exchange once paid, never in the job's logs
        with svc.runtime.read() as s:
            assert s.get(JobBlob, (job["job_id"], "witness")) is None
        # only values too big to occur by chance: hex(2) = "0x2" is inside any result hash that starts 0x2...
        witness_hex = {hex(x) for x in w[3:] if x > 2**64} | {str(x) for x in w[3:] if x > 10**12}
        logs = "\n".join(client.logs(job["job_id"]))
        assert "started proof job" in logs and not any(x in logs for x in witness_hex)
        # the provider cached the zkey on disk by hash
        assert (agent.data_dir / "keys" / "circuits" / f"{cid}.zkey").exists()

        # a second job on the same circuit: proved with the cached key, paid
        job2 = client.submit_proof(circuit_id=cid, witness=merkle.witness, max_price_wei=10**16)
        assert client.wait(job2["job_id"], timeout_s=600)["status"] in ("paid", "settled")
    finally:
        agent.cleanup()
        svc.stop()
