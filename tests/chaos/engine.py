"""One chaos run: the seeded plan (:mod:`tests.chaos.schedule`) carried out on a real market
(:mod:`tests.chaos.world`), then the checks (:mod:`tests.chaos.checks`); returns the report.

Two threads: the workload (the clients submit and cancel on the plan's clock, retrying while the exchange or its
database is down: client-chosen job ids make a retried submit idempotent) and the faults (each at its time, one
after the other; between faults, an agent that exited is restarted, as a service manager would). Then every job
is awaited until terminal (bounded by its deadline plus the agents' job timeout), everything down is brought
back, the audit is awaited until balanced (bounded), and the database is checked.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from sqlalchemy.orm import Session

from market.client import ApiError
from tests.chaos.checks import TERMINAL, job_statuses, run_checks
from tests.chaos.schedule import FAULT_KINDS, Fault, Plan, PlannedJob
from tests.chaos.world import ChaosWorld

#: A job's budget and its deadline at the exchange, by kind. A job no offer can finish in time is never matched:
#: the exchange runs a job for ``duration_estimate_s / speed`` by the provider's measured (challenge) speed, which a
#: loaded box measures low; a proof is estimated by its constraints (a few-round MiMC-7 proof: 1 reference-second,
#: ``service.jobs.proof_estimate_s``), so even a provider at the failed-challenge floor (speed 0.001) can meet a
#: proof's deadline.
#: Both kinds offer their provider the same budget (an inference job's spot-check reserve, a third of 1.5e15 at the
#: default ``spot-check:0.5``, comes on top): with 1e15 for both, every proof out-bid every inference job
#: (welfare = budget - ask), and on a saturated box (chaos --jobs 200, seed 1: 3 single-slot agents, load 20+) the
#: proof backlog starved the inference jobs until their 240 s deadlines (77 expired, never matched).
MAX_PRICE_WEI = {"proof": 10**15, "inference": 15 * 10**14}
DEADLINE_S = {"proof": 1800.0, "inference": 240.0}
#: Faults that take no time to inject (the workload thread fires them on the plan's clock).
INSTANT_FAULTS = ("lie",)
#: The client's own patience: a job not terminal this many seconds after its submit is cancelled by its client
#: (a cancel of an open, assigned or running job refunds it; of a paid one it is refused).
PATIENCE_S = 300.0
#: How long a submit or cancel is retried while the exchange is unreachable, seconds.
RETRY_S = 600.0


def _transient(exc: ApiError) -> bool:
    return exc.code == "unreachable" or (exc.status or 0) >= 500


class Run:
    """The state of one run (see the module docstring)."""

    def __init__(self, plan: Plan, world: ChaosWorld, log: Callable[[str], None]) -> None:
        self.plan, self.world, self.log = plan, world, log
        self.t0 = 0.0
        self.submitted: dict[str, float] = {}
        self.submit_errors: dict[str, str] = {}
        self.cancels = {"sent": 0, "refused": 0, "impatient": 0, "impatient_refused": 0}
        self._impatient: set[str] = set()
        self.retries = 0
        self.faults: list[dict[str, Any]] = []
        self.unplanned: list[str] = []
        self.errors: list[str] = []
        self._faults_done = threading.Event()

    def now(self) -> float:
        return time.monotonic() - self.t0

    # ------------------------------------------------------------------ workload
    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + RETRY_S
        while True:
            try:
                return fn()
            except ApiError as exc:
                if not _transient(exc) or time.monotonic() > deadline:
                    raise
                self.retries += 1
                time.sleep(0.5)

    def _submit(self, job: PlannedJob) -> None:
        c = self.world.clients[job.client]
        common = {"max_price_wei": MAX_PRICE_WEI[job.kind], "deadline_s": DEADLINE_S[job.kind], "job_id": job.job_id}
        if job.kind == "proof":
            fn = lambda: c.submit_proof(job.preimage, rounds=job.rounds, **common)  # noqa: E731
        else:
            fn = lambda: c.submit_inference(job.text.encode(), **common)  # noqa: E731
        try:
            self._call(f"submit {job.job_id}", fn)
            self.submitted[job.job_id] = time.time()
        except ApiError as exc:
            self.submit_errors[job.job_id] = f"{exc.code}: {exc.message[:200]}"
            self.log(f"submit {job.job_id} refused: {exc.code}: {exc.message[:200]}")

    def _cancel(self, job: PlannedJob) -> None:
        if job.job_id not in self.submitted:
            return
        try:
            self._call(f"cancel {job.job_id}", lambda: self.world.clients[job.client].cancel(job.job_id))
            self.cancels["sent"] += 1
        except ApiError:
            self.cancels["refused"] += 1  # e.g. already paid: a cancel loses that race, by the rule

    def impatience(self, stop: threading.Event) -> None:
        """Cancel, as its client, every submitted job not terminal :data:`PATIENCE_S` after its submit."""
        by_id = {j.job_id: j for j in self.plan.jobs}
        prefix = f"chaos-s{self.plan.seed}-"
        while not stop.wait(5.0):
            now = time.time()
            due = [j for j, t in list(self.submitted.items()) if now - t > PATIENCE_S and j not in self._impatient]
            if not due:
                continue
            try:
                with Session(self.world.engine) as s:
                    st = job_statuses(s, prefix)
            except Exception:  # noqa: BLE001 -- Postgres restarting
                continue
            for job_id in due:
                if st.get(job_id) in TERMINAL:
                    self._impatient.add(job_id)
                    continue
                self._impatient.add(job_id)
                c = self.world.clients[by_id[job_id].client]
                try:
                    self._call(f"cancel {job_id}", lambda c=c, j=job_id: c.cancel(j))
                    self.cancels["impatient"] += 1
                except ApiError:
                    self.cancels["impatient_refused"] += 1

    def workload(self) -> None:
        """Submit and cancel on the plan's clock; ``lie`` faults fire here too, on time (a lie is a file written at
        once: behind a slow restart in the fault thread it came after the last job, and no lie was ever told)."""
        events = sorted([(j.at_s, 0, j) for j in self.plan.jobs]
                        + [(j.cancel_at_s, 1, j) for j in self.plan.jobs if j.cancel_at_s is not None]
                        + [(f.at_s, 2, f) for f in self.plan.faults if f.kind in INSTANT_FAULTS],
                        key=lambda e: (e[0], e[1]))
        for at, what, item in events:
            wait = at - self.now()
            if wait > 0:
                time.sleep(wait)
            if what == 2:
                self._inject(item)
            else:
                (self._submit if what == 0 else self._cancel)(item)
        self.log(f"workload done at {self.now():.0f} s: {len(self.submitted)} submitted, "
                 f"{len(self.submit_errors)} refused, {self.retries} retried calls")

    # ------------------------------------------------------------------ faults
    def _idle(self, until_s: float) -> None:
        """Sleep until ``until_s`` (run time), restarting agents that exited meanwhile."""
        while self.now() < until_s:
            for a in self.world.agents:
                if not a.alive():
                    self.unplanned.append(f"{self.now():.0f}s agent {a.name} exited (rc {a.proc.returncode}); "
                                          "restarted")
                    self.log(self.unplanned[-1])
                    try:
                        a.restart(0.0)
                    except Exception as exc:  # noqa: BLE001 -- reported; the run goes on
                        self.errors.append(f"restart of {a.name}: {exc}"[:500])
            time.sleep(min(1.0, max(0.0, until_s - self.now())))

    def _inject(self, f: Fault) -> None:
        started = self.now()
        try:
            seen = self.world.inject(f.kind, f.target, f.param)
            ok = True
        except Exception as exc:  # noqa: BLE001 -- a failed injection is reported, not fatal
            seen, ok = {"error": f"{type(exc).__name__}: {exc}"[:500]}, False
            self.errors.append(f"fault {f.kind} at {started:.0f}s: {seen['error']}")
        rec = {**asdict(f), "started_s": round(started, 1), "took_s": round(self.now() - started, 1), "ok": ok, **seen}
        self.faults.append(rec)
        self.log(f"fault {len(self.faults)}/{len(self.plan.faults)} at {started:.0f}s: {f.kind} "
                 f"{'' if f.target is None else 'cp' + str(f.target + 1)} {seen}")

    def fault_loop(self) -> None:
        """The faults other than :data:`INSTANT_FAULTS`, one after the other, each at its time or after the one
        before it ended."""
        try:
            for f in self.plan.faults:
                if f.kind in INSTANT_FAULTS:
                    continue
                self._idle(f.at_s)
                self._inject(f)
        finally:
            self._faults_done.set()

    # ------------------------------------------------------------------ end
    def wait_terminal(self, bound_s: float) -> bool:
        """Wait until every submitted job is terminal, at most ``bound_s`` seconds; True if they all are."""
        deadline = time.monotonic() + bound_s
        prefix = f"chaos-s{self.plan.seed}-"
        last_log = 0.0
        while time.monotonic() < deadline:
            try:
                with Session(self.world.engine) as s:
                    st = job_statuses(s, prefix)
            except Exception:  # noqa: BLE001 -- Postgres restarting
                time.sleep(1.0)
                continue
            left = [j for j in self.submitted if st.get(j) not in TERMINAL]
            if not left:
                return True
            if time.monotonic() - last_log > 30:
                last_log = time.monotonic()
                self.log(f"{self.now():.0f}s: {len(left)} jobs not terminal yet, e.g. "
                         f"{', '.join(f'{j}={st.get(j)}' for j in left[:4])}")
            time.sleep(2.0)
        return False


def run_chaos(plan: Plan, base: Path, *, providers: int = 3, clients: int = 3, log: Callable[[str], None] = print,
              audit_wait_s: float = 180.0, keep_logs: bool = True) -> dict[str, Any]:
    """Carry out ``plan`` on a fresh real market under ``base``; returns the report (see ``benchmarks/chaos.py``).

    Every process started is stopped before this returns (also on an error).
    """
    wall0 = time.monotonic()
    world = ChaosWorld(base, providers=providers, clients=clients, log=log)
    world.start()
    setup_s = time.monotonic() - wall0
    run = Run(plan, world, log)
    report: dict[str, Any] = {}
    try:
        run.t0 = time.monotonic()
        ft = threading.Thread(target=run.fault_loop, name="chaos-faults", daemon=True)
        ft.start()
        stop_impatience = threading.Event()
        it = threading.Thread(target=run.impatience, args=(stop_impatience,), name="chaos-patience", daemon=True)
        it.start()
        run.workload()
        ft.join()
        healed = world.heal()
        all_terminal = run.wait_terminal(PATIENCE_S + world.job_timeout_s + 180.0)
        stop_impatience.set()
        healed += world.heal()
        work_s = run.now()
        audit, t_audit = {}, time.monotonic()
        while time.monotonic() - t_audit < audit_wait_s:
            try:
                audit = world.audit()
                if audit.get("balanced"):
                    break
            except ApiError as exc:
                audit = {"error": f"{exc.code}: {exc.message[:200]}"}
            time.sleep(2.0)
        lies = [lie for a in world.agents for lie in a.lies()]
        checks = run_checks(world.engine, f"chaos-s{plan.seed}-", lies)
        counts = {k: 0 for k in FAULT_KINDS}
        for f in run.faults:
            if f["ok"]:
                counts[f["kind"]] += 1
        report = {
            "seed": plan.seed, "jobs": len(plan.jobs), "jobs_submitted": len(run.submitted),
            "faults_injected": counts, "faults_total": sum(counts.values()),
            "fault_kinds": sum(1 for v in counts.values() if v), "jobs_terminal": checks["jobs_terminal"],
            "all_terminal": all_terminal and checks["jobs_terminal"] == len(run.submitted),
            "paid_twice": checks["paid_twice"], "ledger_violations": checks["ledger_violations"],
            "stuck_escrow_wei": checks["stuck_escrow_wei"], "audit_balanced": bool(audit.get("balanced")),
            "audit": audit, "jobs_by_status": checks["jobs_by_status"], "failed_reasons": checks["failed_reasons"],
            "lies": checks["lies"], "reorg_effects": checks["reorg_effects"],
            "details": {k: checks[k] for k in ("not_terminal", "paid_twice_jobs", "ledger_violation_lines",
                                               "stuck_escrow_jobs", "reserved_wei_all")},
            "submit_refused": run.submit_errors, "cancels": run.cancels, "retried_calls": run.retries,
            "unplanned_restarts": run.unplanned, "errors": run.errors, "healed_at_end": healed,
            "faults": run.faults, "schedule": plan.to_json(),
            "wall_s": {"setup": round(setup_s, 1), "workload_and_drain": round(work_s, 1)},
            "logs": str(base),
        }
    finally:
        world.close()
        if report:
            report["wall_s"]["total"] = round(time.monotonic() - wall0, 1)
    return report


def verdict(report: dict[str, Any], *, min_faults: int = 0, min_kinds: int = 0) -> list[str]:
    """The failed conditions of the issue's "done when" (empty when the run passes)."""
    bad = []
    if report["faults_total"] < min_faults:
        bad.append(f"{report['faults_total']} faults injected < {min_faults}")
    if report["fault_kinds"] < min_kinds:
        bad.append(f"{report['fault_kinds']} fault kinds < {min_kinds}")
    if not report["all_terminal"]:
        bad.append(f"{report['jobs_terminal']} of {report['jobs_submitted']} jobs terminal")
    for key in ("paid_twice", "ledger_violations", "stuck_escrow_wei"):
        if report[key]:
            bad.append(f"{key} = {report[key]}")
    if report["lies"]["paid"]:
        bad.append(f"{report['lies']['paid']} lies paid: {report['lies']['paid_jobs']}")
    if not report["audit_balanced"]:
        bad.append("audit not balanced")
    return bad


def table(report: dict[str, Any]) -> str:
    """The report as a plain-text table."""
    rows = [("seed", report["seed"]), ("jobs (submitted)", f"{report['jobs']} ({report['jobs_submitted']})"),
            ("faults injected", f"{report['faults_total']} of {report['fault_kinds']} kinds"),
            *((f"  {k}", v) for k, v in report["faults_injected"].items()),
            ("jobs terminal", f"{report['jobs_terminal']} {report['jobs_by_status']}"),
            *((f"  failed: {k[:40]}", v) for k, v in list(report.get("failed_reasons", {}).items())[:4]),
            ("paid twice", report["paid_twice"]), ("ledger violations", report["ledger_violations"]),
            ("stuck escrow (wei)", report["stuck_escrow_wei"]), ("audit balanced", report["audit_balanced"]),
            ("lies told / caught / paid", f"{report['lies']['told']} / {report['lies']['caught']} / "
                                          f"{report['lies']['paid']}"
                                          + (f" (+{report['lies']['as_verifier']} as verifier)"
                                             if report['lies']['as_verifier'] else "")
                                          + (f" ({report['lies']['unresolved']} unresolved: "
                                             f"{report['lies']['unresolved_jobs'][:3]})"
                                             if report['lies']['unresolved'] else "")),
            ("unplanned restarts", len(report["unplanned_restarts"])), ("errors", len(report["errors"])),
            ("wall (s)", report["wall_s"])]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
