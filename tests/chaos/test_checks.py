"""The chaos checks' lie accounting (pure, SQLite): a lie is paid only when its job ended paid on the lying lease's
attestation; refused at upload or found wrong by a spot re-execution is caught; a verifier's lie is never paid."""

from __future__ import annotations

import json

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from market.db.base import Base
from market.db.models import JobBlob, JobRecord, LeaseRecord, ProviderRecord
from tests.chaos.checks import lie_outcomes


def _job(job_id: str, status: str, lease_id: str | None = None) -> JobRecord:
    return JobRecord(job_id=job_id, client="c", kind="inference", status=status, spec={}, input_hash="0x" + "00" * 32,
                     max_price_wei=10, collateral_wei=0, deadline_s=1.0, created_at=0.0, updated_at=0.0,
                     attestation={"lease_id": lease_id} if lease_id else None)


def _lease(lease_id: str, job_id: str, status: str) -> LeaseRecord:
    return LeaseRecord(lease_id=lease_id, job_id=job_id, provider="liar", attempt=1, status=status, price_wei=1,
                       created_at=0.0, expires_at=1.0)


def test_lie_outcomes(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    Base.metadata.create_all(engine)
    spot = {"tested_lease": "l-new", "outcome": None,
            "history": [{"tested_lease": "l-spot", "outcome": {"status": "mismatch"}}]}
    with Session(engine) as s:
        s.add(ProviderRecord(name="liar", address="0x" + "11" * 20, cpus=1, memory_bytes=1, price_per_cpu_s_wei=1,
                             price_per_gpu_s_wei=0, registered_at=0.0))
        s.add_all([_job("j-paid", "settled", "l-paid"), _job("j-proof", "paid", "l-honest"),
                   _job("j-spot", "paid", "l-new"), _job("j-left", "cancelled")])
        s.flush()
        s.add_all([_lease("l-paid", "j-paid", "completed"), _lease("l-proof", "j-proof", "rejected"),
                   _lease("l-spot", "j-spot", "completed"), _lease("lv-1", "j-spot", "completed"),
                   _lease("l-left", "j-left", "completed")])
        data = json.dumps(spot).encode()
        s.add(JobBlob(job_id="j-spot", name="spot", size_bytes=len(data), data=data))
        s.commit()
        lies = [{"job_id": j, "lease_id": lease, "kind": "inference"} for j, lease in
                (("j-paid", "l-paid"), ("j-proof", "l-proof"), ("j-spot", "l-spot"), ("j-spot", "lv-1"),
                 ("j-left", "l-left"))]
        out = lie_outcomes(s, lies)
    assert (out["told"], out["paid"], out["caught"], out["as_verifier"], out["unresolved"]) == (5, 1, 2, 1, 1), out
    assert out["paid_jobs"] == ["j-paid (inference)"] and out["unresolved_jobs"][0].startswith("j-left")
