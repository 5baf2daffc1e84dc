"""Long fuzz runs of every registered target (issue 14): mutated inputs, counted by outcome.

Run: ``python benchmarks/fuzz.py [--cases N] [--seed S] [--json] [--targets a,b] [--in-process]``.
Prints a table to stdout (or JSON with ``--json``); progress goes to stderr. Exits 1 when any
case crashed or hung.

Per target: ``cases``, ``clean_error`` (rejected with a project error), ``crash`` (another
exception, or the process died: SIGSEGV, SIGABRT), ``hang`` (past ``--hang-s``), ``accepted``,
and the first failing cases with details (``failures``; a case is rebuilt with
``tests.fuzz.engine.case_input(target, corpus, seed, case)``).

By default every target runs isolated (:func:`tests.fuzz.engine.run_isolated`): a child process
runs the target's deep consumer (for ``.zkey`` and ``.wtns``: parse, then the numba prover;
for the JSON files: parse, key checks and pairing verification) and a native crash or a hang
costs only that case. ``--in-process`` runs the cheaper in-process consumers instead (what the
test suite runs, ``tests/fuzz``).

Beyond the proving formats: ``jobspec`` (mutated TOML / JSON / YAML job spec documents through the spec model,
:mod:`tests.fuzz.jobspec_targets`) and ``api_body`` (mutated signed and unsigned request bodies against the exchange's
FastAPI app in process: a refusal must be a 4xx ``{"error", "message", "hint"}`` that changed no table,
:mod:`tests.fuzz.api_targets`). ``python benchmarks/fuzz.py --targets jobspec,api_body --cases 1000 --json``.

Targets come from :data:`tests.fuzz.engine.TARGET_MODULES`; to add one, register a
:class:`tests.fuzz.engine.Target` in a module and list the module there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "raymarket-numba"))

from tests.fuzz.engine import OUTCOMES, Tally, load_targets, run_in_process, run_isolated  # noqa: E402


def run(names: list[str], cases: int, seed: int, *, isolated: bool, hang_s: float) -> dict[str, Tally]:
    """Fuzz each target in ``names`` with ``cases`` cases under ``seed``."""
    targets, out = load_targets(), {}
    for name in names:
        start = time.perf_counter()
        print(f"fuzz {name}: {cases} cases ({'isolated' if isolated else 'in process'}) ...", file=sys.stderr,
              flush=True)
        if isolated:
            out[name] = run_isolated(targets[name], cases, seed, hang_s=hang_s)
        else:
            out[name] = run_in_process(targets[name], cases, seed, hang_s=hang_s)
        print(f"  done in {time.perf_counter() - start:.1f} s: {_counts(out[name])}", file=sys.stderr, flush=True)
    return out


def _counts(t: Tally) -> str:
    return ", ".join(f"{k}={getattr(t, k)}" for k in OUTCOMES)


def table(results: dict[str, Tally]) -> str:
    """A plain-text table of the counts per target."""
    head = f"{'target':<14}{'cases':>8}" + "".join(f"{k:>13}" for k in OUTCOMES) + f"{'time_s':>9}"
    rows = [head, "-" * len(head)]
    for name, t in results.items():
        rows.append(f"{name:<14}{t.cases:>8}" + "".join(f"{getattr(t, k):>13}" for k in OUTCOMES)
                    + f"{t.elapsed_s:>9.1f}")
    for name, t in results.items():
        for f in t.failures[:3]:
            rows.append(f"{name} case {f['case']}: {f['outcome']}: {f['detail'].strip().splitlines()[-1][:160]}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """CLI entry; returns the exit status (1 when a case crashed or hung)."""
    names = sorted(load_targets())
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases per target (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="run seed: the same seed gives the same cases")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--targets", default=",".join(names), help=f"comma-separated subset of {','.join(names)}")
    parser.add_argument("--in-process", action="store_true", help="cheap in-process consumers, no crash isolation")
    parser.add_argument("--hang-s", type=float, default=30.0, help="per-case limit in seconds (default 30)")
    args = parser.parse_args(argv)
    chosen = [n for n in args.targets.split(",") if n]
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {names}")
    results = run(chosen, args.cases, args.seed, isolated=not args.in_process, hang_s=args.hang_s)
    if args.json:
        print(json.dumps({"seed": args.seed, "cases_per_target": args.cases,
                          "mode": "in_process" if args.in_process else "isolated",
                          "targets": {n: t.as_dict() for n, t in results.items()}}, indent=1))
    else:
        print(table(results))
    return 1 if any(t.crash or t.hang for t in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
