"""Leases: every assignment is a lease that expires unless heartbeats (or the first poll) extend it.

``assigned`` (matched in a round) -> ``running`` (delivered by a poll) -> ``completed`` | ``rejected`` |
``failed`` (given back) | ``expired`` | ``revoked`` (the client cancelled). An expired lease sends its job
back to the next round without that provider (``fail_job`` with ``wrong_result=False``: infrastructure loss is
not slashed), until the job's attempts or deadline run out. A verification task (``spot``: lease id ``lv-...``,
the sample of a ``verifying`` job given to another provider) uses the same states and poll path; its expiry
only closes it (the loop's sweep asks another verifier). All functions take the open transaction first.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from market import exchange as ex
from market.core.tickets import ATTESTATION_KIND, DEV_SETUP_SEED
from market.db.models import JobBlob, JobRecord, LeaseRecord, ProviderRecord
from market.core import policy
from market.core.tickets import inference_input_hash
from market.exchange.service import batches, spot
from proving.formats.wtns_file import parse_wtns
from contracts.attestation import job_id_bytes32

OPEN = ("assigned", "running")


def create_leases(s: Session, assignments: Sequence[ex.Assignment], now_s: float, lease_s: float) -> list[str]:
    """One ``assigned`` lease per assignment, expiring ``lease_s`` seconds from ``now_s``; returns lease ids."""
    ids = []
    for a in assignments:
        job = ex.get_job(s, a.job_id)
        lease = LeaseRecord(lease_id=f"l-{uuid.uuid4().hex[:24]}", job_id=a.job_id, provider=a.provider,
                            attempt=job.attempt, status="assigned", price_wei=int(a.price_wei), created_at=now_s,
                            expires_at=now_s + lease_s)
        s.add(lease)
        ids.append(lease.lease_id)
    s.flush()
    batches.form(s, ids, now_s)  # the proof leases of one provider on one circuit key: a batch
    return ids


def claim(s: Session, provider: str, max_leases: int, now_s: float, lease_s: float) -> list[LeaseRecord]:
    """Deliver up to ``max_leases`` of ``provider``'s ``assigned`` leases: ``running``, expiry renewed, job started."""
    leases = list(s.scalars(select(LeaseRecord).where(LeaseRecord.provider == provider,
                                                      LeaseRecord.status == "assigned")
                            .order_by(LeaseRecord.created_at).limit(max_leases)))
    for lease in leases:
        lease.status, lease.delivered_at, lease.expires_at = "running", now_s, now_s + lease_s
        if not spot.is_verification(lease):
            ex.mark_started(s, lease.job_id, now_s)
    batches.delivered(s, leases, now_s)
    s.flush()
    return leases


def extend(s: Session, provider: str, job_ids: Sequence[str], now_s: float, lease_s: float) -> tuple[int, list[str]]:
    """Renew ``provider``'s open leases of ``job_ids`` to ``now_s + lease_s``.

    Returns:
        (how many were extended, the listed jobs it holds no open lease for: revoked, expired or unknown).
    """
    wanted = set(job_ids)
    leases = list(s.scalars(select(LeaseRecord).where(LeaseRecord.provider == provider,
                                                      LeaseRecord.status.in_(OPEN))))
    held = {lease.job_id for lease in leases}
    for lease in leases:
        if lease.job_id in wanted:
            lease.expires_at = now_s + lease_s
    return len(wanted & held), sorted(wanted - held)


def expire(s: Session, now_s: float, max_attempts: int) -> list[str]:
    """Close every open lease past its expiry and re-auction its job; returns the expired lease ids."""
    expired = list(s.scalars(select(LeaseRecord).where(LeaseRecord.status.in_(OPEN),
                                                       LeaseRecord.expires_at < now_s)))
    for lease in expired:
        close(s, lease, "expired", now_s, {"status": "expired", "reason": "lease expired"})
        if spot.is_verification(lease):  # a silent verifier: an infrastructure fault; the sweep asks another
            prov = s.get(ProviderRecord, lease.provider)
            if prov is not None:
                prov.reputation = policy.lowered_reputation(prov.reputation, wrong_result=False)
            continue
        job = s.get(JobRecord, lease.job_id)
        if job is not None and job.status in OPEN and job.provider == lease.provider:
            ex.fail_job(s, job.job_id, reason=f"lease {lease.lease_id} expired (provider {lease.provider} silent)",
                        wrong_result=False, max_attempts=max_attempts, now_s=now_s)
    return [lease.lease_id for lease in expired]


def sweep_stuck(s: Session, now_s: float, max_attempts: int) -> list[str]:
    """Return every ``assigned`` / ``running`` job that no open lease of its provider holds any more (an
    inconsistency: a crash between two writes, a bug) or whose deadline has passed: its open leases are closed
    ``expired`` and the job goes through ``fail_job`` (no slash: nothing shows a wrong result), which re-auctions it
    or, past its deadline or attempts, refunds the client. (``verifying`` jobs are swept by ``spot.sweep``.)
    Returns the job ids swept."""
    swept: list[str] = []
    jobs = list(s.scalars(select(JobRecord).where(JobRecord.status.in_(OPEN))))
    if not jobs:
        return swept
    by_job: dict[str, list[LeaseRecord]] = {}
    for lease in s.scalars(select(LeaseRecord).where(LeaseRecord.status.in_(OPEN))):
        if not spot.is_verification(lease):
            by_job.setdefault(lease.job_id, []).append(lease)
    for job in jobs:
        held = by_job.get(job.job_id, [])
        mine = [lease for lease in held if lease.provider == job.provider]
        if mine and job.deadline_s >= now_s:
            continue
        for lease in held:
            close(s, lease, "expired", now_s, {"job_id": job.job_id, "status": "expired", "reason": "swept"})
        why = "its deadline passed while it ran" if mine else "no open lease held it"
        ex.fail_job(s, job.job_id, reason=f"swept: {why} (provider {job.provider})", wrong_result=False,
                    max_attempts=max_attempts, now_s=now_s)
        swept.append(job.job_id)
    return swept


def close(s: Session, lease: LeaseRecord, status: str, now_s: float, outcome: dict[str, Any]) -> None:
    """Set the lease's final ``status`` and the ``outcome`` a retried upload gets back."""
    lease.status, lease.closed_at, lease.outcome = status, now_s, outcome
    batches.closed(s, lease, status, now_s)


def ticket(s: Session, job: JobRecord) -> dict[str, Any]:
    """What the runner needs (``market.core.tickets`` shapes): input text, or the proof statement and witness."""
    params = job.spec["params"]
    if job.kind == "inference":
        blob = s.get(JobBlob, (job.job_id, "input"))
        if blob is None:
            raise LookupError(f"job {job.job_id} has no stored input")
        return {"input_b64": base64.b64encode(blob.data).decode()}
    if "rounds" not in params:  # a registered circuit: the zkey by hash, the client's witness or input
        circuit = {"circuit": params["circuit"], "zkey_sha256": params["circuit"], "public": list(params["public"])}
        if params.get("witness_from") == "input":  # the provider computes the witness with the circuit's wasm
            blob = s.get(JobBlob, (job.job_id, "input_json"))
            if blob is None:
                raise LookupError(f"job {job.job_id} has no stored input")
            return {**circuit, "input_json": blob.data.decode(), "wasm_sha256": params["wasm_sha256"]}
        blob = s.get(JobBlob, (job.job_id, "witness"))
        if blob is None:
            raise LookupError(f"job {job.job_id} has no stored witness")
        circuit["witness_b64"] = base64.b64encode(blob.data).decode()
        if "example" in params:  # the MiMC-7 example: also its legacy statement (tests' stand-in provers read it)
            circuit.update(rounds=int(params["example"].split("-")[1]), preimage=str(parse_wtns(blob.data)[2]),
                           setup_seed=DEV_SETUP_SEED)
        return circuit
    return {"circuit": params["circuit"], "rounds": int(params["rounds"]), "preimage": params["preimage"],
            "public": list(params["public"]), "setup_seed": DEV_SETUP_SEED}


def lease_view(s: Session, lease: LeaseRecord, domain: Any) -> dict[str, Any]:
    """A delivered lease as ``lease.poll`` returns it (ticket and what the attestation must commit to). A
    verification task looks like an inference lease: its ticket is the sampled sentences only, its input hash
    their keccak, its price 0, its policy ``attest-only``. ``attestation.verification`` / ``sample_rate_ppm``
    (``market.core.policy.attestation_terms`` of the job's policy; ``policy``: its text) are signed as they are."""
    job = ex.get_job(s, lease.job_id)
    pol = spot.VERIFIER_POLICY if spot.is_verification(lease) else spot.job_policy(job)
    code, ppm = policy.attestation_terms(pol)
    att_domain = {"name": domain.name, "version": domain.version, "chainId": domain.chain_id,
                  "verifyingContract": domain.verifying_contract}
    input_hash, tk = job.input_hash, None
    if spot.is_verification(lease):
        rec = spot.record(s, job.job_id) or {"rows": []}
        text = spot.sample_text(s, job.job_id, rec["rows"])
        input_hash, tk = "0x" + inference_input_hash(text).hex(), {"input_b64": base64.b64encode(text).decode()}
    return {"lease_id": lease.lease_id, "job_id": job.job_id, "kind": job.kind, "expires_at": lease.expires_at,
            "price_wei": str(lease.price_wei), "batch_id": batches.batch_of(s, lease.lease_id),
            "attestation": {"domain": att_domain, "job_id_bytes32": "0x" + job_id_bytes32(job.job_id).hex(),
                            "input_hash": input_hash, "kind": ATTESTATION_KIND[job.kind], "verification": code,
                            "sample_rate_ppm": ppm, "policy": str(pol)},
            "ticket": tk if tk is not None else ticket(s, job)}
