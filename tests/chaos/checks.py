"""The end-of-run checks of a chaos run, read straight from the exchange's database (and its audit).

* every job terminal: ``paid``, ``settled``, ``failed`` or ``cancelled``;
* no job paid twice: at most one ``payment`` leg in the ledger journal and one ``paid`` job event per job;
* the ledger equals a replay of its journal (:func:`market.ledger.check_invariants`: balances vs journal,
  holdings vs open records, sum zero, no orphan rows);
* no escrow left locked: no pending escrow or collateral reservation of a terminal job;
* lies: every falsified upload (:mod:`tests.chaos.liar_agent`) caught (refused at upload, or found wrong by the
  spot re-execution of an inference job) and never paid (:func:`lie_outcomes`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from market import ledger
from market.exchange.service.spot import LEASE_PREFIX

TERMINAL = ("paid", "settled", "failed", "cancelled")


def job_statuses(s: Session, prefix: str) -> dict[str, str]:
    """``job_id -> status`` of the run's jobs (ids starting with ``prefix``)."""
    rows = s.execute(text("SELECT job_id, status FROM jobs WHERE job_id LIKE :p"), {"p": prefix + "%"}).all()
    return {r[0]: r[1] for r in rows}


def paid_twice(s: Session, prefix: str) -> list[str]:
    """Jobs with more than one payment leg in the journal or more than one ``paid`` event."""
    legs = s.execute(text("SELECT job_id FROM ledger_transfers WHERE kind = 'payment' AND job_id LIKE :p "
                          "GROUP BY job_id HAVING count(*) > 1"), {"p": prefix + "%"}).scalars().all()
    events = s.execute(text("SELECT job_id FROM job_events WHERE event = 'paid' AND job_id LIKE :p "
                            "GROUP BY job_id HAVING count(*) > 1"), {"p": prefix + "%"}).scalars().all()
    return sorted(set(legs) | set(events))


def stuck_escrow(s: Session, statuses: dict[str, str]) -> tuple[int, list[str]]:
    """Wei still reserved (escrow or collateral, ``pending``) for terminal jobs, and those jobs."""
    total, jobs = 0, set()
    for job_id, kind, remaining in s.execute(text("SELECT job_id, kind, remaining_wei FROM ledger_pendings "
                                                  "WHERE status = 'pending'")).all():
        if statuses.get(job_id) in TERMINAL and int(remaining) > 0:
            total += int(remaining)
            jobs.add(f"{job_id}:{kind}")
    return total, sorted(jobs)


def _spot_mismatch(s: Session, job_id: str, lease_id: str) -> bool:
    """Whether a spot re-execution of ``job_id`` found the upload of ``lease_id`` wrong (the job's spot record or
    one of its earlier attempts', :mod:`market.exchange.service.spot`)."""
    data = s.execute(text("SELECT data FROM job_blobs WHERE job_id = :j AND name = 'spot'"),
                     {"j": job_id}).scalar_one_or_none()
    if data is None:
        return False
    rec = json.loads(bytes(data))
    return any(r.get("tested_lease") == lease_id and (r.get("outcome") or {}).get("status") == "mismatch"
               for r in [*rec.get("history", []), rec])


def lie_outcomes(s: Session, lies: list[dict[str, Any]]) -> dict[str, Any]:
    """What became of each falsified upload.

    * ``paid``: the job ended paid (or settled) on the lying lease's attestation -- must never happen;
    * ``caught``: refused at upload (the lease ``rejected``: a proof that does not verify, a malformed result) or
      found wrong by a spot re-execution (the job re-auctioned without the liar, its collateral slashed);
    * ``as_verifier``: told on a spot-check verification task (``lv-`` lease: never paid; the exchange cannot tell
      which of two disagreeing providers lied, so the tested one takes the fault and the job is re-auctioned);
    * ``unresolved``: neither (e.g. the job was cancelled or expired while its lying result waited for a verifier).
    """
    out: dict[str, Any] = {"told": len(lies), "caught": 0, "paid": 0, "as_verifier": 0, "unresolved": 0,
                           "paid_jobs": [], "unresolved_jobs": []}
    for lie in lies:
        lease_id, job_id = str(lie["lease_id"]), str(lie["job_id"])
        job = s.execute(text("SELECT status, attestation FROM jobs WHERE job_id = :j"), {"j": job_id}).one_or_none()
        att = job[1] if job is not None else None
        att = json.loads(att) if isinstance(att, str) else (att or {})
        lease = s.execute(text("SELECT status FROM leases WHERE lease_id = :l"), {"l": lease_id}).scalar_one_or_none()
        if job is not None and job[0] in ("paid", "settled") and att.get("lease_id") == lease_id:
            out["paid"] += 1
            out["paid_jobs"].append(f"{job_id} ({lie['kind']})")
        elif lease_id.startswith(LEASE_PREFIX):
            out["as_verifier"] += 1
        elif lease == "rejected" or _spot_mismatch(s, job_id, lease_id):
            out["caught"] += 1
        else:
            out["unresolved"] += 1
            out["unresolved_jobs"].append(f"{job_id} ({lie['kind']}, job {job[0] if job else '?'}, lease {lease})")
    return out


def failure_reasons(s: Session, statuses: dict[str, str], prefix: str) -> dict[str, int]:
    """Why the failed jobs failed: the reason of each one's last ``fault``/``expired`` event (ids and numbers
    blanked, so that equal causes count together) -> how many jobs."""
    last: dict[str, str] = {}
    for job_id, event, detail in s.execute(text("SELECT job_id, event, detail FROM job_events WHERE job_id LIKE :p "
                                                "AND event IN ('fault', 'expired') ORDER BY id"),
                                           {"p": prefix + "%"}).all():
        d = detail if isinstance(detail, dict) else {}
        last[job_id] = f"{event}: {d.get('reason') or d}"
    out: dict[str, int] = {}
    for job_id, st in statuses.items():
        if st == "failed":
            key = re.sub(r"0x[0-9a-fA-F]+|[0-9a-f]{12,}|\d+(\.\d+)?", "#", last.get(job_id, "no fault event"))[:120]
            out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def run_checks(engine: Any, prefix: str, lies: list[dict[str, Any]]) -> dict[str, Any]:
    """Every check of the module docstring, as the report's fields."""
    with Session(engine) as s:
        statuses = job_statuses(s, prefix)
        twice = paid_twice(s, prefix)
        violations = ledger.check_invariants(s)
        stuck_wei, stuck_jobs = stuck_escrow(s, statuses)
        lies_out = lie_outcomes(s, lies)
        failed_why = failure_reasons(s, statuses, prefix)
        reorg_effects = {
            "jobs_unsettled_by_reorg": s.execute(text("SELECT count(DISTINCT job_id) FROM job_events WHERE "
                                                      "event = 'unsettled' AND job_id LIKE :p"),
                                                 {"p": prefix + "%"}).scalar_one(),
            "vault_events_reverted": s.execute(text("SELECT count(*) FROM vault_reorgs")).scalar_one()}
        held_open = s.execute(text("SELECT coalesce(sum(remaining_wei), 0) FROM ledger_pendings "
                                   "WHERE status = 'pending'")).scalar_one()
    by_status: dict[str, int] = {}
    for st in statuses.values():
        by_status[st] = by_status.get(st, 0) + 1
    return {"jobs_recorded": len(statuses), "jobs_terminal": sum(st in TERMINAL for st in statuses.values()),
            "jobs_by_status": dict(sorted(by_status.items())),
            "not_terminal": sorted(j for j, st in statuses.items() if st not in TERMINAL)[:50],
            "paid_twice": len(twice), "paid_twice_jobs": twice[:50],
            "ledger_violations": len(violations), "ledger_violation_lines": violations[:50],
            "stuck_escrow_wei": stuck_wei, "stuck_escrow_jobs": stuck_jobs[:50],
            "reserved_wei_all": int(held_open), "lies": lies_out, "failed_reasons": failed_why,
            "reorg_effects": reorg_effects}
