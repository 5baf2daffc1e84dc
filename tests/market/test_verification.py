"""Result checks before payment: hashes, the provider's EIP-712 signature, embeddings, spot samples."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from eth_utils import keccak

from contracts.attestation import Attestation, Eip712Domain, JobKind, job_id_bytes32, sign_attestation
from market.exchange.verification import (Expected, ResultRejected, check_spot_sample, spot_sample, verify_embeddings,
                                 verify_output)
from providers.keys import address_of, new_key

DOMAIN = Eip712Domain(31337, "0x" + "22" * 20)


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _unit_rows(n: int, seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((n, 384)).astype(np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _signed(key: str, result_hash: bytes, price: int = 100) -> tuple[Expected, bytes]:
    exp = Expected(job_id="j1", kind="inference", input_hash=b"\x01" * 32, price_wei=price,
                   provider_address=address_of(key), domain=DOMAIN, n_sentences=5)
    att = Attestation(job_id_bytes32("j1"), exp.input_hash, result_hash, exp.provider_address, price, JobKind.INFERENCE)
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
