"""Result checks before payment: hashes, the provider's EIP-712 signature, embeddings, spot samples."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from eth_utils import keccak

from eth_account import Account

from contracts.attestation import (Attestation, Eip712Domain, JobKind, Verification, job_id_bytes32, legacy_digest,
                                   sign_attestation)
from market.core.policy import parse_policy
from market.exchange.verification import (Expected, PolicyMismatch, ResultRejected, check_spot_sample, spot_sample,
                                          verify_embeddings, verify_output)
from providers.keys import address_of, new_key

DOMAIN = Eip712Domain(31337, "0x" + "22" * 20)


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _unit_rows(n: int, seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((n, 384)).astype(np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _signed(key: str, result_hash: bytes, price: int = 100, verification: Verification = Verification.SPOT_CHECK,
            ppm: int = 500_000, job_policy: str = "spot-check:0.5") -> tuple[Expected, bytes]:
    exp = Expected(job_id="j1", kind="inference", input_hash=b"\x01" * 32, price_wei=price,
                   provider_address=address_of(key), domain=DOMAIN, n_sentences=5,
                   policy=parse_policy(job_policy, "inference"))
    att = Attestation(job_id_bytes32("j1"), exp.input_hash, result_hash, exp.provider_address, price, JobKind.INFERENCE,
                      verification, ppm)
    return exp, sign_attestation(att, key, DOMAIN).signature


def test_valid_output_passes():
    key = new_key()
    data = _npy(_unit_rows(5))
    exp, sig = _signed(key, keccak(data))
    att = verify_output(exp, data, data, keccak(data), sig)
    assert att.provider == address_of(key)


def test_signature_by_someone_else_is_rejected():
    data = _npy(_unit_rows(5))
    exp, _ = _signed(new_key(), keccak(data))
    _, forged = _signed(new_key(), keccak(data))
    with pytest.raises(ResultRejected, match="signed by"):
        verify_output(exp, data, data, keccak(data), forged)


def test_signed_price_must_be_the_cleared_price():
    key = new_key()
    data = _npy(_unit_rows(5))
    exp, _ = _signed(key, keccak(data), price=100)
    _, sig_other_price = _signed(key, keccak(data), price=10**18)
    with pytest.raises(ResultRejected):
        verify_output(exp, data, data, keccak(data), sig_other_price)


@pytest.mark.parametrize("job_policy,verification,ppm,named", [
    ("spot-check:0.5", Verification.ATTEST_ONLY, 0, "attest-only"),  # a provider dodging its spot-check
    ("attest-only", Verification.SPOT_CHECK, 500_000, "spot-check:0.5"),
    ("spot-check:0.1", Verification.SPOT_CHECK, 500_000, "spot-check:0.5"),  # another rate
])
def test_attestation_under_another_policy_than_the_jobs_is_refused(job_policy, verification, ppm, named):
    key = new_key()
    data = _npy(_unit_rows(5))
    exp, sig = _signed(key, keccak(data), verification=verification, ppm=ppm, job_policy=job_policy)
    with pytest.raises(PolicyMismatch) as info:
        verify_output(exp, data, data, keccak(data), sig)
    assert info.value.field == "signature" and named in info.value.reason and job_policy in info.value.reason
    right = (Verification.ATTEST_ONLY, 0) if job_policy == "attest-only" else (Verification.SPOT_CHECK, int(
        parse_policy(job_policy).rate * 1_000_000))
    exp_ok, sig_ok = _signed(key, keccak(data), verification=right[0], ppm=right[1], job_policy=job_policy)
    att = verify_output(exp_ok, data, data, keccak(data), sig_ok)  # the job's own policy passes
    assert (att.verification, att.sample_rate_ppm) == right


def test_an_outdated_agents_pre_policy_attestation_is_refused_not_slashed():
    key = new_key()
    data = _npy(_unit_rows(5))
    exp, _ = _signed(key, keccak(data))
    att = Attestation(job_id_bytes32("j1"), exp.input_hash, keccak(data), exp.provider_address, 100, JobKind.INFERENCE,
                      Verification.SPOT_CHECK, 500_000)
    old = bytes(Account.unsafe_sign_hash(legacy_digest(att, DOMAIN), key).signature)
    with pytest.raises(PolicyMismatch, match="pre-policy"):
        verify_output(exp, data, data, keccak(data), old)


def test_result_hash_must_match_bytes():
    key = new_key()
    data = _npy(_unit_rows(5))
    exp, sig = _signed(key, keccak(b"other"))
    with pytest.raises(ResultRejected, match="hash"):
        verify_output(exp, data, data, keccak(b"other"), sig)


@pytest.mark.parametrize("arr,word", [
    (_unit_rows(4), "expected float32 (5, 384)"),
    (_unit_rows(5).astype(np.float64), "float32"),
    (np.full((5, 384), np.nan, np.float32), "non-finite"),
    (2 * _unit_rows(5), "unit"),
])
def test_bad_embeddings_are_rejected(arr, word):
    exp = Expected("j1", "inference", b"\x01" * 32, 1, "0x" + "33" * 20, DOMAIN, n_sentences=5)
    with pytest.raises(ResultRejected, match=re.escape(word)):
        verify_embeddings(exp, _npy(arr))


def test_spot_sample_is_deterministic_and_detects_a_wrong_row():
    secret, h = b"exchange-secret-0123456789", b"\x01" * 32
    rows = spot_sample(secret, "job-x", h, 100)
    assert rows == spot_sample(secret, "job-x", h, 100) and len(set(rows)) == 8
    assert rows != spot_sample(secret, "job-y", h, 100)
    exp = Expected("job-x", "inference", b"\x01" * 32, 1, "0x" + "33" * 20, DOMAIN, n_sentences=100)
    result = _unit_rows(100)
    ref = result[rows] + 1e-4  # a re-execution on other hardware: tiny float differences
    assert check_spot_sample(exp, result, rows, ref) > 0.999
    wrong = result.copy()
    wrong[rows[3]] = _unit_rows(1, seed=9)[0]
    with pytest.raises(ResultRejected, match=f"sentence {rows[3]}"):
        check_spot_sample(exp, wrong, rows, ref)
