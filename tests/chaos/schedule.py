"""The seeded plan of a chaos run: the workload (who submits which job when, which are cancelled) and the fault
schedule, both drawn from one seed, so that the same seed gives the same plan (TigerBeetle's VOPR does the same
with its seeds). Pure: no process is touched here (:mod:`tests.chaos.world` carries the plan out).

Times are seconds from the start of the workload. A fault's ``target`` is a provider index (``None`` when the
fault hits a shared component) and ``param`` its size: seconds down (exchange, Postgres, RPC pause, agent),
depth in blocks (reorg) or how many results a provider falsifies (lie).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace
from typing import Any

#: Every fault kind, in the order of the issue.
FAULT_KINDS = ("agent_kill", "raylet_kill", "exchange_kill", "postgres_restart", "rpc_pause", "reorg", "lie")
#: Kinds that hit one provider (``target`` is its index).
PROVIDER_FAULTS = ("agent_kill", "raylet_kill", "lie")
#: A lie fault fires by this share of the last submit's time at the latest (later ones would find no job left).
LIE_LATEST = 0.6
#: Job kinds of the workload.
JOB_KINDS = ("proof", "inference")

_WORDS = ("market", "proof", "ray", "ledger", "escrow", "lease", "chain", "vault", "provider", "client", "block",
          "round", "price", "stake", "slash", "epoch", "root", "witness", "circuit", "embedding")


@dataclass(frozen=True)
class Fault:
    """One fault: at ``at_s``, ``kind`` on ``target`` (provider index or None) with size ``param``."""

    at_s: float
    kind: str
    target: int | None
    param: float


@dataclass(frozen=True)
class PlannedJob:
    """One job of the workload: client ``client`` submits it at ``at_s``; cancelled at ``cancel_at_s`` if set.

    Attributes:
        job_id: the client-chosen id (so a retried submit is idempotent).
        kind: ``proof`` (``preimage``, ``rounds``) or ``inference`` (``text``).
    """

    at_s: float
    job_id: str
    client: int
    kind: str
    preimage: int = 0
    rounds: int = 0
    text: str = ""
    cancel_at_s: float | None = None


@dataclass(frozen=True)
class Plan:
    """Everything a run does, from the seed."""

    seed: int
    window_s: float
    jobs: list[PlannedJob]
    faults: list[Fault]

    def to_json(self) -> dict[str, Any]:
        """The schedule as JSON (faults in full, jobs summarised)."""
        return {"seed": self.seed, "window_s": self.window_s, "faults": [asdict(f) for f in self.faults],
                "jobs": {"count": len(self.jobs), "proof": sum(j.kind == "proof" for j in self.jobs),
                         "inference": sum(j.kind == "inference" for j in self.jobs),
                         "cancelled": sum(j.cancel_at_s is not None for j in self.jobs)}}


def default_fault_count(jobs: int) -> int:
    """How many faults a run of ``jobs`` jobs gets by default: one per 8 jobs, at least one of every kind."""
    return max(len(FAULT_KINDS), jobs // 8)


def make_plan(seed: int, jobs: int, *, clients: int = 3, providers: int = 3, window_s: float | None = None,
              faults: int | None = None, kinds: tuple[str, ...] = FAULT_KINDS, cancel_rate: float = 0.05,
              proof_rounds: tuple[int, ...] = (4, 8)) -> Plan:
    """Draw the workload and the fault schedule from ``seed``.

    Args:
        jobs: jobs to submit; clients, providers: how many of each the run has.
        window_s: seconds over which jobs are submitted and faults fire (default 2 s per job, at least 60 s).
        faults: number of faults (default :func:`default_fault_count`); the first ``len(kinds)`` are a
            permutation of ``kinds`` (every kind at least once), the rest drawn uniformly.
        cancel_rate: share of jobs the client cancels a few seconds after submitting.
    Raises:
        ValueError: an unknown fault kind, or no jobs.
    """
    if jobs < 1:
        raise ValueError("jobs must be >= 1")
    if unknown := set(kinds) - set(FAULT_KINDS):
        raise ValueError(f"unknown fault kinds {sorted(unknown)}")
    rng = random.Random(seed)
    window = float(window_s if window_s is not None else max(60.0, 2.0 * jobs))
    times = sorted(rng.uniform(0.0, window) for _ in range(jobs))
    planned = []
    for i, at in enumerate(times):
        kind = rng.choice(JOB_KINDS)
        common: dict[str, Any] = {"at_s": round(at, 3), "job_id": f"chaos-s{seed}-j{i:04d}",
                                  "client": rng.randrange(clients), "kind": kind}
        if rng.random() < cancel_rate:
            common["cancel_at_s"] = round(at + rng.uniform(0.5, 6.0), 3)
        if kind == "proof":
            planned.append(PlannedJob(**common, preimage=rng.getrandbits(64), rounds=rng.choice(proof_rounds)))
        else:
            n = rng.randint(2, 6)
            text = "".join(" ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 9))) + f" #{i}.{k}\n"
                           for k in range(n))
            planned.append(PlannedJob(**common, text=text))
    n_faults = faults if faults is not None else default_fault_count(jobs)
    order = list(kinds)
    rng.shuffle(order)
    chosen = (order + [rng.choice(kinds) for _ in range(max(0, n_faults - len(order)))])[:n_faults]
    at = sorted(rng.uniform(0.05 * window, 0.9 * window) for _ in chosen)
    faults = [_fault(rng, t, k, providers) for t, k in zip(at, chosen)]
    # a lie needs jobs after it to be told: none later than LIE_LATEST of the workload's span (same draws)
    last_job = times[-1] if times else window
    faults = [replace(f, at_s=round(min(f.at_s, LIE_LATEST * last_job), 3)) if f.kind == "lie" else f for f in faults]
    return Plan(seed, window, planned, sorted(faults, key=lambda f: f.at_s))


def _fault(rng: random.Random, at: float, kind: str, providers: int) -> Fault:
    target = rng.randrange(providers) if kind in PROVIDER_FAULTS else None
    if kind == "reorg":
        param = float(rng.randint(1, 5))
    elif kind == "lie":
        param = float(rng.randint(1, 3))
    elif kind in ("rpc_pause", "postgres_restart"):
        param = round(rng.uniform(1.0, 6.0), 2)
    else:  # seconds the process stays down before its restart
        param = round(rng.uniform(0.5, 4.0), 2)
    return Fault(round(at, 3), kind, target, param)
