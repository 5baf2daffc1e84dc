"""The agent's checks of a lease and its attestation signature (no Ray: pure functions on real tickets)."""

from __future__ import annotations

import base64
import copy

import pytest
from eth_account import Account
from eth_hash.auto import keccak

from contracts.attestation import Attestation, Eip712Domain, JobKind, Verification, job_id_bytes32, recover_signer
from market.core.tickets import hex32, proof_input_hash, proof_ticket
from providers.errors import JobError
from providers.jobs import check_lease, sign_result

CONTRACT = "0x" + "ab" * 20
INFO = {"chain_id": 31337, "contract": CONTRACT}
DOMAIN = {"name": "raymarket", "version": "1", "chainId": 31337, "verifyingContract": CONTRACT}


def inference_lease(text: bytes = b"one\ntwo\n") -> dict:
    return {"lease_id": "l-1", "job_id": "j-1", "kind": "inference", "expires_at": 1e12, "price_wei": "1000",
            "attestation": {"domain": dict(DOMAIN), "job_id_bytes32": hex32(job_id_bytes32("j-1")),
                            "input_hash": hex32(keccak(text)), "kind": 0},
            "ticket": {"input_b64": base64.b64encode(text).decode()}}


def proof_lease(preimage: int = 5, rounds: int = 4) -> dict:
    t = proof_ticket(preimage, rounds)
    return {"lease_id": "l-2", "job_id": "j-2", "kind": "proof", "expires_at": 1e12, "price_wei": "7",
            "attestation": {"domain": dict(DOMAIN), "job_id_bytes32": hex32(job_id_bytes32("j-2")),
                            "input_hash": hex32(proof_input_hash("mimc7", rounds, int(t["public"][0]))), "kind": 1},
            "ticket": t}


def test_good_leases_pass():
    job = check_lease(inference_lease(), INFO)
    assert job.kind == "inference" and job.ticket["text"] == b"one\ntwo\n" and job.price_wei == 1000
    job = check_lease(proof_lease(), INFO)
    assert job.ticket["rounds"] == 4 and job.ticket["preimage"] == 5


@pytest.mark.parametrize("tamper, field", [
    (lambda l: l["attestation"]["domain"].update(chainId=1), "chainId"),
    (lambda l: l["attestation"]["domain"].update(verifyingContract="0x" + "cd" * 20), "verifyingContract"),
    (lambda l: l["attestation"]["domain"].update(name="other"), "name/version"),
    (lambda l: l["attestation"].update(job_id_bytes32=hex32(job_id_bytes32("j-9"))), "job_id_bytes32"),
    (lambda l: l["attestation"].update(kind=1), "attestation.kind"),
    (lambda l: l["attestation"].update(input_hash=hex32(keccak(b"other"))), "input_b64"),
    (lambda l: l["ticket"].update(input_b64=base64.b64encode(b"changed\n").decode()), "input_b64"),
    (lambda l: l.update(kind="mining"), "kind"),
    (lambda l: l.update(price_wei="-1"), "price_wei"),
])
def test_inference_lease_refusals(tamper, field):
    lease = copy.deepcopy(inference_lease())
    tamper(lease)
    with pytest.raises(JobError) as info:
        check_lease(lease, INFO)
    assert info.value.reason == "bad_ticket" and field in info.value.message


@pytest.mark.parametrize("tamper, field", [
    (lambda l: l["ticket"].update(preimage="6"), "ticket.public"),
    (lambda l: l["ticket"].update(rounds=5), "ticket"),
    (lambda l: l["ticket"].update(circuit="poseidon"), "ticket.circuit"),
])
def test_proof_lease_refusals(tamper, field):
    lease = copy.deepcopy(proof_lease())
    tamper(lease)
    with pytest.raises(JobError) as info:
        check_lease(lease, INFO)
    assert field in info.value.message


def test_sign_result_recovers_to_the_provider():
    acct = Account.create()
    job = check_lease(inference_lease(), INFO)
    result = b"\x93NUMPY fake bytes"
    result_hash, signature = sign_result(acct, job, result)
    assert result_hash == hex32(keccak(result))
    att = Attestation(job_id=job_id_bytes32("j-1"), input_hash=job.input_hash, result_hash=keccak(result),
                      provider=acct.address, price_wei=1000, kind=JobKind.INFERENCE,
                      verification=Verification.SPOT_CHECK, sample_rate_ppm=500_000)  # no policy in the lease: default
    assert recover_signer(att, bytes.fromhex(signature[2:]), Eip712Domain(31337, CONTRACT)) == acct.address


@pytest.mark.parametrize("verification,ppm", [(2, 0), (1, 50_000)])
def test_sign_result_signs_the_leases_policy(verification, ppm):
    """The agent signs the policy the lease names, whatever it is (it turns no job down for its policy)."""
    acct = Account.create()
    lease = inference_lease()
    lease["attestation"].update(verification=verification, sample_rate_ppm=ppm)
    job = check_lease(lease, INFO)
    assert (job.verification, job.sample_rate_ppm) == (verification, ppm)
    result = b"rows"
    _, signature = sign_result(acct, job, result)
    att = Attestation(job_id=job_id_bytes32("j-1"), input_hash=job.input_hash, result_hash=keccak(result),
                      provider=acct.address, price_wei=1000, kind=JobKind.INFERENCE,
                      verification=Verification(verification), sample_rate_ppm=ppm)
    assert recover_signer(att, bytes.fromhex(signature[2:]), Eip712Domain(31337, CONTRACT)) == acct.address


def test_a_policy_no_attestation_can_carry_is_a_bad_ticket():
    lease = inference_lease()
    lease["attestation"].update(verification=1, sample_rate_ppm=0)
    with pytest.raises(JobError) as info:
        check_lease(lease, INFO)
    assert info.value.reason == "bad_ticket" and "sample rate" in info.value.message
