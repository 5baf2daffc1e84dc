"""EIP-712 attestations: digest against eth-account's independent encoder, sign/recover, field validation."""

from __future__ import annotations

import os

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak

from contracts.attestation import (SECP256K1_N, Attestation, AttestationError, AttestationLeaf, Eip712Domain, JobKind,
                                   Verification, attestation_digest, job_id_bytes32, legacy_digest, proof_commitment,
                                   recover_digest_signer, recover_signer, sign_attestation)
from market.core import policy

DOMAIN = Eip712Domain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")


def make(provider: str, **kw) -> Attestation:
    base = dict(job_id=os.urandom(32), input_hash=os.urandom(32), result_hash=os.urandom(32), provider=provider,
                price_wei=12345 * 10**12, kind=JobKind.PROOF, verification=Verification.PROOF)
    return Attestation(**{**base, **kw})


@pytest.mark.parametrize("verification,ppm", [(Verification.PROOF, 0), (Verification.SPOT_CHECK, 123_456),
                                              (Verification.ATTEST_ONLY, 0)])
def test_digest_matches_eth_account_typed_data_encoder(verification: Verification, ppm: int) -> None:
    att = make(Account.create().address, verification=verification, sample_rate_ppm=ppm)
    message = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "Attestation": [{"name": "jobId", "type": "bytes32"}, {"name": "inputHash", "type": "bytes32"},
                            {"name": "resultHash", "type": "bytes32"}, {"name": "provider", "type": "address"},
                            {"name": "priceWei", "type": "uint256"}, {"name": "kind", "type": "uint8"},
                            {"name": "verification", "type": "uint8"}, {"name": "sampleRatePpm", "type": "uint32"}],
        },
        "primaryType": "Attestation",
        "domain": {"name": "raymarket", "version": "1", "chainId": DOMAIN.chain_id,
                   "verifyingContract": DOMAIN.verifying_contract},
        "message": {"jobId": att.job_id, "inputHash": att.input_hash, "resultHash": att.result_hash,
                    "provider": att.provider, "priceWei": att.price_wei, "kind": int(att.kind),
                    "verification": int(att.verification), "sampleRatePpm": att.sample_rate_ppm},
    }
    signable = encode_typed_data(full_message=message)
    assert keccak(b"\x19" + signable.version + signable.header + signable.body) == attestation_digest(att, DOMAIN)


def test_sign_and_recover_round_trip_and_rejections() -> None:
    key = "0x" + bytes(Account.create().key).hex()
    att = make(Account.from_key(key).address)
    signed = sign_attestation(att, key, DOMAIN)
    assert len(signed.signature) == 65
    assert recover_signer(att, signed.signature, DOMAIN) == att.provider
    assert recover_signer(att, signed.signature, Eip712Domain(1, DOMAIN.verifying_contract)) != att.provider
    assert recover_signer(make(att.provider), signed.signature, DOMAIN) != att.provider
    assert recover_signer(att, signed.signature[:64], DOMAIN) is None
    s = int.from_bytes(signed.signature[32:64], "big")
    v = signed.signature[64]
    malleable = signed.signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    assert recover_signer(att, malleable, DOMAIN) is None  # EIP-2 high-s form, same as the contract
    with pytest.raises(AttestationError, match="private_key"):
        sign_attestation(make(Account.create().address), key, DOMAIN)


def test_fields_are_validated_by_name() -> None:
    provider = Account.create().address
    with pytest.raises(AttestationError, match="job_id"):
        make(provider, job_id=b"short")
    with pytest.raises(AttestationError, match="provider"):
        make("0x1234")
    with pytest.raises(AttestationError, match="price_wei"):
        make(provider, price_wei=1.5)
    with pytest.raises(AttestationError, match="price_wei"):
        make(provider, price_wei=-1)
    with pytest.raises(AttestationError, match="kind"):
        make(provider, kind=7)
    with pytest.raises(TypeError, match="verification"):  # the policy has no default: the signer names it
        Attestation(os.urandom(32), os.urandom(32), os.urandom(32), provider, 1, JobKind.PROOF)
    with pytest.raises(AttestationError, match="verification"):
        make(provider, verification=3)
    with pytest.raises(AttestationError, match="verification"):
        make(provider, verification=True)
    for bad_ppm in (0, 1_000_001, -1):
        with pytest.raises(AttestationError, match="sample_rate_ppm"):
            make(provider, verification=Verification.SPOT_CHECK, sample_rate_ppm=bad_ppm)
    with pytest.raises(AttestationError, match="sample_rate_ppm"):  # a rate belongs to spot-check only
        make(provider, verification=Verification.ATTEST_ONLY, sample_rate_ppm=5)
    with pytest.raises(AttestationError, match="sample_rate_ppm"):
        make(provider, verification=Verification.SPOT_CHECK, sample_rate_ppm=0.5)
    with pytest.raises(AttestationError, match="proof"):
        proof_commitment(bytes(32), [1, 2, 3], [])


def test_job_id_mapping_and_leaf_hash_commits_to_everything() -> None:
    assert job_id_bytes32(b"\x05" * 32) == b"\x05" * 32  # an already-derived jobId passes through
    assert job_id_bytes32("job-7") == keccak(b"raymarket.attestation.jobId.v1\x00job-7")  # issue 14 finding 4
    assert job_id_bytes32("0x" + keccak(b"job-7").hex()) != keccak(b"job-7")
    key = "0x" + bytes(Account.create().key).hex()
    signed = sign_attestation(make(Account.from_key(key).address), key, DOMAIN)
    leaf = AttestationLeaf(signed, proof_commitment(b"\x01" * 32, list(range(8)), [3]))
    other = AttestationLeaf(signed, proof_commitment(b"\x01" * 32, list(range(8)), [4]))
    assert leaf.hash != other.hash != AttestationLeaf(signed).hash


def test_the_policy_is_signed_and_the_codes_agree_with_market_core_policy() -> None:
    assert {name: int(Verification[name.upper().replace("-", "_")]) for name in policy.POLICY_NAMES} \
        == policy.ATTESTATION_CODES
    assert policy.RATE_PPM == 1_000_000
    key = "0x" + bytes(Account.create().key).hex()
    att = make(Account.from_key(key).address, kind=JobKind.INFERENCE, verification=Verification.SPOT_CHECK,
               sample_rate_ppm=500_000)
    signed = sign_attestation(att, key, DOMAIN)
    for other in (dict(verification=Verification.ATTEST_ONLY, sample_rate_ppm=0), dict(sample_rate_ppm=500_001)):
        assert recover_signer(Attestation(**{**att.__dict__, **other}), signed.signature, DOMAIN) != att.provider
    # the struct from before the policy fields is a different digest (an outdated agent's signature is told apart)
    old = Account.unsafe_sign_hash(legacy_digest(att, DOMAIN), key).signature
    assert recover_signer(att, bytes(old), DOMAIN) != att.provider
    assert recover_digest_signer(legacy_digest(att, DOMAIN), bytes(old)) == att.provider
