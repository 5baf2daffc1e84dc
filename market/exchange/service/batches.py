"""Proof batches: the exchange's proving pipeline, on the market's matching engine (issue 13).

Placement has one path: the auction round (prices, collateral, capacity, explanations) assigns proof jobs to
providers; the proof leases one provider gets for one circuit key in one round form a **batch**
(:func:`form`, called where the round's leases are created) with a deterministic id: ``pb-`` +
``market.pipeline.batching.batch_id_of`` over the group (circuit id, proving-key hash) and the round, the provider
and the jobs with their attempts, so the same round record always gives the same batch ids. The provider is sent
the batch id with each lease (``lease.poll``: ``"batch_id"``); its agent proves the batch with the circuit's
prepared key, cached by hash, and uploads results together (``lease.complete_batch``), where proofs under one
verifying key are checked at once with a random linear combination and bisected when it fails, so a faulty
proof is isolated and only its job rejected (``uploads.verify_many``).

Provenance (tables ``proof_batches`` / ``proof_batch_jobs``, ``market.db.models``): per batch the provider,
round, circuit id = proving-key hash (the sha256 of the zkey), the verification key's sha256, the exchange's code
version, timings (matched, first delivered, last uploaded, all decided) and verification figures (Groth16 checks
run, seconds); per member the job, attempt, statement (input hash, public signals), the uploaded proof bytes,
their keccak, proof and public-signal hashes, the verdict (``ok`` / ``rejected`` + reason / a lost lease:
``expired`` / ``failed`` / ``revoked``) and its verification group. The witness is NOT kept (it is the client's
secret and is deleted once the job is paid), so ``raymarket replay pb-...`` re-verifies the stored proofs
(``market.pipeline.records.reverify_batch``) instead of re-proving them.

Stage metrics (``Metrics.pipeline``, observed only once the transaction that made them commits, so a rolled-back
attempt is never counted): per job, ``queue_match`` (submitted -> matched, first attempt), ``dispatch`` (matched
-> delivered by a poll), ``prove`` (delivered -> upload received), ``verify`` (the Groth16 check of the upload's
group), ``pay`` (verified -> paid, committed); batch sizes, verification group sizes, proofs verified, faulty
proofs isolated, checks run, throughput. ``GET /v1/pipeline/stats`` and ``raymarket pipeline stats`` show them,
``/metrics`` exposes them as ``raymarket_pipeline_*``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from fastapi import APIRouter
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from market.db.models import CircuitRecord, JobRecord, LeaseRecord, ProofBatch, ProofBatchJob
from market.pipeline.batching import GroupKey, batch_id_of
from market.pipeline.provenance import code_version
from market.pipeline.records import LOST, members_of, record_hash, result_hashes

log = logging.getLogger("raymarket.exchange")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_LATER = "raymarket.pipeline.later"
_SEEN = "raymarket.pipeline.groups"
_DIRTY = "raymarket.pipeline.dirty"
#: engine -> the service's ``metrics.PipelineStageMetrics`` (set by :func:`attach`).
_SINKS: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class VerifyFigures:
    """How an upload was verified (``completion.Verdict.figures``).

    Attributes:
        group_size: proofs checked together with it (1: alone); checks: combined Groth16 checks of that group
            (1 for a clean group, more when bisection ran; 0 when it was refused before any proof check);
        verify_s: the group's verification seconds; received_at, done_at: Unix s the upload was received and its
            verification ended; token: the group's id (its checks are counted once per batch).
    """

    group_size: int = 1
    checks: int = 0
    verify_s: float = 0.0
    received_at: float = 0.0
    done_at: float = 0.0
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


def attach(rt: Any) -> None:
    """Send the stage metrics of sessions on ``rt.engine`` to ``rt.metrics.pipeline`` (called by ``create_app``)."""
    _SINKS[rt.engine] = rt.metrics.pipeline


def _later(s: Session, fn: Callable[[Any], None]) -> None:
    """Run ``fn(pipeline metrics)`` once ``s`` commits (dropped if it rolls back)."""
    s.info.setdefault(_LATER, []).append(fn)


@event.listens_for(Session, "before_commit")
def _before_commit(s: Session) -> None:
    """Re-hash every batch the transaction changed, once (not once per member)."""
    dirty = s.info.pop(_DIRTY, None)
    if not dirty:
        return
    s.flush()
    for batch in dirty.values():
        batch.record_sha256 = record_hash(batch, members_of(s, batch.batch_id))


@event.listens_for(Session, "after_commit")
def _after_commit(s: Session) -> None:
    fns = s.info.pop(_LATER, None)
    s.info.pop(_SEEN, None)
    if not fns:
        return
    try:
        sink = _SINKS.get(s.get_bind())
    except Exception:  # noqa: BLE001 -- a session without a bind: nothing to observe
        sink = None
    if sink is None:
        return
    for fn in fns:
        try:
            fn(sink)
        except Exception:  # noqa: BLE001 -- metrics never break a committed request
            log.exception("pipeline metrics observation failed")


@event.listens_for(Session, "after_rollback")
def _after_rollback(s: Session) -> None:
    for key in (_LATER, _SEEN, _DIRTY):
        s.info.pop(key, None)


def group_of(job: JobRecord) -> GroupKey:
    """The batching group of a proof job: its circuit and proving key. A registered circuit's id is the sha256 of
    its zkey, which is the proving key: key and circuit coincide (``pk_hash`` empty for a legacy job)."""
    circuit = str(job.spec["params"].get("circuit"))
    return GroupKey(circuit, circuit if _HEX64.match(circuit) else "")


def form(s: Session, lease_ids: Sequence[str], now_s: float) -> list[str]:
    """Group the round's new proof leases per (provider, circuit key, round) into batches; returns their ids.

    Other leases (inference) are left alone. Called in the transaction that creates the leases.
    """
    groups: dict[tuple[str, GroupKey, str | None], list[tuple[LeaseRecord, JobRecord]]] = {}
    for lid in lease_ids:
        lease = s.get(LeaseRecord, lid)
        job = s.get(JobRecord, lease.job_id) if lease is not None else None
        if lease is None or job is None or job.kind != "proof":
            continue
        groups.setdefault((lease.provider, group_of(job), job.round_id), []).append((lease, job))
    ids: list[str] = []
    formed: list[tuple[int, list[float]]] = []
    for (provider, key, round_id), members in groups.items():
        members.sort(key=lambda m: (m[1].job_id, m[0].attempt))
        bid = "pb-" + batch_id_of(key, [f"round:{round_id}", f"provider:{provider}",
                                        *(f"{job.job_id}#{lease.attempt}" for lease, job in members)])
        circuit = s.get(CircuitRecord, key.circuit_id) if key.pk_hash else None
        batch = ProofBatch(batch_id=bid, provider=provider, round_id=round_id, circuit_id=key.circuit_id,
                           pk_sha256=key.pk_hash or None, vk_sha256=circuit.vk_sha256 if circuit else None,
                           n_jobs=len(members), n_ok=0, n_rejected=0, n_lost=0, verify_checks=0, verify_s=0.0,
                           created_at=now_s, code=code_version())
        rows = [ProofBatchJob(lease_id=lease.lease_id, batch_id=bid, position=i, job_id=job.job_id,
                              attempt=lease.attempt, input_hash=job.input_hash,
                              public=[str(x) for x in job.spec["params"].get("public", [])])
                for i, (lease, job) in enumerate(members)]
        batch.record_sha256 = record_hash(batch, rows)
        s.add(batch)
        s.add_all(rows)
        ids.append(bid)
        formed.append((len(members), [now_s - job.created_at for lease, job in members if lease.attempt <= 1]))
    if ids:
        s.flush()
        _later(s, lambda m: m.formed(formed))
    return ids


def batch_of(s: Session, lease_id: str) -> str | None:
    """The batch id of a lease (None: not a proof lease of a batch)."""
    m = s.get(ProofBatchJob, lease_id)
    return m.batch_id if m is not None else None


def delivered(s: Session, leases: Sequence[LeaseRecord], now_s: float) -> None:
    """A poll delivered ``leases``: their members' and batches' delivery times; the dispatch latencies."""
    waits = []
    for lease in leases:
        m = s.get(ProofBatchJob, lease.lease_id)
        if m is None:
            continue
        m.delivered_at = now_s
        batch = s.get(ProofBatch, m.batch_id)
        if batch is not None and batch.delivered_at is None:
            batch.delivered_at = now_s
        waits.append(now_s - lease.created_at)
    if waits:
        _later(s, lambda m: m.stage("dispatch", waits))


def _refresh(s: Session, batch: ProofBatch, now_s: float) -> None:
    """A member of ``batch`` changed: its record hash is recomputed before the transaction commits."""
    s.info.setdefault(_DIRTY, {})[batch.batch_id] = batch
    if batch.verified_at is None and batch.n_ok + batch.n_rejected + batch.n_lost >= batch.n_jobs:
        batch.verified_at = now_s


def record_upload(s: Session, lease: LeaseRecord, verdict: Any, result_hash: str, now_s: float) -> None:
    """An upload for ``lease`` is being applied (in the transaction that pays or rejects it): store the proof,
    its hashes and the verdict in its batch, and the stage latencies (``verdict``: ``completion.Verdict``)."""
    m = s.get(ProofBatchJob, lease.lease_id)
    if m is None:
        return
    batch = s.get(ProofBatch, m.batch_id)
    if batch is None or m.verdict is not None:
        return
    fig: VerifyFigures = getattr(verdict, "figures", None) or VerifyFigures(received_at=now_s, done_at=now_s)
    m.result, m.result_hash = verdict.result, str(result_hash).lower()
    m.proof_sha256, m.publics_sha256 = result_hashes(verdict.result)
    ok = verdict.rejection is None
    m.verdict = "ok" if ok else "rejected"
    m.reason = None if ok else str(verdict.rejection.reason)[:500]
    m.verify_group, m.verify_checks, m.verify_s = fig.group_size, fig.checks, fig.verify_s
    m.uploaded_at, m.verified_at = fig.received_at or now_s, fig.done_at or now_s
    batch.uploaded_at = max(batch.uploaded_at or 0.0, m.uploaded_at)
    if ok:
        batch.n_ok += 1
    else:
        batch.n_rejected += 1
    seen = s.info.setdefault(_SEEN, set())
    first_in_batch = (batch.batch_id, fig.token) not in seen
    first_in_tx = fig.token not in {t for _, t in seen}
    seen.add((batch.batch_id, fig.token))
    if first_in_batch:
        batch.verify_checks += fig.checks
        batch.verify_s += fig.verify_s
    _refresh(s, batch, now_s)
    job = s.get(JobRecord, lease.job_id)
    prove_s = [m.uploaded_at - m.delivered_at] if m.delivered_at is not None else []
    e2e = [now_s - job.created_at] if ok and job is not None else []
    verified_at, verify_s = fig.done_at or now_s, fig.verify_s
    group = (fig.group_size, fig.checks) if first_in_tx else None

    def observe(pm: Any) -> None:
        pm.decided(ok, prove_s, verify_s, time.time() - verified_at, e2e, group)

    _later(s, observe)


def closed(s: Session, lease: LeaseRecord, status: str, now_s: float) -> None:
    """``lease`` closed (``leases.close``): an expired, given-back or revoked member is recorded as lost."""
    if status not in LOST:
        return
    m = s.get(ProofBatchJob, lease.lease_id)
    if m is None or m.verdict is not None:
        return
    batch = s.get(ProofBatch, m.batch_id)
    m.verdict = status
    if batch is not None:
        batch.n_lost += 1
        _refresh(s, batch, now_s)
        _later(s, lambda pm: pm.lost(1))


def batch_view(s: Session, batch: ProofBatch) -> dict[str, Any]:
    """A batch with its members (no proof bytes): what ``GET /v1/pipeline/batches/{id}`` shows."""
    cols = ("batch_id", "provider", "round_id", "circuit_id", "pk_sha256", "vk_sha256", "n_jobs", "n_ok",
            "n_rejected", "n_lost", "verify_checks", "verify_s", "created_at", "delivered_at", "uploaded_at",
            "verified_at", "code", "record_sha256")
    out = {c: getattr(batch, c) for c in cols}
    out["jobs"] = [{c: getattr(m, c) for c in ("job_id", "lease_id", "attempt", "input_hash", "public", "result_hash",
                                                "proof_sha256", "publics_sha256", "verdict", "reason", "verify_group",
                                                "verify_checks", "verify_s", "delivered_at", "uploaded_at",
                                                "verified_at")}
                   for m in members_of(s, batch.batch_id)]
    return out


def queue_depths(s: Session) -> dict[str, int]:
    """Jobs waiting in each stage now: ``queue_match`` (open proof jobs), ``dispatch`` (matched proof leases not
    yet delivered), ``prove`` (delivered, no upload yet)."""
    open_jobs = s.scalar(select(func.count()).select_from(JobRecord)
                         .where(JobRecord.status == "open", JobRecord.kind == "proof")) or 0
    by_status = dict(s.execute(select(LeaseRecord.status, func.count()).select_from(ProofBatchJob)
                               .join(LeaseRecord, LeaseRecord.lease_id == ProofBatchJob.lease_id)
                               .where(LeaseRecord.status.in_(("assigned", "running")))
                               .group_by(LeaseRecord.status)).all())
    return {"queue_match": int(open_jobs), "dispatch": int(by_status.get("assigned", 0)),
            "prove": int(by_status.get("running", 0)), "verify": 0, "pay": 0}


def stats(rt: Any) -> dict[str, Any]:
    """The pipeline's stage metrics (``metrics.PipelineStageMetrics.snapshot``), queue depths read now, and the
    recorded batches' totals from the database."""
    with rt.read() as s:
        depths = queue_depths(s)
        totals = s.execute(select(func.count(), func.coalesce(func.sum(ProofBatch.n_jobs), 0),
                                  func.coalesce(func.sum(ProofBatch.n_ok), 0),
                                  func.coalesce(func.sum(ProofBatch.n_rejected), 0),
                                  func.coalesce(func.sum(ProofBatch.n_lost), 0),
                                  func.coalesce(func.sum(ProofBatch.verify_checks), 0))).one()
        last = list(s.scalars(select(ProofBatch.batch_id).order_by(ProofBatch.created_at.desc()).limit(10)))
    snap = rt.metrics.pipeline.snapshot(depths)
    snap["recorded"] = {"batches": int(totals[0]), "jobs": int(totals[1]), "ok": int(totals[2]),
                        "rejected": int(totals[3]), "lost": int(totals[4]), "verify_checks": int(totals[5]),
                        "latest_batches": last}
    return snap


def router(rt: Any) -> APIRouter:
    """``GET /v1/pipeline/stats`` (public: aggregate figures only)."""
    r = APIRouter()

    @r.get("/v1/pipeline/stats")
    def pipeline_stats() -> dict[str, Any]:
        return stats(rt)

    return r
