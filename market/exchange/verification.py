"""Checks a provider's result before any payment: signature, hashes, and the job kind's own check.

* every job: the result hash is keccak-256 of the returned bytes, and the EIP-712 attestation
  over (job id, input hash, result hash, provider, cleared price, kind, the job's verification
  policy) recovers to the provider's registered address; a signature that recovers to the
  provider under ANOTHER policy (or under the struct from before the policy fields) is refused
  as malformed (:class:`PolicyMismatch`: nothing changes, the provider may re-sign), not slashed;
* ``inference``: a ``.npy`` of shape ``(n_sentences, 384)``, ``float32``, finite, unit rows;
* ``proof``: the Groth16 proof verifies against the circuit's verification key for the
  job's public input (``proving.groth16.verifier``).

A failed check raises :class:`ResultRejected`; ``wrong_result`` tells a provable fault (a bad
result, slashed) from a malformed answer.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from dataclasses import dataclass

import numpy as np
from eth_utils import keccak

from contracts.attestation import (Attestation, Eip712Domain, JobKind, Verification, job_id_bytes32,
                                   legacy_digest, recover_digest_signer, recover_signer)
from market.core import policy as policies
from proving.errors import ProvingError
from proving.formats.snarkjs_json import proof_from_json, public_from_json
from proving.groth16.keys import VerifyingKey
from proving.groth16.verifier import verify


class ResultRejected(Exception):
    """A provider's result failed verification.

    Attributes:
        job_id: the job.
        reason: what failed, for the job's history.
        wrong_result: True when the provider signed a result that is provably wrong (slashable).
    """

    def __init__(self, job_id: str, reason: str, wrong_result: bool = True) -> None:
        super().__init__(f"job {job_id}: {reason}")
        self.job_id = job_id
        self.reason = reason
        self.wrong_result = wrong_result


@dataclass(frozen=True)
class Expected:
    """What the exchange knows about a job independently of the provider's answer.

    Attributes:
        job_id, kind, input_hash (32 bytes), price_wei, provider_address, domain.
        n_sentences: inference only, rows expected.
        public_inputs: proof only, the public signals the proof must be for.
        vk: proof only, the circuit's :class:`proving.groth16.keys.VerifyingKey`.
        policy: the job's verification policy (:class:`market.core.policy.VerificationPolicy`), signed into the
            attestation; ``None``: the kind's default (:func:`market.core.policy.default_policy`).
    """

    job_id: str
    kind: str
    input_hash: bytes
    price_wei: int
    provider_address: str
    domain: Eip712Domain
    n_sentences: int = 0
    public_inputs: tuple[int, ...] = ()
    vk: VerifyingKey | None = None
    policy: policies.VerificationPolicy | None = None

    @property
    def verification_policy(self) -> policies.VerificationPolicy:
        """The job's policy (``policy`` or the kind's default)."""
        return self.policy if self.policy is not None else policies.default_policy(self.kind)


class MalformedUpload(ValueError):
    """An upload that is not an answer at all (e.g. a signature no key could have made): refused, nothing changes
    (the provider may still send a real answer while its lease lasts). ``field`` names what is malformed."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


class PolicyMismatch(MalformedUpload):
    """The provider signed the attestation under another verification policy than the job's (``signed``: the
    policy text, or ``"none (pre-policy attestation)"``; ``expected``: the job's). Refused like any malformed
    upload: the job is not settled under a policy its client did not choose, and nothing is slashed."""

    def __init__(self, signed: str, expected: str) -> None:
        super().__init__("signature", f"the attestation is signed under verification {signed}, but this job's policy "
                                      f"is {expected}: sign the lease's attestation.verification / sample_rate_ppm")
        self.signed, self.expected = signed, expected


def attestation_for(exp: Expected, result_hash: bytes, pol: policies.VerificationPolicy | None = None) -> Attestation:
    """The attestation the provider must have signed for ``exp`` (under ``pol``, by default the job's policy).

    Raises:
        PolicyError: a policy whose rate is not a whole number of ppm.
    """
    code, ppm = policies.attestation_terms(pol if pol is not None else exp.verification_policy)
    return Attestation(job_id=job_id_bytes32(exp.job_id), input_hash=exp.input_hash, result_hash=result_hash,
                       provider=exp.provider_address, price_wei=exp.price_wei,
                       kind=JobKind.INFERENCE if exp.kind == "inference" else JobKind.PROOF,
                       verification=Verification(code), sample_rate_ppm=ppm)


def _other_policies(exp: Expected) -> list[policies.VerificationPolicy]:
    """Policies a provider might wrongly have signed instead of the job's: every fixed one and spot-check at the
    default rate (a rate cannot be searched; another rate is a plain bad signature)."""
    own = exp.verification_policy
    cands = [policies.VerificationPolicy("proof"), policies.VerificationPolicy("attest-only"),
             policies.VerificationPolicy("spot-check", policies.DEFAULT_SPOT_RATE)]
    return [c for c in cands if c != own]


def verify_attestation(exp: Expected, result_hash: bytes, signature: bytes) -> Attestation:
    """Rebuild the attestation from what the exchange expects and check the provider signed it.

    Raises:
        MalformedUpload: the signature recovers to no address (not 65 bytes, r/s/v out of range).
        PolicyMismatch: it recovers to the provider under another verification policy than the job's, or under
            the struct from before the policy fields (an outdated agent).
        ResultRejected: the signature recovers to another address than the provider's.
    """
    att = attestation_for(exp, result_hash)
    signer = recover_signer(att, signature, exp.domain)
    if signer is None:
        raise MalformedUpload("signature", "not a recoverable 65-byte ECDSA signature")
    if signer != att.provider:
        for other in _other_policies(exp):
            if recover_signer(attestation_for(exp, result_hash, other), signature, exp.domain) == att.provider:
                raise PolicyMismatch(str(other), str(exp.verification_policy))
        if recover_digest_signer(legacy_digest(att, exp.domain), signature) == att.provider:
            raise PolicyMismatch("none (pre-policy attestation; upgrade the agent)", str(exp.verification_policy))
        raise ResultRejected(exp.job_id, f"attestation signed by {signer}, not by provider {att.provider}")
    return att


def verify_embeddings(exp: Expected, npy: bytes) -> np.ndarray:
    """Check an inference result: ``(n_sentences, 384)`` float32, finite, unit-norm rows.

    Raises:
        ResultRejected: any check fails.
    """
    try:
        arr = np.load(io.BytesIO(npy), allow_pickle=False)
    except Exception as exc:  # malformed file
        raise ResultRejected(exp.job_id, f"result is not a .npy array ({exc})") from None
    if arr.dtype != np.float32 or arr.shape != (exp.n_sentences, 384):
        raise ResultRejected(exp.job_id, f"expected float32 ({exp.n_sentences}, 384), got {arr.dtype} {arr.shape}")
    if not np.isfinite(arr).all():
        raise ResultRejected(exp.job_id, "result has non-finite values")
    norms = np.linalg.norm(arr, axis=1)
    if not np.allclose(norms, 1.0, atol=1e-3):
        raise ResultRejected(exp.job_id, f"rows are not unit vectors (norms {norms.min():.4f}..{norms.max():.4f})")
    return arr


#: Spot re-execution: rows re-embedded by another provider, and the cosine similarity each must reach.
SPOT_SAMPLE_ROWS = 8
SPOT_MIN_COSINE = 0.99


def spot_sample(secret: bytes, job_id: str, result_hash: bytes, n_rows: int, k: int = SPOT_SAMPLE_ROWS) -> list[int]:
    """Rows to re-execute: ``min(k, n_rows)`` distinct indices drawn from
    ``HMAC-SHA256(secret, "raymarket.spot.v1" || job_id || result_hash)``.

    ``secret`` is the exchange's own (never sent to a provider) and ``result_hash`` the attested keccak of the
    result, so the rows cannot be known before the result is committed to (issue 14 finding 2: rows seeded by
    keccak(job_id) let a provider embed only those rows honestly). The same inputs give the same rows (replay).

    Raises:
        ValueError: ``secret`` shorter than 16 bytes, or ``result_hash`` not 32 bytes.
    """
    if len(secret) < 16:
        raise ValueError("spot_sample: the exchange secret must be at least 16 bytes")
    if len(result_hash) != 32:
        raise ValueError("spot_sample: result_hash must be the 32-byte attested hash")
    mac = hmac.new(secret, b"raymarket.spot.v1\x00" + job_id.encode() + b"\x00" + result_hash, hashlib.sha256)
    rng = np.random.default_rng(int.from_bytes(mac.digest(), "big"))
    return sorted(rng.choice(n_rows, size=min(k, n_rows), replace=False).tolist())


def check_spot_sample(exp: Expected, result: np.ndarray, rows: list[int], reference: np.ndarray,
                      min_cosine: float = SPOT_MIN_COSINE) -> float:
    """Compare ``result[rows]`` with the same rows re-embedded by another provider.

    Returns:
        The lowest cosine similarity over the rows.

    Raises:
        ResultRejected: a row's cosine similarity is below ``min_cosine`` (a wrong result).
    """
    got = result[rows].astype(np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    cos = np.sum(got * ref, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
    worst = float(cos.min())
    if worst < min_cosine:
        bad = rows[int(np.argmin(cos))]
        raise ResultRejected(exp.job_id, f"spot re-execution disagrees on sentence {bad}: cosine {worst:.4f} "
                                         f"< {min_cosine}")
    return worst


def verify_proof_result(exp: Expected, result: dict) -> None:
    """Check a proof result: its public signals are the job's and the Groth16 proof verifies.

    Raises:
        ResultRejected: wrong public signals, malformed proof, or a failed pairing check (with the reason).
    """
    try:
        public = public_from_json(result["public"])
        proof = proof_from_json(result["proof"])
    except (ProvingError, KeyError, TypeError, ValueError) as exc:
        raise ResultRejected(exp.job_id, f"malformed proof result: {exc}") from None
    if tuple(public) != tuple(exp.public_inputs):
        raise ResultRejected(exp.job_id, f"proof is for public inputs {public}, not {list(exp.public_inputs)}")
    if exp.vk is None:
        raise ResultRejected(exp.job_id, "no verifying key for this circuit", wrong_result=False)
    try:
        verify(exp.vk, public, proof)
    except ProvingError as exc:
        raise ResultRejected(exp.job_id, f"proof rejected: {type(exc).__name__}: {exc}") from None


def verify_output(exp: Expected, result: object, result_bytes: bytes, result_hash: bytes,
                  signature: bytes) -> Attestation:
    """All checks for one job's output; returns the verified attestation.

    Raises:
        ResultRejected: the first failing check.
    """
    if keccak(result_bytes) != result_hash:
        raise ResultRejected(exp.job_id, "result hash does not match the result bytes")
    att = verify_attestation(exp, result_hash, signature)
    if exp.kind == "inference":
        verify_embeddings(exp, result_bytes)
    else:
        verify_proof_result(exp, result)  # type: ignore[arg-type]
    return att
