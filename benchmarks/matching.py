"""Benchmark: one matching round on realistic random instances, against the exact MIP optimum.

For each size (jobs x offers): seconds for the whole round (books built from the JobOrder / Offer
records, matching, pricing, hashing; median of ``--repeats`` runs, wall clock and process CPU, with the
1-minute load average before and after them: the machine is shared, so read wall seconds beside it), welfare,
the exact solver's welfare and time (HiGHS MIP through ``scipy.optimize.milp``, capped at
``--exact-cap-s``; time includes building the feasible pairs), and the ratio. When HiGHS stops at the
cap without proving optimality, ``optimal_welfare`` is its best solution, ``upper_bound`` its proven
bound (or the LP relaxation's optimum, solved with the same cap, whichever is lower), and
``welfare_ratio`` is taken against that bound: a lower bound of the true ratio.

    python benchmarks/matching.py                 # table to stdout
    python benchmarks/matching.py --json          # JSON list to stdout
    python benchmarks/matching.py --sizes 1000x100,100000x5000 --exact-cap-s 120

Instances: :func:`tests.matching.oracle.make_instance` (mixed CPU/GPU jobs, 4 GPU models, lognormal
prices and durations, demand ~1.15 x supply). The baseline is the exact solver, run in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.matching.oracle import NOW_S, exact_optimum, make_instance, pairs_vectorised  # noqa: E402
from market.core.matching import clear_round  # noqa: E402

DEFAULT_SIZES = "1000x100,2000x100,10000x500,50000x2500,100000x5000"
#: Above this many feasible pairs the MIP is not even built (memory); it counts as not finishing.
MAX_PAIRS = 4_000_000
#: Above this many job x offer combinations the pairs are not even enumerated (minutes, GBs).
MAX_COMBINATIONS = 20_000_000


def run_size(n_jobs: int, n_offers: int, *, repeats: int, exact_cap_s: float, seed: int) -> dict:
    """One row of the benchmark (see the module docstring for the keys)."""
    jobs, offers, running = make_instance(n_jobs, n_offers, seed=seed)
    clear_round(jobs[:50], offers[:10], now_s=NOW_S)  # numba kernels loaded from cache / compiled
    walls, cpus, result = [], [], None
    load_before = os.getloadavg()[0]
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        result = clear_round(jobs, offers, now_s=NOW_S, running=running)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    assert result is not None
    row = {"jobs": n_jobs, "offers": n_offers, "seconds": statistics.median(walls), "cpu_seconds": statistics.median(cpus),
           "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
           "phases": {k: round(v, 4) for k, v in result.timings_s.items()}, "assigned": len(result.job_index),
           "welfare": result.welfare_wei, "optimal_welfare": None, "upper_bound": None, "optimal": False,
           "welfare_ratio": None, "reference_seconds": None, "reference_status": ""}
    if n_jobs * n_offers > MAX_COMBINATIONS:
        row["reference_status"] = f"not run: {n_jobs * n_offers:.1e} job x offer combinations"
        return row
    t = time.perf_counter()
    pairs = pairs_vectorised(jobs, offers, NOW_S, running)
    if len(pairs.job) > MAX_PAIRS:
        row.update(reference_seconds=time.perf_counter() - t, reference_status=f"not run: {len(pairs.job)} pairs")
        return row
    exact = exact_optimum(jobs, offers, NOW_S, running, pairs, time_limit_s=exact_cap_s, mip_rel_gap=1e-4)
    row.update(reference_seconds=time.perf_counter() - t, optimal=exact.optimal, reference_status=exact.status,
               optimal_welfare=exact.welfare, upper_bound=exact.bound)
    if exact.optimal and exact.welfare:
        row["welfare_ratio"] = result.welfare_wei / exact.welfare
        return row
    t = time.perf_counter()
    lp = exact_optimum(jobs, offers, NOW_S, running, pairs, time_limit_s=exact_cap_s, relax=True)
    row["lp_seconds"] = time.perf_counter() - t
    bounds = [b for b in (exact.bound, lp.welfare if lp.optimal else None) if b]
    if bounds:
        row["upper_bound"] = min(bounds)
        row["welfare_ratio"] = result.welfare_wei / row["upper_bound"]
    return row


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_table(rows: list[dict]) -> None:
    print(f"{'jobs':>7} {'offers':>6} {'round s':>8} {'cpu s':>7} {'load':>9} {'welfare':>11} {'exact':>11} {'ratio':>7} "
          f"{'exact s':>8}  note")
    for r in rows:
        note = "vs optimum" if r["optimal"] else (
            "vs upper bound (MIP capped)" if r["welfare_ratio"] else r["reference_status"][:50])
        load = "{:.1f}-{:.1f}".format(*r["load_avg"])
        print(f"{r['jobs']:>7} {r['offers']:>6} {r['seconds']:>8.3f} {r['cpu_seconds']:>7.3f} {load:>9} {r['welfare']:>11.4e} "
              f"{_fmt(r['optimal_welfare'], '11.4e'):>11} {_fmt(r['welfare_ratio'], '7.4f'):>7} "
              f"{_fmt(r['reference_seconds'], '8.1f'):>8}  {note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated JOBSxOFFERS")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--exact-cap-s", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="JSON list on stdout instead of the table")
    args = ap.parse_args(argv)
    rows = []
    for size in args.sizes.split(","):
        n_jobs, n_offers = (int(x) for x in size.lower().split("x"))
        rows.append(run_size(n_jobs, n_offers, repeats=args.repeats, exact_cap_s=args.exact_cap_s, seed=args.seed))
        print(f"done {size}: {rows[-1]['seconds']:.3f} s", file=sys.stderr)
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
    else:
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
