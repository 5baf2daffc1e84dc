"""The exchange: the loop that takes jobs from submission to payment.

It is the only place where the parts meet, and each step is a short function over a
SQLAlchemy ``Session`` (opened by the caller, one transaction per step, so money moves
atomically with the job's state):

1. :func:`register_provider` — record a provider's detected hardware and offer (its stake is on chain).
2. :func:`submit_job` — record the job and escrow its max price from the client's balance.
3. :func:`run_round` — clear open jobs against offers (``market.core.matching``), lock collateral,
   record the round's canonical inputs and hashes (``raymarket replay ROUND``).
4. :func:`complete_job` — check the provider's signed result (signature, hashes, and for a proof
   job the Groth16 proof), pay the cleared price minus the fee, refund the rest, unlock
   collateral. :func:`fail_job` — slash or release collateral and re-open the job for the next
   round (re-auction), excluding the provider that failed it.
5. Settlement (``market.settlement.batching``) batches the paid jobs' attestations on-chain; the
   watcher marks them ``settled`` (:func:`mark_settled`).

HTTP, the chain and files are touched by the caller (``market.exchange.service``); this module only
reads and writes the database through the ledger and the market tables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from market import ledger
from market.core import ids, policy
from market.core.explain import quote
from market.core.matching import RoundInputs
from market.core.pricing import offer_unit_prices, work_units
from market.core.jobs import TERMINAL, JobEvent, JobKind, JobStatus, transition
from market.db.models import JobEventRecord, JobRecord, LeaseRecord, ProviderRecord, RoundRecord
from market.exchange.circuits import drop_witness
from market.settlement.hooks import register_challenge_slashing
from market.settlement.models import BatchRecord
from market.core.orders import JobOrder, Offer, Usage, reopen

GIB = 1024**3


class ExchangeError(Exception):
    """Root of the exchange's errors."""


class UnknownJob(ExchangeError, KeyError):
    """No job with this id."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}; list jobs with `raymarket status`")
        self.job_id = job_id


class UnknownProvider(ExchangeError, KeyError):
    """No provider with this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no provider named {name!r}")
        self.name = name


class InvalidJob(ExchangeError, ValueError):
    """A job spec field is invalid; ``field`` names it and the message says the fix."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class ProviderOffer:
    """A provider's registration: identity, detected resources, prices (wei per resource-second).
    ``bond_wei`` must be 0 (kept for callers; stake is on chain only, see :func:`register_provider`)."""

    name: str
    address: str
    cpus: int
    memory_bytes: int
    price_per_cpu_s_wei: int
    bond_wei: int = 0
    gpus: int = 0
    gpu_model: str | None = None
    price_per_gpu_s_wei: int = 0
    speed: float = 1.0
    node_id: str | None = None
    hardware: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobSpec:
    """A client's job request.

    Attributes:
        job_id: client-chosen id (a retry with the same id is idempotent).
        client: the client's account name.
        kind: ``inference`` or ``proof``.
        input_hash: ``0x``-hex keccak-256 of the canonical input.
        params: kind-specific parameters (input path; circuit, rounds, preimage).
        max_price_wei: the ceiling, escrowed at submission.
        deadline_s: seconds from submission until the result is due.
        cpus, gpus, memory_bytes: resources needed; duration_estimate_s at reference speed.
        collateral_wei: provider bond locked while the job runs (slashed on fault).
        verification: the job's verification policy, canonical text (``market.core.policy``; "" = the kind's
            default); budget_wei: the most the provider may be paid (None: ``max_price_wei``; less when the policy
            reserves part of the escrow for verification, ``market.core.policy.prover_budget_wei``).
    """

    job_id: str
    client: str
    kind: str
    input_hash: str
    params: dict[str, Any]
    max_price_wei: int
    deadline_s: float = 3600.0
    cpus: int = 1
    gpus: int = 0
    gpu_model: str | None = None
    memory_bytes: int = 1 * GIB
    duration_estimate_s: int = 60
    collateral_wei: int = 0
    verification: str = ""
    budget_wei: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in (JobKind.INFERENCE.value, JobKind.PROOF.value):
            raise InvalidJob("kind", f"unknown job kind {self.kind!r}; use 'inference' or 'proof'")
        if isinstance(self.max_price_wei, bool) or not isinstance(self.max_price_wei, int) or self.max_price_wei <= 0:
            raise InvalidJob("max_price_wei", f"must be a positive integer number of wei, got {self.max_price_wei!r}")
        if self.deadline_s <= 0:
            raise InvalidJob("deadline_s", f"must be > 0 seconds, got {self.deadline_s}")
        if self.cpus < 0 or self.gpus < 0 or (self.cpus == 0 and self.gpus == 0):
            raise InvalidJob("cpus", "a job needs at least one CPU or one GPU")
        if self.duration_estimate_s <= 0:
            raise InvalidJob("duration_estimate_s", f"must be > 0, got {self.duration_estimate_s}")
        if self.collateral_wei < 0:
            raise InvalidJob("collateral_wei", f"must be >= 0, got {self.collateral_wei}")


@dataclass(frozen=True)
class Assignment:
    """A job matched to a provider in a round, at ``price_wei`` (fee included)."""

    job_id: str
    provider: str
    price_wei: int
    round_id: str


# --------------------------------------------------------------------------- history


def _record(s: Session, job: JobRecord, event: JobEvent, now_s: float, **detail: Any) -> None:
    """Apply ``event`` to ``job`` (pure transition) and append it to the job's history. A job that is paid or
    terminal (failed: expired or out of attempts; settled) has its witness / circuit input deleted: the client's
    secret is kept only while a provider may still need it (``circuits.drop_witness``)."""
    job.status = transition(JobStatus(job.status), event).value
    job.updated_at = now_s
    s.add(JobEventRecord(job_id=job.job_id, at_s=now_s, event=event.value, status=job.status, detail=detail))
    if job.kind == JobKind.PROOF.value and (job.status == JobStatus.PAID.value or JobStatus(job.status) in TERMINAL):
        drop_witness(s, job.job_id)


def get_job(s: Session, job_id: str) -> JobRecord:
    """The job ``job_id``.

    Raises:
        UnknownJob: no such job.
    """
    job = s.get(JobRecord, job_id)
    if job is None:
        raise UnknownJob(job_id)
    return job


def job_history(s: Session, job_id: str) -> list[JobEventRecord]:
    """The job's events, oldest first."""
    return list(s.scalars(select(JobEventRecord).where(JobEventRecord.job_id == job_id).order_by(JobEventRecord.id)))


# --------------------------------------------------------------------------- providers and clients


def register_provider(s: Session, offer: ProviderOffer, now_s: float | None = None) -> ProviderRecord:
    """Record (or update) a provider's offer (no money moves: stake comes only from the Vault, ``Vault.stake``
    credited by the deposit watcher to the provider's address).

    Raises:
        ValueError: ``offer.bond_wei`` > 0 (the ledger has no source for fresh stake; ``world`` is closed).
    """
    if offer.bond_wei:
        raise ValueError(f"provider {offer.name}: bond_wei={offer.bond_wei}: stake is on chain only "
                         f"(Vault.stake from the provider's key), not minted at registration")
    now_s = time.time() if now_s is None else now_s
    rec = s.get(ProviderRecord, offer.name)
    if rec is None:
        rec = ProviderRecord(name=offer.name, registered_at=now_s)
        s.add(rec)
    rec.address, rec.cpus, rec.memory_bytes = offer.address, offer.cpus, offer.memory_bytes
    rec.gpus, rec.gpu_model = offer.gpus, offer.gpu_model
    rec.price_per_cpu_s_wei, rec.price_per_gpu_s_wei = offer.price_per_cpu_s_wei, offer.price_per_gpu_s_wei
    rec.speed, rec.node_id, rec.hardware, rec.active = offer.speed, offer.node_id, offer.hardware, True
    s.flush()
    ledger.open_system_accounts(s)
    ledger.open_provider(s, offer.name)
    return rec


# --------------------------------------------------------------------------- jobs


def submit_job(s: Session, spec: JobSpec, now_s: float | None = None) -> JobRecord:
    """Record ``spec`` as an open job and escrow its max price from the client's balance.

    Idempotent on ``spec.job_id``: a retry with the same spec returns the job.

    Raises:
        InvalidJob: the same id was used for a different job.
        market.ledger.errors.InsufficientFunds: the client's balance is below the max price.
        market.ledger.errors.UnknownAccount: the client has no account (deposit first).
    """
    now_s = time.time() if now_s is None else now_s
    existing = s.get(JobRecord, spec.job_id)
    params = _spec_json(spec)
    if existing is not None:
        if existing.spec != params or existing.max_price_wei != spec.max_price_wei:
            raise InvalidJob("job_id", f"{spec.job_id!r} is already used by a different job; pick a new id")
        return existing
    job = JobRecord(job_id=spec.job_id, client=spec.client, kind=spec.kind, status=JobStatus.OPEN.value,
                    spec=params, input_hash=spec.input_hash, max_price_wei=spec.max_price_wei,
                    collateral_wei=spec.collateral_wei, deadline_s=now_s + spec.deadline_s, created_at=now_s,
                    updated_at=now_s, attempt=1)
    s.add(job)
    s.flush()
    ledger.escrow_job(s, ids.escrow_id(spec.job_id), spec.client, spec.job_id, spec.max_price_wei)
    s.add(JobEventRecord(job_id=spec.job_id, at_s=now_s, event="submitted", status=job.status,
                         detail={"max_price_wei": str(spec.max_price_wei)}))
    return job


def _spec_json(spec: JobSpec) -> dict[str, Any]:
    return {"params": spec.params, "cpus": spec.cpus, "gpus": spec.gpus, "gpu_model": spec.gpu_model,
            "memory_bytes": spec.memory_bytes, "duration_estimate_s": spec.duration_estimate_s,
            "excluded": [], **({"verification": spec.verification} if spec.verification else {}),
            **({"budget_wei": str(spec.budget_wei)} if spec.budget_wei not in (None, spec.max_price_wei) else {})}


def _job_order(job: JobRecord) -> JobOrder:
    sp = job.spec
    return JobOrder(job_id=job.job_id, client=job.client, kind=job.kind,
                    duration_estimate_s=int(sp["duration_estimate_s"]),
                    max_price_wei=int(sp.get("budget_wei", job.max_price_wei)),
                    deadline_s=float(job.deadline_s), cpus=int(sp["cpus"]), gpus=int(sp["gpus"]),
                    gpu_model=sp.get("gpu_model"), memory_bytes=int(sp["memory_bytes"]),
                    collateral_wei=int(job.collateral_wei), exclude_providers=frozenset(sp.get("excluded", [])),
                    attempt=job.attempt - 1, work_units=work_units(job.kind, sp.get("params") or {}))


def _offer(s: Session, p: ProviderRecord) -> Offer:
    return Offer(provider=p.name, cpus=p.cpus, memory_bytes=p.memory_bytes,
                 price_per_cpu_s_wei=int(p.price_per_cpu_s_wei), free_bond_wei=ledger.balance(s, ledger.bond_account(p.name)),
                 gpus=p.gpus, gpu_model=p.gpu_model, price_per_gpu_s_wei=int(p.price_per_gpu_s_wei),
                 reputation=float(p.reputation), speed=float(p.speed), **offer_unit_prices(p.hardware))


#: Lease id prefix of a spot check's verification lease (``market.exchange.service.spot.LEASE_PREFIX``).
VERIFICATION_LEASE_PREFIX = "lv-"


def _running_usage(s: Session) -> dict[str, Usage]:
    """What each provider's offer is already busy with: its assigned / running jobs, and the open verification
    leases it holds for other providers' jobs (a spot check re-executes on the verifier's CPUs; uncounted, a
    round matched a busy verifier, and the lease expired undelivered)."""
    busy = (JobStatus.ASSIGNED.value, JobStatus.RUNNING.value)
    usage: dict[str, Usage] = {}

    def add(provider: str, spec: dict[str, Any]) -> None:
        u = usage.get(provider, Usage())
        usage[provider] = Usage(cpus=u.cpus + int(spec["cpus"]), gpus=u.gpus + int(spec["gpus"]),
                                memory_bytes=u.memory_bytes + int(spec["memory_bytes"]))

    for job in s.scalars(select(JobRecord).where(JobRecord.status.in_(busy))):
        add(job.provider, job.spec)
    for provider, spec in s.execute(
            select(LeaseRecord.provider, JobRecord.spec).join(JobRecord, JobRecord.job_id == LeaseRecord.job_id)
            .where(LeaseRecord.lease_id.startswith(VERIFICATION_LEASE_PREFIX),
                   LeaseRecord.status.in_(("assigned", "running")))):
        add(provider, spec)
    return usage


def expire_jobs(s: Session, now_s: float) -> list[str]:
    """Fail open jobs past their deadline and refund their escrow; returns their ids."""
    expired = []
    for job in s.scalars(select(JobRecord).where(JobRecord.status == JobStatus.OPEN.value,
                                                 JobRecord.deadline_s < now_s)):
        ledger.void_escrow(s, ids.refund_id(job.job_id, job.attempt), job.job_id)
        _record(s, job, JobEvent.EXPIRED, now_s, reason="deadline passed before any provider could run it")
        expired.append(job.job_id)
    return expired


def round_inputs(s: Session, *, rule: str = "pay-as-bid", now_s: float | None = None, seed: int = 0) -> Any:
    """The canonical inputs of a round now: the open jobs (by id) and the active providers' offers (by name).

    Returns:
        a :class:`market.core.matching.RoundInputs` (plain data: clear it outside any transaction).
    """
    now_s = time.time() if now_s is None else now_s
    # Jobs by id and offers by provider: the canonical order the round's inputs are recorded in, so
    # that `raymarket replay ROUND` recomputes the same hashes.
    jobs = list(s.scalars(select(JobRecord).where(JobRecord.status == JobStatus.OPEN.value)
                          .order_by(JobRecord.job_id)))
    providers = list(s.scalars(select(ProviderRecord).where(ProviderRecord.active.is_(True))
                               .order_by(ProviderRecord.name)))
    return RoundInputs(jobs=tuple(_job_order(j) for j in jobs), offers=tuple(_offer(s, p) for p in providers),
                       rule=rule, now_s=now_s, running=_running_usage(s), seed=seed)


def apply_round(s: Session, round_id: str, inputs: Any, result: Any) -> tuple[list[Assignment], dict[str, str]]:
    """Record a cleared round and apply its matches: lock collateral, ``open -> assigned``.

    A job that is no longer open at its recorded attempt (cancelled or expired while the round was being
    cleared) is skipped; it is not matched in this round.

    Returns:
        (assignments, explanations): see :func:`run_round`.
    """
    now_s = inputs.now_s
    inputs_json = inputs.to_json(input_hash=result.input_hash, output_hash=result.output_hash)
    s.add(RoundRecord(round_id=round_id, at_s=now_s, rule=inputs.rule, inputs=inputs_json,
                      input_hash=result.input_hash, output_hash=result.output_hash, n_jobs=len(inputs.jobs),
                      n_offers=len(inputs.offers), n_matched=len(result.assignments)))
    attempts = {o.job_id: o.attempt + 1 for o in inputs.jobs}
    assignments = []
    for a in result.assignments:
        job = s.get(JobRecord, a.job_id)
        if job is None or job.status != JobStatus.OPEN.value or job.attempt != attempts.get(a.job_id):
            continue
        if job.collateral_wei > 0:
            ledger.lock_collateral(s, ids.collateral_lock_id(job.job_id, job.attempt), a.provider, job.job_id,
                                   int(job.collateral_wei))
        job.provider, job.cleared_price_wei, job.round_id = a.provider, int(a.price_wei), round_id
        _record(s, job, JobEvent.MATCHED, now_s, provider=a.provider, price_wei=str(a.price_wei), round=round_id)
        assignments.append(Assignment(a.job_id, a.provider, int(a.price_wei), round_id))
    return assignments, {k: e.text for k, e in result.explanations.items()}


def run_round(s: Session, round_id: str, *, rule: str = "pay-as-bid", now_s: float | None = None,
              seed: int = 0) -> tuple[list[Assignment], dict[str, str]]:
    """Clear the open jobs against the active providers' offers; lock collateral for each match
    (:func:`round_inputs`, clear, :func:`apply_round` in one transaction).

    Returns:
        (assignments, explanations): the matches, and for each unmatched job the reasons counted
        over the offers (``market.core.explain``), e.g. ``"2 offers too expensive ..."``.
    """
    inputs = round_inputs(s, rule=rule, now_s=now_s, seed=seed)
    return apply_round(s, round_id, inputs, inputs.clear())


def mark_started(s: Session, job_id: str, now_s: float | None = None) -> None:
    """The provider has the job (``assigned -> running``)."""
    _record(s, get_job(s, job_id), JobEvent.STARTED, time.time() if now_s is None else now_s)


def complete_job(s: Session, job_id: str, *, result_path: str, result_hash: str, attestation: dict[str, Any],
                 fee_bps: int, now_s: float | None = None) -> JobRecord:
    """Pay for a verified result: cleared price minus fee to the provider, fee to the protocol,
    the rest of the escrow back to the client; unlock the collateral. One transaction.

    The caller has verified the result (signature, hashes, proof) before calling.
    """
    now_s = time.time() if now_s is None else now_s
    job = get_job(s, job_id)
    job.result_path, job.result_hash, job.attestation = result_path, result_hash, attestation
    _record(s, job, JobEvent.VERIFIED, now_s)
    if job.collateral_wei > 0:
        ledger.unlock_collateral(s, ids.collateral_unlock_id(job_id, job.attempt), job.provider, job_id)
    ledger.release_payment(s, ids.payment_id(job_id), job_id, job.provider, int(job.cleared_price_wei), fee_bps=fee_bps)
    _record(s, job, JobEvent.PAID, now_s, price_wei=str(job.cleared_price_wei), fee_bps=fee_bps)
    return job


def fail_job(s: Session, job_id: str, *, reason: str, wrong_result: bool, max_attempts: int,
             now_s: float | None = None, spent_wei: int = 0) -> JobRecord:
    """A provider failed ``job_id``: slash (wrong result) or release (infrastructure fault) the
    collateral, lower the provider's reputation, and re-open the job for the next round without
    that provider — or fail it (refunding the escrow) when attempts, time or budget are exhausted.

    Every re-auction of the exchange comes through here (lease expiry, a provider giving a lease
    back, a rejected result), and the re-opened order is :func:`market.core.orders.reopen` of the
    job's last one: attempt + 1, the provider excluded, and the budget the next round sees
    (``spec["budget_wei"]``, else ``max_price_wei``) lowered by ``spent_wei`` (wei already paid out
    for the job on this attempt, e.g. a partial payment or fee; 0 when nothing was).

    Raises:
        UnknownJob. InvalidJob: ``spent_wei`` is not an int >= 0.
    """
    if isinstance(spent_wei, bool) or not isinstance(spent_wei, int) or spent_wei < 0:
        raise InvalidJob("spent_wei", f"must be an int number of wei >= 0, got {spent_wei!r}")
    now_s = time.time() if now_s is None else now_s
    job = get_job(s, job_id)
    provider = job.provider
    if job.collateral_wei > 0:
        if wrong_result:
            ledger.slash(s, ids.slash_id(job_id, job.attempt), provider, job_id, "wrong_result", now_s,
                         client=job.client)
        else:
            ledger.unlock_collateral(s, ids.collateral_unlock_id(job_id, job.attempt), provider, job_id)
    prov = s.get(ProviderRecord, provider)
    if prov is not None:
        prov.reputation = policy.lowered_reputation(prov.reputation, wrong_result=wrong_result)
    _record(s, job, JobEvent.FAULT, now_s, provider=provider, reason=reason, wrong_result=wrong_result)
    last = _job_order(job)
    budget_left = spent_wei < last.max_price_wei
    again = reopen(last, failed_provider=provider, spent_wei=spent_wei if budget_left else 0)
    spec = dict(job.spec)
    spec["excluded"] = sorted(again.exclude_providers)
    if budget_left and again.max_price_wei != int(job.max_price_wei):
        spec["budget_wei"] = str(again.max_price_wei)
    job.spec, job.provider, job.cleared_price_wei = spec, None, None
    job.attempt = again.attempt + 1
    if job.attempt > max_attempts or job.deadline_s < now_s or not budget_left:
        ledger.void_escrow(s, ids.refund_id(job_id, job.attempt), job_id)
        _record(s, job, JobEvent.EXPIRED, now_s, reason=f"gave up after {job.attempt - 1} attempts"
                + ("" if budget_left else ": its budget is spent"))
    return job


def mark_settled(s: Session, job_ids: Sequence[str], *, batch_id: str, tx_hash: str,
                 now_s: float | None = None) -> int:
    """The watcher saw the batch holding ``job_ids`` on-chain: ``paid -> settled``. Idempotent.

    Returns:
        How many jobs changed state.
    """
    now_s = time.time() if now_s is None else now_s
    changed = 0
    for job_id in job_ids:
        job = s.get(JobRecord, job_id)
        if job is None or job.status != JobStatus.PAID.value:
            continue
        job.batch_id, job.settle_tx = batch_id, tx_hash
        _record(s, job, JobEvent.SETTLED, now_s, batch_id=batch_id, tx=tx_hash)
        changed += 1
    return changed


def mark_unsettled(s: Session, job_ids: Sequence[str], now_s: float | None = None) -> int:
    """A reorg removed the batch holding ``job_ids``: ``settled -> paid`` until it lands again."""
    now_s = time.time() if now_s is None else now_s
    changed = 0
    for job_id in job_ids:
        job = s.get(JobRecord, job_id)
        if job is None or job.status != JobStatus.SETTLED.value:
            continue
        job.settle_tx = None
        _record(s, job, JobEvent.UNSETTLED, now_s)
        changed += 1
    return changed


def open_job_count(s: Session) -> int:
    """Jobs not yet in a terminal state."""
    return len(list(s.scalars(select(JobRecord.job_id).where(JobRecord.status.notin_([t.value for t in TERMINAL])))))


def job_summary(job: JobRecord) -> dict[str, Any]:
    """The JSON-ready view of a job that the CLI prints."""
    return {"job_id": job.job_id, "kind": job.kind, "client": job.client, "status": job.status,
            "provider": job.provider, "max_price_wei": str(job.max_price_wei),
            "cleared_price_wei": None if job.cleared_price_wei is None else str(job.cleared_price_wei),
            "attempt": job.attempt, "result_path": job.result_path, "result_hash": job.result_hash,
            "batch_id": job.batch_id, "settle_tx": job.settle_tx, "input_hash": job.input_hash,
            "round_id": job.round_id}



# --------------------------------------------------------------------------- watcher hooks


def on_leaf_challenged(s: Session, job_id: str, provider_address: str, reason: str,
                       now_s: float | None = None) -> None:
    """A settled leaf was successfully challenged on-chain: record it in the job's history.

    Recording only: what the challenge costs the provider (the slash) is
    :func:`market.settlement.hooks.slash_provider_on_challenge`, registered next to this hook by
    :func:`register_settlement_hooks`.
    """
    now_s = time.time() if now_s is None else now_s
    job = s.get(JobRecord, job_id)
    if job is None or job.provider is None:
        return
    s.add(JobEventRecord(job_id=job_id, at_s=now_s, event="challenged", status=job.status,
                         detail={"reason": reason, "provider": provider_address}))


def register_settlement_hooks(hooks: Any, engine: Any = None) -> Any:
    """Register the exchange's watcher hooks: mark jobs settled / unsettled, record challenges in the jobs'
    history, and the one challenge -> slash rule (:func:`market.settlement.hooks.register_challenge_slashing`,
    registered once however often this is called).

    Used by ``raymarket watch`` (``--hooks market.exchange:register_settlement_hooks``, the default)
    and by the exchange service (``market.exchange.service.runtime``).
    """

    def settled(s: Session, batch_id: str, job_ids: list[str]) -> None:
        batch = s.get(BatchRecord, batch_id)
        mark_settled(s, job_ids, batch_id=batch_id, tx_hash=batch.tx_hash if batch and batch.tx_hash else "")

    def reverted(s: Session, batch_id: str, job_ids: list[str]) -> None:
        mark_unsettled(s, job_ids)

    hooks.register(on_batch_settled=settled, on_batch_reverted=reverted, on_leaf_challenged=on_leaf_challenged)
    return register_challenge_slashing(hooks)


# --------------------------------------------------------------------------- quotes

#: How many recent clearing prices of the same job kind a quote's p50 / p90 come from (:mod:`market.core.policy`).
QUOTE_RECENT_PRICES = policy.QUOTE_RECENT_PRICES


def quote_job(s: Session, spec: JobSpec, now_s: float | None = None) -> dict[str, Any]:
    """Before submission: would ``spec`` match now, why not, and what recent jobs of its kind cleared at.

    Returns:
        JSON-ready dict: ``feasible``, ``feasible_offers``, ``cheapest_ask_wei``, ``explanation`` (the
        blocking constraints counted over the offers; when feasible, how many offers can serve it),
        ``blocking`` (the funnel stage after which no offer is left, None when feasible), ``counts`` (offers
        failing per stage), ``resource`` (the blocking resource: ``cpus`` / ``gpus`` / ``memory`` / ``gpu_model``,
        else None), ``cap_wei`` (the provider's price cap), ``collateral_wei``, ``verification``, ``p50_wei`` / ``p90_wei`` / ``samples`` of the
        last :data:`QUOTE_RECENT_PRICES` clearing prices of the same kind.
    """
    now_s = time.time() if now_s is None else now_s
    providers = list(s.scalars(select(ProviderRecord).where(ProviderRecord.active.is_(True))
                               .order_by(ProviderRecord.name)))
    order = JobOrder(job_id=spec.job_id, client=spec.client, kind=spec.kind,
                     duration_estimate_s=spec.duration_estimate_s,
                     max_price_wei=spec.max_price_wei if spec.budget_wei is None else spec.budget_wei,
                     deadline_s=now_s + spec.deadline_s, cpus=spec.cpus, gpus=spec.gpus, gpu_model=spec.gpu_model,
                     memory_bytes=spec.memory_bytes, collateral_wei=spec.collateral_wei,
                     work_units=work_units(spec.kind, spec.params))
    prices = [int(p) for p in s.scalars(
        select(JobRecord.cleared_price_wei).where(JobRecord.kind == spec.kind, JobRecord.cleared_price_wei.isnot(None))
        .order_by(JobRecord.updated_at.desc()).limit(QUOTE_RECENT_PRICES))]
    q = quote(order, [_offer(s, p) for p in providers], prices, now_s=now_s, running=_running_usage(s))
    why = q.explanation.text if not q.feasible else (
        f"{q.feasible_offers} of {len(providers)} offers can serve it now; cheapest ask {q.cheapest_ask_wei} wei "
        f"<= cap {q.explanation.cap_wei} wei")

    def _w(v: int | None) -> str | None:
        return None if v is None else str(v)

    return {"feasible": q.feasible, "feasible_offers": q.feasible_offers, "cheapest_ask_wei": _w(q.cheapest_ask_wei),
            "explanation": why, "blocking": None if q.feasible else q.explanation.blocking,
            "resource": None if q.feasible else q.explanation.resource,
            "counts": dict(q.explanation.counts), "cap_wei": str(q.explanation.cap_wei),
            "collateral_wei": str(spec.collateral_wei), "verification": spec.verification or None,
            "p50_wei": _w(q.p50_wei), "p90_wei": _w(q.p90_wei), "samples": q.samples, "offers": len(providers)}
