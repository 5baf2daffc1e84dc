"""A provider's upload: verify it (outside any transaction), then pay or re-auction in ONE transaction.

Verification (``market.exchange.verification``): keccak-256 of the bytes is the claimed result hash; the EIP-712
attestation over (job id, input hash, result hash, provider, cleared price, kind, the job's verification policy)
recovers to the provider's registered address (one signed under another policy is refused, ``invalid``); inference: ``float32 (n, 384)`` unit rows; proof: the Groth16 proof verifies for the job's
public input. Accepted: the result is stored, the provider paid (``complete_job``), the attestation queued for
settlement, the lease ``completed`` -- except a spot-checked inference job, which is held ``verifying`` until
another provider re-executes a secret sample of it (``market.exchange.service.spot``; the verifier's upload comes
through here too, on its ``lv-`` lease). Rejected: ``fail_job`` (a provably wrong result slashes the collateral)
and the lease ``rejected``. The lease keeps the answer: a retried upload gets the same one, and a job is never
paid twice (the lease and job states and the ledger's idempotent transfer ids all guard it).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from eth_hash.auto import keccak
from sqlalchemy.orm import Session

from contracts.attestation import AttestationLeaf, SignedAttestation, proof_commitment
from contracts.bindings import g1_words, g2_words
from market import exchange as ex
from market.core.tickets import TicketInputError, dev_proving_key, parse_proof_bytes
from market.db.models import CircuitRecord, JobBlob, JobLogLine, LeaseRecord, ProviderRecord
from market.exchange import circuits
from market.exchange.service import batches, leases, spot
from market.exchange.service.errors import ServiceError, conflict, not_found, not_owner
from market.exchange.verification import Expected, MalformedUpload, ResultRejected, verify_output
from market.protocol import CompletePayload, ErrorCode, MAX_LOG_LINE_CHARS
from market.settlement.batching import add_attestation
from proving.formats.snarkjs_json import proof_from_json

DONE = ("completed", "rejected")


@dataclass(frozen=True)
class Verdict:
    """The outcome of verification: the attestation (accepted) or the rejection."""

    result: bytes
    attestation: Any = None
    rejection: ResultRejected | None = None
    figures: Any = None  # batches.VerifyFigures: how it was verified (group, checks, seconds)


def owned_lease(s: Session, signer: str, lease_id: str, job_id: str) -> LeaseRecord:
    """The lease, when the signer is its provider and ``job_id`` is its job.

    Raises:
        ServiceError: ``not_found``, ``not_owner``, ``invalid`` (job id mismatch).
    """
    lease = s.get(LeaseRecord, lease_id)
    if lease is None:
        raise not_found("lease", lease_id)
    prov = s.get(ProviderRecord, lease.provider)
    if prov is None or prov.address != signer:
        raise not_owner("lease", lease_id)
    if lease.job_id != job_id:
        raise ServiceError(ErrorCode.INVALID, f"job_id: lease {lease_id} is for another job", "send the lease's job_id")
    return lease


def decode_result(p: CompletePayload, max_bytes: int) -> bytes:
    """The uploaded bytes. Raises ServiceError ``too_large`` / ``invalid``."""
    if len(p.result_b64) > max_bytes * 4 // 3 + 4:
        raise ServiceError(ErrorCode.TOO_LARGE, f"result over {max_bytes} bytes", "")
    try:
        return base64.b64decode(p.result_b64, validate=True)
    except (binascii.Error, ValueError):
        raise ServiceError(ErrorCode.INVALID, "result_b64: not base64", "base64-encode the result bytes") from None


def expected(s: Session, lease: LeaseRecord, domain: Any, vk_for: Any) -> Expected:
    """What the exchange knows about the leased job independently of the upload."""
    if spot.is_verification(lease):
        return spot.expected(s, lease, domain)
    job = ex.get_job(s, lease.job_id)
    params = job.spec["params"]
    kw: dict[str, Any] = {}
    if job.kind == "inference":
        kw["n_sentences"] = int(params["n_sentences"])
    else:
        kw["public_inputs"] = tuple(int(x) for x in params["public"])
        if "rounds" in params:
            kw["vk"] = vk_for(int(params["rounds"]))
        else:  # a registered circuit: its stored verification key (market.exchange.circuits)
            rec = s.get(CircuitRecord, params["circuit"])
            if rec is None:
                raise not_found("circuit", params["circuit"])
            kw["vk"] = circuits.verifying_key(rec)
    prov = s.get(ProviderRecord, lease.provider)
    if prov is None:
        raise not_found("provider", lease.provider)
    return Expected(job_id=job.job_id, kind=job.kind, input_hash=bytes.fromhex(job.input_hash[2:]),
                    price_wei=int(lease.price_wei), provider_address=prov.address, domain=domain,
                    policy=spot.job_policy(job), **kw)


def verify(exp: Expected, result: bytes, p: CompletePayload) -> Verdict:
    """Run every check; never raises for a bad result (the verdict says why).

    Raises:
        ServiceError: ``invalid`` for an upload that is no answer at all (``MalformedUpload``): nothing changes.
    """
    try:
        obj: Any = result
        if exp.kind == "proof":
            proof, public = parse_proof_bytes(result)
            obj = {"proof": proof, "public": public}
        att = verify_output(exp, obj, result, bytes.fromhex(p.result_hash[2:]), bytes.fromhex(p.signature[2:]))
        return Verdict(result, att)
    except TicketInputError as exc:
        return Verdict(result, rejection=ResultRejected(exp.job_id, str(exc)))
    except ResultRejected as rej:
        return Verdict(result, rejection=rej)
    except MalformedUpload as bad:
        raise ServiceError(ErrorCode.INVALID, f"payload.{bad.field}: {bad.reason}", "sign the attestation with the "
                           "provider's key (providers.jobs.sign_result)") from None


def _leaf(exp: Expected, verdict: Verdict, signature: bytes, rounds: int | None,
          circuit: str | None = None) -> AttestationLeaf:
    signed = SignedAttestation(verdict.attestation, signature, exp.domain)
    if exp.kind != "proof":
        return AttestationLeaf(signed)
    proof, _ = parse_proof_bytes(verdict.result)
    pr = proof_from_json(proof)
    words = [*g1_words(pr.a), *g2_words(pr.b), *g1_words(pr.c)]
    circuit_key = keccak(f"mimc7-{rounds}".encode()) if rounds is not None else bytes.fromhex(str(circuit))
    return AttestationLeaf(signed, proof_commitment(circuit_key, words,
                                                    list(exp.public_inputs)))


def store_logs(s: Session, lease: LeaseRecord, lines: list[str], now_s: float) -> None:
    """Append the provider's log lines to the job's log (each cut to the line limit)."""
    for line in lines:
        s.add(JobLogLine(job_id=lease.job_id, lease_id=lease.lease_id, provider=lease.provider, at_s=now_s,
                         line=str(line)[:MAX_LOG_LINE_CHARS]))


def apply(s: Session, lease: LeaseRecord, exp: Expected, verdict: Verdict, p: CompletePayload, *, fee_bps: int,
          max_attempts: int, now_s: float) -> dict[str, Any]:
    """Pay (accepted) or re-auction (rejected) in the caller's transaction; returns the lease's outcome
    (the caller returns the stored outcome of a lease already ``completed`` / ``rejected``).

    Raises:
        ServiceError: ``conflict`` when the lease is no longer running (expired, revoked, given back).
    """
    if spot.is_verification(lease):  # the verifier's logs are not the client's job's: not stored
        try:
            return spot.conclude(s, lease, verdict.rejection, verdict.result, domain=exp.domain, fee_bps=fee_bps,
                                 max_attempts=max_attempts, now_s=now_s)
        except ValueError as exc:
            raise conflict(str(exc), "the verification task was closed; drop it") from None
    job = ex.get_job(s, lease.job_id)
    if lease.status != "running" or job.status != "running" or job.provider != lease.provider:
        raise conflict(f"lease {lease.lease_id} is {lease.status} (job {job.status}); the upload is not taken",
                       "the job was re-auctioned or cancelled; drop it")
    store_logs(s, lease, p.logs, now_s)
    batches.record_upload(s, lease, verdict, p.result_hash, now_s)  # provenance of a proof batch's member
    if verdict.rejection is not None:
        rej = verdict.rejection
        ex.fail_job(s, job.job_id, reason=rej.reason, wrong_result=rej.wrong_result, max_attempts=max_attempts,
                    now_s=now_s)
        outcome: dict[str, Any] = {"job_id": job.job_id, "status": "rejected", "reason": rej.reason}
        leases.close(s, lease, "rejected", now_s, outcome)
        return outcome
    if (rate := spot.spot_rate(job)) != "off":  # held, not paid, until another provider agrees on a sample
        spot.begin(s, job, lease, verdict.result, p.result_hash, p.signature, exp.provider_address, rate, now_s)
        outcome = {"job_id": job.job_id, "status": "verifying", "reason": None}
        leases.close(s, lease, "completed", now_s, outcome)
        return outcome
    s.add(JobBlob(job_id=job.job_id, name="result", size_bytes=len(verdict.result), data=verdict.result))
    sig = bytes.fromhex(p.signature[2:])
    attestation = {"job_id": job.job_id, "input_hash": job.input_hash, "result_hash": p.result_hash.lower(),
                   "provider": exp.provider_address, "price_wei": str(exp.price_wei), "kind": job.kind,
                   "verification": str(exp.verification_policy), "signature": p.signature.lower(),
                   "lease_id": lease.lease_id}
    ex.complete_job(s, job.job_id, result_path=f"db:job_blobs/{job.job_id}/result",
                    result_hash=p.result_hash.lower(), attestation=attestation, fee_bps=fee_bps, now_s=now_s)
    rounds = job.spec["params"].get("rounds")
    add_attestation(s, _leaf(exp, verdict, sig, rounds, job.spec["params"].get("circuit")), added_at_s=now_s,
                    job_ref=job.job_id)
    circuits.drop_witness(s, job.job_id)  # the client's secret is not kept once the job is paid
    outcome = {"job_id": job.job_id, "status": "paid", "reason": None}
    leases.close(s, lease, "completed", now_s, outcome)
    return outcome


def verifying_key_cache(cache: dict[int, Any], keys_dir: Any) -> Any:
    """``vk_for(rounds)``: the MiMC-7 dev verifying key, built once per round count (and kept on disk)."""
    def vk_for(rounds: int) -> Any:
        if rounds not in cache:
            cache[rounds] = dev_proving_key(rounds, keys_dir).vk
        return cache[rounds]

    return vk_for
