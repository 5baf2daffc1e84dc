"""Issue 13: a circuit added with ``circuit add`` gets its verifier deployed and registered on the service's
Settlement contract (operator tx, recorded on the circuit), so a bad-proof challenge works for it: a leaf
committing a real Groth16 proof of the circuit with one point changed is challenged successfully
(``BadProof``), the valid proof's challenge reverts ``ProofValid``, and a circuit never registered still reverts
``UnknownCircuit`` (what every challenge did before). The MiMC-7 example is one registered circuit too,
registered on chain on its first use."""

from __future__ import annotations

import hashlib
import os

import pytest
from eth_account import Account

from contracts.attestation import (Attestation, AttestationLeaf, JobKind, Verification, proof_commitment,
                                   sign_attestation)
from contracts.errors import ContractReverted
from contracts.merkle import build_tree
from market.client import ApiError, Client
from market.protocol import UPLOAD_REQUEST_HEADER, Action
from market.db.models import CircuitRecord
from market.exchange.service import ServiceConfig
from market.settings import Settings
from proving.formats.wtns_file import read_wtns
from proving.formats.zkey import read_zkey
from proving.groth16.prover import prove
from proving.groth16.solidity import proof_words
from tests.providers.harness import make_keystore, wait_for
from tests.service.harness import ThreadService

BAD_PROOF = 2  # Settlement.Reason.BadProof


def _leaf(key: str, domain, circuit_id: bytes, words: list[int], public: list[int]) -> AttestationLeaf:
    att = Attestation(os.urandom(32), os.urandom(32), os.urandom(32), Account.from_key(key).address, 10**12,
                      JobKind.PROOF, Verification.PROOF)
    return AttestationLeaf(sign_attestation(att, key, domain), proof_commitment(circuit_id, words, public))


def _upload_is_checked(client: Client, built) -> None:
    """The streamed upload refuses a body that is not what the signed request says, a bad wasm, too much."""
    zkey = built.zkey.read_bytes()
    good = {"zkey_sha256": hashlib.sha256(zkey).hexdigest(), "zkey_size": len(zkey)}

    def upload(payload: dict, body: bytes) -> ApiError:
        with pytest.raises(ApiError) as err:
            client.t.signed_stream("/v1/circuits/upload", Action.CIRCUIT_UPLOAD, payload, body,
                                   header=UPLOAD_REQUEST_HEADER)
        return err.value

    assert "zkey_sha256" in upload(good, zkey[:-1] + b"x").message
    assert upload(good, zkey[:-1]).code == "invalid"  # shorter than signed
    assert upload(good, zkey + b"x").code == "too_large"  # longer than signed
    assert upload({**good, "zkey_size": 2**40}, zkey).code == "too_large"
    wasm = b"not a wasm"
    bad_wasm = {**good, "wasm_sha256": hashlib.sha256(wasm).hexdigest(), "wasm_size": len(wasm)}
    assert "WebAssembly" in upload(bad_wasm, zkey + wasm).message
    assert "not a snarkjs Groth16 zkey" in upload({"zkey_sha256": hashlib.sha256(b"zz").hexdigest(),
                                                   "zkey_size": 2}, b"zz").message
    assert client.circuits() == []


def test_bad_proof_challenge_succeeds_for_a_registered_circuit(sumsq, tmp_path):
    settings = Settings(data_dir=tmp_path / "exchange", settlement_window_s=1.0)
    svc = ThreadService(settings, ServiceConfig(lease_s=6.0, round_interval_s=0.2, dev=True)).start()
    try:
        key, _ = make_keystore(tmp_path / "client.keystore.json")
        client = Client(svc.url, key)
        _upload_is_checked(client, sumsq)
        rec = client.add_circuit(sumsq.zkey, wasm=sumsq.wasm)
        cid = bytes.fromhex(rec["circuit_id"])
        rt = svc.runtime
        contract, operator = rt.chain.contract, rt.chain.operator_key
        assert rec["verifier_error"] is None and rec["verifier_settlement"] == contract.address
        with rt.write_lock:
            assert contract.call("verifiers", cid) == rec["verifier_address"]
            assert contract.call("verifierPublicInputs", cid) == rec["n_public"] == 2

        pk = read_zkey(sumsq.zkey)
        w = read_wtns(sumsq.witness)
        public = w[1:3]
        good = proof_words(prove(pk, w))
        bad = good[:6] + proof_words(prove(pk, w))[6:]  # C of another proof: well-formed, wrong
        provider_key = "0x" + bytes(Account.create().key).hex()  # generated test key
        leaves = [_leaf(provider_key, contract.domain, cid, good, public),
                  _leaf(provider_key, contract.domain, cid, bad, public),
                  _leaf(provider_key, contract.domain, b"\x33" * 32, bad, public)]
        tree = build_tree([leaf.hash for leaf in leaves])
        batch_id, challenger = os.urandom(32), rt.chain.chain.dev_keys[-1]
        with rt.write_lock:  # the service's settler sends from the same operator key
            contract.submit_batch(operator, batch_id, tree.root, len(leaves), 3 * 10**12)
            with pytest.raises(ContractReverted) as valid:
                contract.challenge_proof(challenger, batch_id, leaves[0], tree.proof(0), cid, good, public)
            assert valid.value.error_name == "ProofValid"
            with pytest.raises(ContractReverted) as unknown:
                contract.challenge_proof(challenger, batch_id, leaves[2], tree.proof(2), b"\x33" * 32, bad, public)
            assert unknown.value.error_name == "UnknownCircuit"
            contract.challenge_proof(challenger, batch_id, leaves[1], tree.proof(1), cid, bad, public)
            assert contract.call("challenged", batch_id, leaves[1].hash) == BAD_PROOF

        # the MiMC-7 example: a registered circuit (owner "exchange"), put on chain by the loop on first use
        client.faucet(10**18)
        client.submit_proof(5, rounds=2, max_price_wei=10**15)
        with rt.read() as s:
            mimc = s.query(CircuitRecord).filter_by(owner="exchange", name="mimc7-2").one()
            mimc_id = mimc.circuit_id
        def registered() -> bool:
            with rt.write_lock:  # the in-process EVM is not thread-safe: never call it while the loop sends a tx
                return contract.call("verifiers", bytes.fromhex(mimc_id)) != "0x" + "00" * 20

        wait_for(registered, 60, "the MiMC example's verifier on chain")
        assert [c["circuit_id"] for c in client.circuits()] == [rec["circuit_id"], mimc_id]
    finally:
        svc.stop()
