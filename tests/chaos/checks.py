"""The end-of-run checks of a chaos run, read straight from the exchange's database (and its audit).

* every job terminal: ``paid``, ``settled``, ``failed`` or ``cancelled``;
* no job paid twice: at most one ``payment`` leg in the ledger journal and one ``paid`` job event per job;
* the ledger equals a replay of its journal (:func:`market.ledger.check_invariants`: balances vs journal,
  holdings vs open records, sum zero, no orphan rows);
* no escrow left locked: no pending escrow or collateral reservation of a terminal job;
* lies: every falsified upload (:mod:`tests.chaos.liar_agent`) was rejected, or paid (``lies_paid``: only a
  spot re-execution can catch a well-shaped wrong embedding).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from market import ledger

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


def lie_outcomes(s: Session, lies: list[dict[str, Any]]) -> dict[str, Any]:
    """What became of each falsified upload: its lease's status (``rejected`` caught, ``completed`` paid)."""
    out: dict[str, Any] = {"told": len(lies), "rejected": 0, "paid": 0, "other": 0, "paid_jobs": []}
    for lie in lies:
        status = s.execute(text("SELECT status FROM leases WHERE lease_id = :l"),
                           {"l": lie["lease_id"]}).scalar_one_or_none()
        if status == "rejected":
            out["rejected"] += 1
        elif status == "completed":
            out["paid"] += 1
            out["paid_jobs"].append(f"{lie['job_id']} ({lie['kind']})")
        else:
            out["other"] += 1
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
