"""Spot re-execution (issue 14 finding 2): an inference job is paid only after a DIFFERENT provider re-embeds a
secret sample of its sentences and agrees with the attested result.

The flow, each step in the caller's transaction:

1. :func:`begin` — the provider's upload passed the hash, signature and shape/norm checks: the result is kept,
   the job goes ``running -> verifying`` (event ``attested``), its escrow and the provider's collateral stay
   locked, and the sample is drawn: ``verification.spot_sample(secret, job id, attested result hash, n, k)``,
   ``secret`` being the exchange's own (:func:`exchange_secret`, 32 random bytes kept in ``service_meta``, never
   sent anywhere). The rows cannot be known before the result is committed to, and not from the job at all.
2. :func:`sweep` (every loop tick) — a ``verifying`` job without an open verification lease gets one for an
   online provider other than the one tested and than those that gave the job a wrong result (least tried first, ties in
   an order keyed by the secret, so the tested provider cannot pick its verifier). A verification lease is an
   ordinary inference lease to the agent (the normal poll path, lease id prefix ``lv-``): its ticket holds only
   the sampled sentences, its attestation commits to their keccak, at price 0, under ``attest-only`` (the
  verifier's answer is checked against the tested one, never settled on its own).
3. :func:`conclude` — the verifier's upload passes the same checks (its own signature, ``(k, 384)`` unit rows),
   then each sampled row is compared by cosine similarity with the tolerance of the two providers' embedding
   backends (``market.core.embeddings.spot_check_tolerance``; a provider that does not report
   ``hardware["embedding_backend"]`` counts as the loosest, ``onnx-int8``, so honest providers are never slashed
   for their backend). Agreement: the job is paid (``complete_job``) and its attestation queued for settlement.
   Disagreement: the tested provider is slashed (``fail_job(wrong_result=True)``: its collateral, reputation
   halved) and the job re-auctioned without it. A verifier whose upload is malformed, who gives the task back or
   goes silent, is not slashed (it holds no collateral): its lease closes, its reputation takes the
   infrastructure-fault factor, and another verifier is asked.

Rules chosen here (project choices):

* **The verifier is not paid.** A task is ``k`` sentences (8 by default, ~0.1 s of CPU), a duty of an online
  provider; paying it would need a fee leg the client did not agree to. It is never slashed either.
* **Unverifiable jobs are not paid.** With no other provider online (or every verifier failing) the job stays
  ``verifying``; at its deadline it ``expires`` to ``failed``: the client's escrow is refunded in full and the
  provider's collateral released (nothing shows it cheated), the result is dropped, the provider is not paid.
* **One disagreement slashes.** With two parties the exchange cannot tell which one lied; the verifier is chosen
  by the exchange after the result is committed, so a provider cannot arrange its own verifier. (Asking a third
  provider before slashing is left for later.)
* **Policy** (``market.core.policy``, the job's ``spec["verification"]``, else the kind's default
  ``spot-check:0.5``): ``spot-check:RATE`` re-executes ``policy.spot_sample_size`` = ``ceil(RATE * n)`` rows;
  ``attest-only`` pays on the attestation (no re-execution).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import secrets
from fractions import Fraction
import uuid
from typing import Any

import numpy as np
from eth_hash.auto import keccak
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.attestation import (Attestation, AttestationLeaf, JobKind, SignedAttestation, Verification,
                                   job_id_bytes32)
from market import exchange as ex
from market import ledger
from market.core import ids, policy
from market.core.embeddings import BACKEND_MIN_COSINE, spot_check_tolerance
from market.core.jobs import JobEvent, JobStatus, transition
from market.core.tickets import sentences_from_text
from market.db.models import JobBlob, JobEventRecord, JobRecord, LeaseRecord, ProviderRecord, ServiceMeta
from market.exchange.verification import SPOT_SAMPLE_ROWS, Expected, ResultRejected, check_spot_sample, spot_sample
from market.settlement.batching import add_attestation

SECRET_KEY = "spot_secret"
#: Lease ids of verification tasks start with this (an agent sees an ordinary inference lease).
LEASE_PREFIX = "lv-"
#: The policy a verification task's attestation is signed under (lease view and upload check agree on it).
VERIFIER_POLICY = policy.VerificationPolicy("attest-only")
#: Backend assumed for a provider that does not report one: the loosest tolerance (never unfair to it).
UNREPORTED_BACKEND = "onnx-int8"
OPEN = ("assigned", "running")


def exchange_secret(s: Session) -> bytes:
    """The exchange's spot-check secret (32 bytes), created on first use and kept in ``service_meta``."""
    row = s.get(ServiceMeta, SECRET_KEY)
    if row is None:
        row = ServiceMeta(key=SECRET_KEY, value=secrets.token_hex(32))
        s.add(row)
        s.flush()
    return bytes.fromhex(row.value)


def job_policy(job: JobRecord) -> policy.VerificationPolicy:
    """The job's verification policy: ``spec["verification"]`` (canonical text, ``market.core.policy``), else the
    kind's default (jobs from before policies; an unreadable one counts as the default, never as ``attest-only``)."""
    text = job.spec.get("verification")
    if text:
        try:
            return policy.parse_policy(str(text), job.kind)
        except policy.PolicyError:
            pass
    return policy.default_policy(job.kind)


def spot_rate(job: JobRecord) -> Fraction | None | str:
    """``"off"`` when the job is not spot-checked (a proof job, or ``attest-only``), else its rate (exact)."""
    pol = job_policy(job)
    return pol.rate if pol.name == "spot-check" else "off"


def sample_size(n_rows: int, rate: Fraction | float | None) -> int:
    """Rows to re-execute of ``n_rows``: ``ceil(rate * n)`` (at least 1, ``policy.spot_sample_size``), or
    ``SPOT_SAMPLE_ROWS`` without a rate."""
    if rate is None:
        return min(SPOT_SAMPLE_ROWS, n_rows)
    return policy.spot_sample_size(policy.VerificationPolicy("spot-check", Fraction(rate)), n_rows)


def is_verification(lease: LeaseRecord) -> bool:
    """True for a verification task's lease."""
    return lease.lease_id.startswith(LEASE_PREFIX)


def record(s: Session, job_id: str) -> dict[str, Any] | None:
    """The job's spot-check record (JSON in the ``spot`` blob), or None. ``history`` holds the records of its
    earlier attempts (a job re-auctioned after a mismatch), oldest first."""
    blob = s.get(JobBlob, (job_id, "spot"))
    return None if blob is None else json.loads(blob.data)


def _save(s: Session, job_id: str, rec: dict[str, Any]) -> None:
    data = json.dumps(rec, sort_keys=True).encode()
    blob = s.get(JobBlob, (job_id, "spot"))
    if blob is None:
        s.add(JobBlob(job_id=job_id, name="spot", size_bytes=len(data), data=data))
    else:
        blob.data, blob.size_bytes = data, len(data)


def _put_blob(s: Session, job_id: str, name: str, data: bytes) -> None:
    blob = s.get(JobBlob, (job_id, name))
    if blob is None:
        s.add(JobBlob(job_id=job_id, name=name, size_bytes=len(data), data=data))
    else:
        blob.data, blob.size_bytes = data, len(data)


def _event(s: Session, job: JobRecord, event: JobEvent, now_s: float, **detail: Any) -> None:
    job.status = transition(JobStatus(job.status), event).value
    job.updated_at = now_s
    s.add(JobEventRecord(job_id=job.job_id, at_s=now_s, event=event.value, status=job.status, detail=detail))


def begin(s: Session, job: JobRecord, lease: LeaseRecord, result: bytes, result_hash: str, signature: str,
          provider_address: str, rate: Fraction | None, now_s: float) -> dict[str, Any]:
    """Hold an attested inference result for its spot-check (see the module docstring, step 1).

    Returns:
        The spot record (``rows``, ``tested_provider``, ...).
    """
    n = int(job.spec["params"]["n_sentences"])
    rows = spot_sample(exchange_secret(s), job.job_id, bytes.fromhex(result_hash[2:]), n, sample_size(n, rate))
    _put_blob(s, job.job_id, "result", result)
    job.result_hash = result_hash.lower()
    job.attestation = {"job_id": job.job_id, "input_hash": job.input_hash, "result_hash": result_hash.lower(),
                       "provider": provider_address, "price_wei": str(lease.price_wei), "kind": job.kind,
                       "verification": str(job_policy(job)), "signature": signature.lower(),
                       "lease_id": lease.lease_id}
    earlier = record(s, job.job_id)  # a re-auctioned job's earlier checks stay readable (audit, tests)
    history = [] if earlier is None else [*earlier.pop("history", []), earlier]
    rec = {"attempt": job.attempt, "rows": rows, "tested_provider": job.provider, "tested_lease": lease.lease_id,
           "verifier_lease": None, "tries": {}, "started_at": now_s, "outcome": None, "history": history}
    _save(s, job.job_id, rec)
    _event(s, job, JobEvent.ATTESTED, now_s, provider=job.provider, sampled_rows=len(rows))
    return rec


def _order_key(secret: bytes, job: JobRecord, name: str) -> bytes:
    msg = f"raymarket.spot.verifier\x00{job.job_id}\x00{job.attempt}\x00{name}".encode()
    return hmac.new(secret, msg, hashlib.sha256).digest()


def wrong_result_providers(s: Session, job_id: str) -> set[str]:
    """Providers that gave ``job_id`` a wrong result on an earlier attempt (its ``fault`` events with
    ``wrong_result``). A provider excluded only for being silent (an expired lease) is not among them."""
    return {str(d.get("provider")) for d in s.scalars(
        select(JobEventRecord.detail).where(JobEventRecord.job_id == job_id, JobEventRecord.event == "fault"))
        if isinstance(d, dict) and d.get("wrong_result")}


def choose_verifier(s: Session, job: JobRecord, rec: dict[str, Any]) -> str | None:
    """An online provider to re-execute the sample: not the tested one, and not one that gave this job a wrong
    result before; least tried first, ties in a secret-keyed order. None when there is no such provider.

    A provider excluded from the job only because its lease expired (silent, ``wrong_result=False``) may verify:
    it lied about nothing, and barring it left a job unverifiable (``verifying`` until its deadline) whenever
    the market had two providers and one lease expired (found by ``benchmarks/inference.py --own-market 2``).
    """
    barred = {rec["tested_provider"], *wrong_result_providers(s, job.job_id)}
    names = [p for p in s.scalars(select(ProviderRecord.name).where(ProviderRecord.active.is_(True),
                                                                  ProviderRecord.draining.is_(False)))
             if p not in barred]
    if not names:
        return None
    secret = exchange_secret(s)
    return min(names, key=lambda p: (rec["tries"].get(p, 0), _order_key(secret, job, p)))


def dispatch(s: Session, job: JobRecord, now_s: float, lease_s: float) -> str | None:
    """Give ``job``'s sample to a verifier (an ``assigned`` lease) unless one holds it; returns the new lease id."""
    rec = record(s, job.job_id)
    if rec is None:
        return None
    open_id = rec.get("verifier_lease")
    if open_id:
        lease = s.get(LeaseRecord, open_id)
        if lease is not None and lease.status in OPEN:
            return None
    name = choose_verifier(s, job, rec)
    if name is None:
        return None
    lease = LeaseRecord(lease_id=f"{LEASE_PREFIX}{uuid.uuid4().hex[:24]}", job_id=job.job_id, provider=name,
                        attempt=job.attempt, status="assigned", price_wei=0, created_at=now_s,
                        expires_at=now_s + lease_s)
    s.add(lease)
    rec["verifier_lease"] = lease.lease_id
    rec["tries"][name] = rec["tries"].get(name, 0) + 1
    _save(s, job.job_id, rec)
    s.flush()
    return lease.lease_id


def sample_text(s: Session, job_id: str, rows: list[int]) -> bytes:
    """The sampled sentences, one per line (what the verifier embeds)."""
    blob = s.get(JobBlob, (job_id, "input"))
    if blob is None:
        raise LookupError(f"job {job_id} has no stored input")
    sentences = sentences_from_text(blob.data)
    return "\n".join(sentences[i] for i in rows).encode()


def expected(s: Session, lease: LeaseRecord, domain: Any) -> Expected:
    """What a verification lease's upload must be: ``(k, 384)`` rows of the sample, signed by the verifier."""
    rec = record(s, lease.job_id)
    prov = s.get(ProviderRecord, lease.provider)
    if rec is None or prov is None:
        raise LookupError(f"lease {lease.lease_id}: no spot-check record or provider")
    text = sample_text(s, lease.job_id, rec["rows"])
    return Expected(job_id=lease.job_id, kind="inference", input_hash=keccak(text), price_wei=int(lease.price_wei),
                    provider_address=prov.address, domain=domain, n_sentences=len(rec["rows"]),
                    policy=VERIFIER_POLICY)


def _backend(prov: ProviderRecord | None) -> str:
    name = (prov.hardware or {}).get("embedding_backend") if prov is not None else None
    return name if name in BACKEND_MIN_COSINE else UNREPORTED_BACKEND


def tolerance(s: Session, tested: str, verifier: str) -> float:
    """Least row cosine two honest providers reach with their reported backends."""
    return spot_check_tolerance(_backend(s.get(ProviderRecord, tested)), _backend(s.get(ProviderRecord, verifier)))


def _close(lease: LeaseRecord, status: str, now_s: float, outcome: dict[str, Any]) -> dict[str, Any]:
    lease.status, lease.closed_at, lease.outcome = status, now_s, outcome
    return outcome


def _verifier_failed(s: Session, lease: LeaseRecord, reason: str, now_s: float) -> dict[str, Any]:
    prov = s.get(ProviderRecord, lease.provider)
    if prov is not None:
        prov.reputation = policy.lowered_reputation(prov.reputation, wrong_result=False)
    return _close(lease, "rejected", now_s, {"job_id": lease.job_id, "status": "rejected", "reason": reason})


def conclude(s: Session, lease: LeaseRecord, rejection: ResultRejected | None, result: bytes, *, domain: Any,
             fee_bps: int, max_attempts: int, now_s: float) -> dict[str, Any]:
    """Apply a verifier's upload (step 3 of the module docstring); returns the verifier lease's outcome.

    Raises:
        ValueError: the lease is not the job's open verification lease (the caller maps it to ``conflict``).
    """
    job = ex.get_job(s, lease.job_id)
    rec = record(s, job.job_id)
    if (lease.status != "running" or job.status != JobStatus.VERIFYING.value or rec is None
            or rec.get("verifier_lease") != lease.lease_id):
        raise ValueError(f"lease {lease.lease_id} is {lease.status} (job {job.status}); the upload is not taken")
    if rejection is not None:
        return _verifier_failed(s, lease, f"verification answer refused: {rejection.reason}", now_s)
    tested = np.load(io.BytesIO(s.get(JobBlob, (job.job_id, "result")).data), allow_pickle=False)
    reference = np.load(io.BytesIO(result), allow_pickle=False)
    exp = Expected(job_id=job.job_id, kind="inference", input_hash=b"", price_wei=0, provider_address="",
                   domain=domain)
    min_cos = tolerance(s, rec["tested_provider"], lease.provider)
    try:
        worst = check_spot_sample(exp, tested, rec["rows"], reference, min_cosine=min_cos)
    except ResultRejected as rej:
        rec["outcome"] = {"status": "mismatch", "verifier": lease.provider, "reason": rej.reason}
        _save(s, job.job_id, rec)
        s.delete(s.get(JobBlob, (job.job_id, "result")))
        job.result_hash, job.attestation = None, None
        ex.fail_job(s, job.job_id, reason=f"spot re-execution by {lease.provider}: {rej.reason}"[:1900],
                    wrong_result=True, max_attempts=max_attempts, now_s=now_s)
        return _close(lease, "completed", now_s, {"job_id": job.job_id, "status": "mismatch", "reason": rej.reason})
    rec["outcome"] = {"status": "agreed", "verifier": lease.provider, "min_cosine": worst, "tolerance": min_cos}
    _save(s, job.job_id, rec)
    pay(s, job, domain, fee_bps=fee_bps, now_s=now_s, verified_by=lease.provider)
    return _close(lease, "completed", now_s, {"job_id": job.job_id, "status": "agreed", "reason": None})


def pay(s: Session, job: JobRecord, domain: Any, *, fee_bps: int, now_s: float, verified_by: str) -> None:
    """Pay the verified job and queue the tested provider's signed attestation for settlement."""
    att = dict(job.attestation or {})
    code, ppm = policy.attestation_terms(job_policy(job))  # what the tested provider signed (its upload's check)
    ex.complete_job(s, job.job_id, result_path=f"db:job_blobs/{job.job_id}/result", result_hash=att["result_hash"],
                    attestation=att, fee_bps=fee_bps, now_s=now_s)
    attestation = Attestation(job_id=job_id_bytes32(job.job_id), input_hash=bytes.fromhex(job.input_hash[2:]),
                              result_hash=bytes.fromhex(att["result_hash"][2:]), provider=att["provider"],
                              price_wei=int(att["price_wei"]), kind=JobKind.INFERENCE,
                              verification=Verification(code), sample_rate_ppm=ppm)
    leaf = AttestationLeaf(SignedAttestation(attestation, bytes.fromhex(att["signature"][2:]), domain))
    add_attestation(s, leaf, added_at_s=now_s, job_ref=job.job_id)


def expire_unverified(s: Session, job: JobRecord, now_s: float) -> None:
    """The deadline passed with the job still ``verifying``: refund the client in full, release the provider's
    collateral, drop the result; the job ``failed`` (the rule of the module docstring)."""
    rec = record(s, job.job_id) or {}
    for lease in s.scalars(select(LeaseRecord).where(LeaseRecord.job_id == job.job_id,
                                                     LeaseRecord.status.in_(OPEN))):
        _close(lease, "revoked", now_s, {"job_id": job.job_id, "status": "revoked", "reason": "job expired"})
    if job.collateral_wei > 0 and job.provider is not None:
        ledger.unlock_collateral(s, ids.collateral_unlock_id(job.job_id, job.attempt), job.provider, job.job_id)
    ledger.void_escrow(s, ids.refund_id(job.job_id, job.attempt), job.job_id)
    blob = s.get(JobBlob, (job.job_id, "result"))
    if blob is not None:
        s.delete(blob)
    rec["outcome"] = {"status": "unverified"}
    _save(s, job.job_id, rec)
    _event(s, job, JobEvent.EXPIRED, now_s, reason="deadline passed before any other provider could verify the "
           f"result ({sum(rec.get('tries', {}).values())} verification tasks tried); refunded, not paid")


def sweep(s: Session, now_s: float, lease_s: float) -> tuple[list[str], list[str]]:
    """Every ``verifying`` job: past its deadline, :func:`expire_unverified`; else make sure a verifier holds its
    sample (:func:`dispatch`). Returns (verification lease ids created, job ids expired)."""
    created, expired = [], []
    for job in s.scalars(select(JobRecord).where(JobRecord.status == JobStatus.VERIFYING.value)):
        if job.deadline_s < now_s:
            expire_unverified(s, job, now_s)
            expired.append(job.job_id)
        elif (lease_id := dispatch(s, job, now_s, lease_s)) is not None:
            created.append(lease_id)
    return created, expired
