"""Client actions on jobs: submit (escrow), cancel (refund), balance. Each takes the open transaction first.

Cancel rule: before a result is accepted a client may cancel. ``open``: the escrow comes back in full.
``assigned`` / ``running``: the provider's lease is revoked (its heartbeat reports the job in ``revoked``, an
upload is refused with ``conflict``), its collateral is released (no fault of its own), the escrow comes back
in full and the provider is not paid for partial work. ``verified`` and later: refused (``conflict``).
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from market import exchange as ex
from market import ledger
from market.ledger import chain as chain_ledger
from market.core import ids
from market.core.jobs import JobEvent, JobStatus, transition
from market.core.orders import MAX_WEI as MATCHING_MAX_WEI
from market.core.pricing import reference_seconds
from market.core.policy import (PolicyError, VerificationPolicy, default_policy, parse_policy, prover_budget_wei,
                                required_collateral_wei)
from proving.field import FR_MODULUS
from market.core.tickets import (TicketInputError, circuit_input_hash, hex32, inference_input_hash, is_circuit_id,
                                 proof_input_hash, proof_ticket, sentences_from_text)
from market.db.models import CircuitRecord, JobBlob, JobEventRecord, JobRecord, LeaseRecord
from market.core.circuit_input import CircuitInputError, canonical_input_bytes, parse_input
from market.exchange import circuits
from market.exchange.service.config import ServiceConfig
from market.exchange.service.errors import ServiceError, conflict, invalid, not_found, not_owner
from market.protocol import ErrorCode, JobSpecIn

CANCELLABLE = (JobStatus.OPEN.value, JobStatus.ASSIGNED.value, JobStatus.RUNNING.value)
UNFINISHED = (JobStatus.OPEN.value, JobStatus.ASSIGNED.value, JobStatus.RUNNING.value, JobStatus.VERIFYING.value,
              JobStatus.VERIFIED.value)
#: Reference-machine seconds per sentence embedded (an inference job's duration estimate).
SENTENCES_PER_S = 20


def proof_estimate_s(n_constraints: int) -> int:
    """A proof job's duration estimate at the reference machine, seconds: its constraints at
    ``REFERENCE_UNITS_PER_S["proof"]`` (``market.core.pricing.reference_seconds``, at least 1). Issue 14: a fixed
    30 s for every proof (even a 16-constraint one) made a provider measured at speed 0.03 under load unable to
    meet any deadline under 1000 s, so small proof jobs expired unmatched."""
    return reference_seconds("proof", n_constraints)


def decode_input(spec: JobSpecIn, config: ServiceConfig) -> bytes:
    """The inference input bytes from ``input_b64``.

    Raises:
        ServiceError: ``too_large`` over ``max_input_bytes``; ``invalid`` not base64, not UTF-8, no sentence.
    """
    b64 = spec.input_b64 or ""
    if len(b64) > config.max_input_bytes * 4 // 3 + 4:
        raise ServiceError(ErrorCode.TOO_LARGE, f"input over {config.max_input_bytes} bytes", "split the job")
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("spec.input_b64", "not base64") from None


def job_spec(signer: str, spec: JobSpecIn, config: ServiceConfig,
             s: Session | None = None) -> tuple[ex.JobSpec, bytes | None]:
    """The exchange's :class:`JobSpec` for a client's spec, and the input bytes to keep (inference text, or the
    witness of a proof on a registered circuit: ``s`` is needed to look the circuit up).

    Raises:
        ServiceError: ``invalid`` / ``too_large`` (see :func:`decode_input`); too many proof rounds; an unknown
        circuit (``not_found``); a witness that does not fit the circuit or its claimed public signals.
    """
    job_id = spec.job_id or f"j-{uuid.uuid4().hex[:20]}"
    policy, collateral = verification_terms(spec)
    common: dict[str, Any] = dict(job_id=job_id, client=signer, kind=spec.kind, max_price_wei=spec.max_price_wei,
                  deadline_s=spec.deadline_s, cpus=spec.cpus, gpus=spec.gpus, gpu_model=spec.gpu_model,
                  memory_bytes=spec.memory_bytes, collateral_wei=collateral, verification=str(policy),
                  budget_wei=prover_budget_wei(spec.max_price_wei, policy))
    if spec.kind == "inference":
        data = decode_input(spec, config)
        try:
            n = len(sentences_from_text(data))
        except TicketInputError as exc:
            raise invalid("spec.input_b64", str(exc)) from None
        params = {"n_sentences": n, "input_bytes": len(data)}
        return ex.JobSpec(input_hash=hex32(inference_input_hash(data)), params=params,
                          duration_estimate_s=max(1, n // SENTENCES_PER_S), **common), data
    if spec.kind == "proof" and is_circuit_id(str(spec.circuit)):
        return _circuit_spec(s, spec, config, common)
    rounds = int(spec.rounds or 0)  # the model guarantees circuit, rounds and preimage for proof jobs
    if rounds > config.max_proof_rounds:
        raise invalid("spec.rounds", f"at most {config.max_proof_rounds} rounds")
    if int(spec.preimage or 0) >= FR_MODULUS:  # never echo the preimage: it is the client's secret
        raise invalid("spec.preimage", "must be below the BN254 scalar field modulus")
    if s is not None:  # the MiMC-7 example is one registered circuit per round count (issue 13), on first use
        rec = circuits.ensure_mimc(s, rounds, time.time())
        wtns = circuits.mimc_witness(int(spec.preimage or 0), rounds)
        public = circuits.witness_public(rec, wtns, None)
        params = {"circuit": rec.circuit_id, "public": [str(x) for x in public], "n_constraints": rec.n_constraints,
                  "example": f"mimc7-{rounds}"}
        return ex.JobSpec(input_hash=hex32(circuit_input_hash(rec.circuit_id, public)), params=params,
                          duration_estimate_s=proof_estimate_s(rec.n_constraints), **common), wtns
    ticket = proof_ticket(int(spec.preimage or 0), rounds, str(spec.circuit))  # a quote: no session, no intake
    params = {k: ticket[k] for k in ("circuit", "rounds", "public")}
    input_hash = hex32(proof_input_hash(ticket["circuit"], ticket["rounds"], int(ticket["public"][0])))
    return ex.JobSpec(input_hash=input_hash, params=params, duration_estimate_s=proof_estimate_s(4 * rounds),
                      **common), None


def verification_terms(spec: JobSpecIn) -> tuple[VerificationPolicy, int]:
    """The job's verification policy (``spec.verification``, else the kind's default) and its collateral: the
    client's, else the policy's required collateral (``market.core.policy``; issue 13, issue 14 #5).

    Raises:
        ServiceError: ``invalid`` naming ``spec.verification`` (unknown policy, or one the kind cannot use) or
            ``spec.collateral_wei`` (below what the policy requires at this max price).
    """
    try:
        policy = parse_policy(spec.verification, spec.kind) if spec.verification else default_policy(spec.kind)
    except PolicyError as exc:
        raise invalid("spec.verification", str(exc)) from None
    if prover_budget_wei(spec.max_price_wei, policy) == 0:
        raise invalid("spec.max_price_wei", f"{spec.max_price_wei} wei leaves nothing for the provider after "
                      f"verification {str(policy)!r} takes its share: raise it")
    need = required_collateral_wei(spec.max_price_wei, policy)
    if spec.collateral_wei and spec.collateral_wei < need:
        raise invalid("spec.collateral_wei", f"{spec.collateral_wei} wei is below the {need} wei that verification "
                      f"{str(policy)!r} requires at max price {spec.max_price_wei} wei: raise it or leave it out")
    collateral = spec.collateral_wei or need
    for field, wei in (("spec.max_price_wei", spec.max_price_wei), ("spec.collateral_wei", collateral)):
        if wei >= MATCHING_MAX_WEI:  # the matching engine's exact int64 bound (market.core.orders.MAX_WEI)
            raise invalid(field, f"{wei} wei is over the matching engine's limit of {MATCHING_MAX_WEI - 1} wei "
                          f"(2^62 - 1){' (the collateral ' + str(policy) + ' requires)' if wei == need else ''}: "
                          "lower it")
    return policy, collateral


def _circuit_spec(s: Session | None, spec: JobSpecIn, config: ServiceConfig,
                  common: dict[str, Any]) -> tuple[ex.JobSpec, bytes]:
    """A proof job on a registered circuit: the witness checked against the circuit, or the input validated and
    its public signals evaluated with the circuit's wasm (``circuits.input_public``). The witness / input is
    kept only as the job's blob, never in params or logs."""
    rec = s.get(CircuitRecord, str(spec.circuit)) if s is not None else None
    if rec is None:
        raise not_found("circuit", str(spec.circuit))
    if spec.input_json is not None:
        try:
            inp = parse_input(spec.input_json)
        except CircuitInputError as exc:
            raise invalid(f"spec.input_json ({exc.field})", exc.rule) from None
        try:
            public = circuits.input_public(rec, inp)
        except circuits.CircuitError as exc:
            raise invalid("spec.input_json", str(exc)) from None
        if spec.public is not None and [int(x) for x in spec.public] != public:
            raise invalid("spec.public", "the input's public signals are not the ones given in `public`")
        params = {"circuit": rec.circuit_id, "public": [str(x) for x in public], "n_constraints": rec.n_constraints,
                  "witness_from": "input", "wasm_sha256": rec.wasm_sha256}
        return ex.JobSpec(input_hash=hex32(circuit_input_hash(rec.circuit_id, public)), params=params,
                          duration_estimate_s=proof_estimate_s(rec.n_constraints), **common), canonical_input_bytes(inp)
    b64 = spec.witness_b64 or ""
    if len(b64) > config.max_input_bytes * 4 // 3 + 4:
        raise ServiceError(ErrorCode.TOO_LARGE, f"witness over {config.max_input_bytes} bytes", "")
    try:
        wtns = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("spec.witness_b64", "not base64") from None
    try:
        public = circuits.witness_public(rec, wtns, spec.public)
    except circuits.CircuitError as exc:
        raise invalid("spec.witness_b64", str(exc)) from None
    params = {"circuit": rec.circuit_id, "public": [str(x) for x in public], "n_constraints": rec.n_constraints}
    input_hash = hex32(circuit_input_hash(rec.circuit_id, public))
    return ex.JobSpec(input_hash=input_hash, params=params, duration_estimate_s=proof_estimate_s(rec.n_constraints),
                      **common), wtns


def submit(s: Session, signer: str, spec_in: JobSpecIn, config: ServiceConfig, now_s: float) -> JobRecord:
    """Record the job and escrow its max price from the signer's balance (idempotent on the job id).

    Raises:
        ServiceError: ``conflict`` (id taken by another job or client), ``insufficient_funds``, ``invalid``.
    """
    spec, data = job_spec(signer, spec_in, config, s)
    existing = s.get(JobRecord, spec.job_id)
    if existing is not None and existing.client != signer:
        raise conflict(f"job id {spec.job_id!r} is taken", "pick another job_id (or omit it)")
    ledger.open_system_accounts(s)
    ledger.open_client(s, signer)
    if (owed := chain_ledger.debt_wei(s, signer)) > 0:  # the debt rule of market.ledger.chain
        raise ServiceError(ErrorCode.INSUFFICIENT_FUNDS, f"{signer} owes {owed} wei after a chain reorg removed a "
                           "deposit it had spent", "deposit at least that much (it covers the debt first)")
    try:
        job = ex.submit_job(s, spec, now_s=now_s)
    except ex.InvalidJob as exc:
        raise conflict(str(exc), "pick another job_id") from None
    except (ledger.InsufficientFunds, ledger.UnknownAccount):
        have = ledger.balance(s, ledger.client_account(signer))
        raise ServiceError(ErrorCode.INSUFFICIENT_FUNDS, f"balance {have} wei < max price {spec.max_price_wei} wei",
                           "deposit first (development: `raymarket dev` faucet)") from None
    blob_name = "input" if spec.kind == "inference" else "input_json" if spec_in.input_json else "witness"
    if data is not None and s.get(JobBlob, (job.job_id, blob_name)) is None:
        s.add(JobBlob(job_id=job.job_id, name=blob_name, size_bytes=len(data), data=data))
    return job


def owned_job(s: Session, signer: str, job_id: str) -> JobRecord:
    """The job, when ``signer`` is its client.

    Raises:
        ServiceError: ``not_found``, ``not_owner``.
    """
    job = s.get(JobRecord, job_id)
    if job is None:
        raise not_found("job", job_id)
    if job.client != signer:
        raise not_owner("job", job_id)
    return job


def record(s: Session, job: JobRecord, event: JobEvent, now_s: float, **detail: object) -> None:
    """Apply ``event`` (pure transition) and append it to the job's history."""
    job.status = transition(JobStatus(job.status), event).value
    job.updated_at = now_s
    s.add(JobEventRecord(job_id=job.job_id, at_s=now_s, event=event.value, status=job.status, detail=detail))


def cancel(s: Session, signer: str, job_id: str, now_s: float | None = None) -> JobRecord:
    """Cancel under the module's rule: revoke the lease, release collateral, refund the escrow in full.

    Raises:
        ServiceError: ``not_found``, ``not_owner``, ``conflict`` (already verified, paid or finished).
    """
    now_s = time.time() if now_s is None else now_s
    job = owned_job(s, signer, job_id)
    if job.status not in CANCELLABLE:
        raise conflict(f"job {job_id} is {job.status}; only open, assigned or running jobs can be cancelled")
    revoked = None
    if job.status != JobStatus.OPEN.value:
        for lease in s.scalars(select(LeaseRecord).where(LeaseRecord.job_id == job_id,
                                                         LeaseRecord.status.in_(("assigned", "running")))):
            lease.status, lease.closed_at, revoked = "revoked", now_s, lease.lease_id
        if job.collateral_wei > 0 and job.provider is not None:
            ledger.unlock_collateral(s, ids.collateral_unlock_id(job_id, job.attempt), job.provider, job_id)
    ledger.void_escrow(s, ids.cancel_id(job_id), job_id)
    circuits.drop_witness(s, job_id)
    record(s, job, JobEvent.CANCEL, now_s, refund_wei=str(job.max_price_wei), revoked_lease=revoked)
    return job


def balance(s: Session, signer: str) -> dict[str, str]:
    """``{"address", "balance_wei", "escrowed_wei"}``: free balance and the escrow of unfinished jobs (wei)."""
    try:
        free = ledger.balance(s, ledger.client_account(signer))
    except ledger.UnknownAccount:
        free = 0
    escrowed = 0
    for job_id in s.scalars(select(JobRecord.job_id).where(JobRecord.client == signer,
                                                           JobRecord.status.in_(UNFINISHED))):
        try:
            escrowed += ledger.balance(s, ledger.escrow_account(job_id))
        except ledger.UnknownAccount:
            pass
    return {"address": signer, "balance_wei": str(free), "escrowed_wei": str(escrowed)}
