"""The chaos suite, short (issue 14): a seeded workload of both job kinds over the REAL market (the exchange as a
subprocess on its own Postgres and anvil, 3 provider agents each with its own token-auth Ray head, clients funded
by real Vault deposits), with every fault kind injected once on the seed's schedule; then: every job terminal, none
paid twice, the ledger equal to a replay of its journal, no escrow locked, the Vault audit balanced.
``benchmarks/chaos.py --jobs 200`` is the long run of the same engine."""

from __future__ import annotations

import json

import pytest

from tests.chaos.engine import run_chaos, table, verdict
from tests.chaos.schedule import FAULT_KINDS, make_plan
from tests.chaos.world import short_base

pytestmark = [pytest.mark.ray, pytest.mark.postgres, pytest.mark.anvil, pytest.mark.slow]

SEED = 20261202


def test_same_seed_same_schedule():
    a, b = make_plan(SEED, 200), make_plan(SEED, 200)
    assert a == b and a.to_json() == b.to_json()
    assert make_plan(SEED + 1, 200).faults != a.faults
    assert len(a.faults) >= 20 and {f.kind for f in a.faults} == set(FAULT_KINDS)
    assert all(1 <= f.param <= 5 for f in a.faults if f.kind == "reorg")


@pytest.mark.timeout(2400, method="signal")  # signal: on a timeout the finally blocks still stop every process
def test_chaos_short_every_fault_kind_once():
    plan = make_plan(SEED, 12, window_s=50.0, faults=len(FAULT_KINDS))
    report = run_chaos(plan, short_base(), log=print)
    print(table(report))
    print(json.dumps({k: v for k, v in report.items() if k not in ("schedule",)}, indent=1, default=str))
    assert report["faults_injected"] == {k: 1 for k in FAULT_KINDS}, report["faults"]
    assert verdict(report, min_faults=len(FAULT_KINDS), min_kinds=len(FAULT_KINDS)) == []
    assert report["jobs_submitted"] == len(plan.jobs)
