"""deploy/grafana-dashboard.json: valid JSON whose queries use only metrics the service exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest

from market.exchange.service.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"
DOCUMENTED = {"raymarket_jobs", "raymarket_providers_online", "raymarket_round_seconds", "raymarket_leases_open",
              "raymarket_settlement_batches_total", "raymarket_ledger_balance_wei"}


def test_dashboard_queries_only_exposed_metrics():
    m = Metrics()
    m.round_seconds.observe(0.01)
    m.batches.inc()
    m.jobs.labels(status="open").set(1)
    m.balance.labels(kind="client").set(1)
    exposed = set(re.findall(r"^# TYPE (\S+)", generate_latest(m.registry).decode(), re.M))
    exposed |= {n + suffix for n in exposed for suffix in ("_bucket", "_count", "_sum", "_total")}
    assert DOCUMENTED <= exposed
    dash = json.loads(DASHBOARD.read_text())
    used = {name for p in dash["panels"] for t in p["targets"] for name in re.findall(r"raymarket_\w+", t["expr"])}
    assert used and used <= exposed, used - exposed
    base = {re.sub(r"_(bucket|count|sum)$", "", n) for n in used}
    assert DOCUMENTED <= base, DOCUMENTED - base  # every documented metric has a panel
