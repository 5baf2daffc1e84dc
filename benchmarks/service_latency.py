"""Request latency of the exchange service: ``submit`` (signed, escrow) and ``status`` (public read), p50/p99.

Runs the real service (uvicorn in a thread) on the embedded defaults (SQLite + in-process EVM), or on a
database URL given with ``--database-url``; one client, sequential requests over one keep-alive connection.

    python -m benchmarks.service_latency [--n 200] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from eth_account import Account

from market.client import Client
from market.exchange.service import ServiceConfig
from market.settings import Settings
from tests.service.harness import ThreadService


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def measure(n: int, database_url: str | None) -> dict[str, dict[str, float]]:
    """Submit ``n`` proof jobs (no provider: they stay open) and read ``n`` statuses; latencies in ms."""
    data = Path(tempfile.mkdtemp(prefix="rm-lat-"))
    svc = ThreadService(Settings(data_dir=data, database_url=database_url),
                        ServiceConfig(dev=True, round_interval_s=1.0)).start()
    try:
        client = Client(svc.url, Account.create().key)
        client.faucet(10**18)
        out: dict[str, list[float]] = {"submit": [], "status": []}
        ids = []
        for i in range(n):
            t0 = time.perf_counter()
            ids.append(client.submit_proof(i + 1, rounds=4, max_price_wei=10**12)["job_id"])
            out["submit"].append((time.perf_counter() - t0) * 1000)
        for job_id in ids:
            t0 = time.perf_counter()
            client.status(job_id)
            out["status"].append((time.perf_counter() - t0) * 1000)
        return {k: {"p50_ms": round(statistics.median(v), 2), "p99_ms": round(_pct(v, 0.99), 2), "n": len(v)}
                for k, v in out.items()}
    finally:
        svc.stop()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--database-url", default=None)
    a = p.parse_args()
    print(json.dumps(measure(a.n, a.database_url)))


if __name__ == "__main__":
    main()
