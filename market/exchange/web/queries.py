"""Read-only queries behind the web console: public market data only (no inputs, results, preimages or
a client's balances). Every function takes an open :class:`sqlalchemy.orm.Session` and only SELECTs.

Money is wei (``int``), times Unix seconds (``float``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from market import ledger
from market.db.models import JobEventRecord, JobRecord, LeaseRecord, ProviderRecord, RoundRecord
from market.ledger.models import Account, PendingSlash
from market.settlement.models import AppliedEvent, BatchRecord, LeafRecord

#: The job statuses the front page counts, in lifecycle order.
COUNTED_STATUSES = ("open", "assigned", "running", "verified", "paid", "settled", "failed", "cancelled")
#: Job spec fields safe to show anyone (an allowlist: a proof's preimage, an input's bytes never appear).
PUBLIC_SPEC_FIELDS = ("kind", "cpus", "gpus", "gpu_model", "memory_bytes", "duration_estimate_s",
                      "collateral_wei", "n_sentences", "input_bytes", "circuit", "rounds", "public")


def public_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The allowlisted fields of a stored job spec (top level and ``params``), by name."""
    flat = dict(spec or {})
    flat.update(flat.pop("params", None) or {})
    return {k: flat[k] for k in PUBLIC_SPEC_FIELDS if k in flat and flat[k] is not None}


def online(p: ProviderRecord, now_s: float, lease_s: float) -> bool:
    """A provider is online when it signed a heartbeat or poll within the lease time."""
    return p.last_seen_at is not None and now_s - p.last_seen_at <= lease_s


def providers(s: Session) -> list[ProviderRecord]:
    """Every registered provider, by name."""
    return list(s.scalars(select(ProviderRecord).order_by(ProviderRecord.name)))


def job_counts(s: Session) -> dict[str, int]:
    """``{status: number of jobs}`` for every :data:`COUNTED_STATUSES` (0 when none)."""
    got = dict(s.execute(select(JobRecord.status, func.count()).group_by(JobRecord.status)).all())
    return {st: int(got.get(st, 0)) for st in COUNTED_STATUSES}


def recent_rounds(s: Session, limit: int = 10) -> list[RoundRecord]:
    """The last ``limit`` auction rounds, newest first."""
    return list(s.scalars(select(RoundRecord).order_by(RoundRecord.at_s.desc()).limit(limit)))


def recent_jobs(s: Session, limit: int = 15) -> list[JobRecord]:
    """The last ``limit`` jobs submitted, newest first."""
    return list(s.scalars(select(JobRecord).order_by(JobRecord.created_at.desc()).limit(limit)))


def recent_batches(s: Session, limit: int = 10) -> list[BatchRecord]:
    """The last ``limit`` settlement batches (by window and sequence), newest first."""
    return list(s.scalars(select(BatchRecord).order_by(BatchRecord.window_index.desc().nulls_last(),
                                                       BatchRecord.seq.desc()).limit(limit)))


def resource_kind(spec: dict[str, Any]) -> str:
    """``gpu`` when the job asked for a GPU, else ``cpu``."""
    return "gpu" if int((spec or {}).get("gpus") or 0) > 0 else "cpu"


def clearing_prices(s: Session, limit: int = 500) -> dict[str, list[tuple[float, int]]]:
    """Cleared prices over time per resource kind (``cpu`` / ``gpu``), as wei per resource-second so that jobs
    of different sizes compare: ``cleared price / (duration estimate s x CPUs, or GPUs for a GPU job)``.

    Returns:
        ``{"cpu": [(round time s, wei per CPU-second)], "gpu": [...]}``, oldest first, from the last ``limit``
        matched jobs (kinds without a matched job are absent).
    """
    rows = s.execute(select(RoundRecord.at_s, JobRecord.cleared_price_wei, JobRecord.spec)
                     .join(RoundRecord, RoundRecord.round_id == JobRecord.round_id)
                     .where(JobRecord.cleared_price_wei.is_not(None))
                     .order_by(RoundRecord.at_s.desc()).limit(limit)).all()
    series: dict[str, list[tuple[float, int]]] = {}
    for at_s, price, spec in reversed(rows):
        kind = resource_kind(spec)
        units = int((spec or {}).get("gpus" if kind == "gpu" else "cpus") or 1)
        seconds = float((spec or {}).get("duration_estimate_s") or 1)
        series.setdefault(kind, []).append((float(at_s), int(int(price) / (seconds * max(units, 1)))))
    return series


def job_events(s: Session, job_id: str) -> list[JobEventRecord]:
    """The job's events, oldest first."""
    return list(s.scalars(select(JobEventRecord).where(JobEventRecord.job_id == job_id)
                          .order_by(JobEventRecord.id)))


def job_leases(s: Session, job_id: str) -> list[LeaseRecord]:
    """The job's leases (one per attempt and provider), oldest first."""
    return list(s.scalars(select(LeaseRecord).where(LeaseRecord.job_id == job_id)
                          .order_by(LeaseRecord.created_at)))


def job_leaf(s: Session, job_id: str) -> LeafRecord | None:
    """The job's settlement leaf (its attestation), if it was attested."""
    return s.scalars(select(LeafRecord).where(LeafRecord.job_ref == job_id)).first()


def provider_summary(s: Session, name: str) -> dict[str, Any]:
    """A provider's public money and work: ``earnings_wei`` (its provider account), ``bond_wei``,
    ``collateral_wei``, ``unbonding_wei``, ``slashing_wei`` (queued), ``slashes`` (rows), ``jobs_served``
    (jobs it was paid for), ``lease_counts`` ({lease status: n})."""
    ids = {"earnings_wei": ledger.provider_account(name), "bond_wei": ledger.bond_account(name),
           "collateral_wei": ledger.collateral_account(name), "unbonding_wei": ledger.unbonding_account(name),
           "slashing_wei": ledger.slashing_account(name)}
    got = dict(s.execute(select(Account.id, Account.balance_wei)
                         .where(Account.id.in_(ids.values()))).all())
    out: dict[str, Any] = {k: int(got.get(v, 0) or 0) for k, v in ids.items()}
    out["slashes"] = list(s.scalars(select(PendingSlash).where(PendingSlash.provider == name)
                                    .order_by(PendingSlash.requested_at_s)))
    out["jobs"] = list(s.scalars(select(JobRecord).where(JobRecord.provider == name)
                                 .order_by(JobRecord.updated_at.desc()).limit(50)))
    out["lease_counts"] = dict(Counter(dict(s.execute(
        select(LeaseRecord.status, func.count()).where(LeaseRecord.provider == name)
        .group_by(LeaseRecord.status)).all())))
    return out


def batch_leaves(s: Session, batch_id: str) -> list[LeafRecord]:
    """The batch's leaves, by index."""
    return list(s.scalars(select(LeafRecord).where(LeafRecord.batch_id == batch_id)
                          .order_by(LeafRecord.leaf_index)))


def batch_events(s: Session, batch_id: str) -> list[AppliedEvent]:
    """The contract events the watcher applied for the batch, by block."""
    return list(s.scalars(select(AppliedEvent).where(AppliedEvent.batch_id == batch_id)
                          .order_by(AppliedEvent.block_number, AppliedEvent.log_index)))


def jobs_by_leaf(s: Session, leaves: list[LeafRecord]) -> dict[str, str]:
    """``{leaf job_id (0x bytes32): exchange job id}`` for leaves whose job is known."""
    return {leaf.job_id: leaf.job_ref for leaf in leaves if leaf.job_ref}


def find_batch(s: Session, batch_id: str) -> BatchRecord | None:
    """The batch by its 0x id (any case)."""
    return s.scalars(select(BatchRecord).where(or_(BatchRecord.batch_id == batch_id,
                                                   BatchRecord.batch_id == batch_id.lower()))).first()
