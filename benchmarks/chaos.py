"""Chaos benchmark (issue 14): a seeded, replayable random workload over the REAL market (the exchange as a
subprocess on Postgres and anvil, provider agents each with their own Ray cluster, clients funded by real Vault
deposits) with faults injected on a schedule drawn from the seed, then the checks: every job terminal, no job
paid twice, the ledger equal to a replay of its journal, no escrow left locked, the Vault audit balanced.

    nice -n 10 python benchmarks/chaos.py --seed 7 --jobs 200 [--json]

The same seed gives the same workload and fault schedule (printed first). Fault kinds: SIGKILL of a provider
agent (restarted), SIGKILL of a provider's raylet, SIGKILL of the exchange (restarted), Postgres stop/start,
RPC pause/resume (SIGSTOP/SIGCONT on anvil), ``anvil_reorg`` of depth <= 5, a provider returning wrong results.
The engine lives in ``tests/chaos`` (the CI runs a short version: ``tests/chaos/test_chaos_short.py``).
Exit status: 0 when every check passes (and, with ``--jobs`` >= 160, at least 20 faults of at least 5 kinds),
1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "raymarket-numba"))

from tests.chaos.engine import run_chaos, table, verdict  # noqa: E402
from tests.chaos.schedule import FAULT_KINDS, make_plan  # noqa: E402
from tests.chaos.world import short_base  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--faults", type=int, default=None, help="default: max(7, jobs // 8)")
    p.add_argument("--window-s", type=float, default=None, help="seconds of submissions and faults (default 2/job)")
    p.add_argument("--kinds", default=",".join(FAULT_KINDS), help="fault kinds, comma-separated")
    p.add_argument("--providers", type=int, default=3)
    p.add_argument("--clients", type=int, default=3)
    p.add_argument("--plan-only", action="store_true", help="print the schedule and exit")
    p.add_argument("--json", action="store_true", help="the report as JSON on stdout (table on stderr)")
    a = p.parse_args(argv)
    plan = make_plan(a.seed, a.jobs, clients=a.clients, providers=a.providers, window_s=a.window_s,
                     faults=a.faults, kinds=tuple(k for k in a.kinds.split(",") if k))
    print("schedule: " + json.dumps(plan.to_json()), file=sys.stderr, flush=True)
    if a.plan_only:
        return 0
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    report = run_chaos(plan, short_base(), providers=a.providers, clients=a.clients, log=log)
    big = a.jobs >= 160
    report["failed_checks"] = verdict(report, min_faults=20 if big else 0, min_kinds=5 if big else 0)
    print(table(report), file=sys.stderr if a.json else sys.stdout, flush=True)
    if a.json:
        print(json.dumps(report, indent=1, default=str))
    elif report["failed_checks"]:
        print("FAILED: " + "; ".join(report["failed_checks"]))
    return 1 if report["failed_checks"] else 0


if __name__ == "__main__":
    sys.exit(main())
