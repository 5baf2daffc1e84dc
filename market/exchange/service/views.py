"""The JSON views the API returns (wei as decimal strings, times as Unix seconds)."""

from __future__ import annotations

from typing import Any

from market import exchange as ex
from market.core.policy import default_policy
from market.db.models import JobRecord, ProviderRecord
from sqlalchemy.orm import Session


def _wei(v: int | None) -> str | None:
    return None if v is None else str(int(v))


def job_view(s: Session, job: JobRecord, explanation: str | None = None) -> dict[str, Any]:
    """The public view of a job (no input, no preimage, no result bytes). ``verification``: the job's policy;
    ``attested_verification``: the policy its provider signed into the EIP-712 attestation (``None`` before it
    is attested; the exchange takes no attestation under another policy than the job's)."""
    history = [{"at_s": e.at_s, "event": e.event, "status": e.status, "detail": e.detail}
               for e in ex.job_history(s, job.job_id)]
    return {"job_id": job.job_id, "kind": job.kind, "status": job.status, "client": job.client,
            "provider": job.provider, "max_price_wei": _wei(job.max_price_wei), "price_wei": _wei(job.cleared_price_wei),
            "collateral_wei": _wei(job.collateral_wei), "attempt": job.attempt, "input_hash": job.input_hash,
            "created_at": job.created_at, "deadline_at": job.deadline_s, "history": history,
            "explanation": explanation if job.status == "open" else None, "result_hash": job.result_hash,
            "batch_id": job.batch_id, "tx_hash": job.settle_tx, "verification": job_policy(job),
            "attested_verification": (job.attestation or {}).get("verification")}


def job_policy(job: JobRecord) -> str:
    """The job's verification policy, canonical text (``spec["verification"]``; jobs from before policies: their
    kind's default, ``market.core.policy.default_policy``)."""
    return str((job.spec or {}).get("verification") or default_policy(job.kind))


def provider_view(p: ProviderRecord, now_s: float, lease_s: float) -> dict[str, Any]:
    """The public view of a provider (``GET /v1/providers``)."""
    online = p.last_seen_at is not None and now_s - p.last_seen_at <= lease_s
    offer = {"price_per_cpu_s_wei": _wei(p.price_per_cpu_s_wei), "price_per_gpu_s_wei": _wei(p.price_per_gpu_s_wei),
             "cpus": p.cpus, "gpus": p.gpus, "gpu_model": p.gpu_model, "memory_bytes": p.memory_bytes,
             "speed": p.speed}
    return {"name": p.name, "address": p.address, "hardware": p.hardware, "offer": offer, "online": online,
            "reputation": p.reputation, "draining": p.draining, "ray_address": p.ray_address,
            "last_seen_at": p.last_seen_at}
