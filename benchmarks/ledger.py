"""Ledger throughput on a real Postgres, against pgbench TPC-B on the same cluster, in one run.

Starts its own Postgres 15 cluster (initdb in a temp dir, run as the ``postgres`` user; durability
settings left at their defaults: ``fsync=on``, ``synchronous_commit=on``, ``full_page_writes=on``),
migrates a database to the ledger revision and measures, each phase for ``--duration-s`` with
``--clients`` concurrent client processes:

  * ``batched_tps``: transfers/s through :func:`market.ledger.post_batch`, ``--batch-size``
    transfers per transaction;
  * ``single_tps``: transfers/s through :func:`market.ledger.transfer`, one transfer per transaction;
  * ``pgbench_tps``: ``pgbench`` TPC-B (its built-in script: 3 UPDATEs, 1 SELECT, 1 INSERT per
    transaction) with the same client count, scale factor = client count, in its own database;
  * ``ratio_batched_vs_pgbench`` = batched_tps / pgbench_tps (the named baseline);
  * ``invariant_violations``: :func:`market.ledger.check_invariants` after all phases (must be 0).

Each client moves money between random accounts of its own shard of ``--accounts`` accounts (as
pgbench clients pick random accounts among many); ``--shared`` makes every client use all
accounts (hot contention: batches then serialise on the row locks).

Usage: ``python benchmarks/ledger.py [--json] [--duration-s 10] [--clients 8] [--batch-size 2000]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from market import ledger as L  # noqa: E402
from market.db import migrate  # noqa: E402
from market.db.base import make_engine  # noqa: E402
from tests.fixtures.services import PostgresServer  # noqa: E402

INITIAL_WEI = 10**24  # per account: no transfer in the run can exhaust it


def _accounts(n: int) -> list[str]:
    return [L.client_account(f"bench{i}") for i in range(n)]


def setup_ledger(url: str, n_accounts: int) -> None:
    """Migrate and open + fund ``n_accounts`` client accounts (one batch)."""
    migrate.upgrade(url, "0001_ledger")
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        for i in range(n_accounts):
            L.open_client(s, f"bench{i}")
        L.post_batch(s, [L.TransferSpec(f"fund-{i}", L.WORLD_ACCOUNT, a, INITIAL_WEI, "deposit")
                         for i, a in enumerate(_accounts(n_accounts))])
    engine.dispose()


def _client(args: tuple) -> tuple[int, float]:
    """One client process: post transfers until the deadline; returns (transfers applied, seconds)."""
    url, mode, index, shard, batch_size, start_at, duration_s = args
    engine = make_engine(url, pool_size=1)
    rng = random.Random(index)
    done, seq = 0, 0
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = start_at + duration_s
    while time.time() < deadline:
        with Session(engine) as s, s.begin():
            if mode == "batched":
                specs = []
                for _ in range(batch_size):
                    a, b = rng.sample(shard, 2)
                    seq += 1
                    specs.append(L.TransferSpec(f"{mode}-{index}-{seq}", a, b, rng.randint(1, 10**9)))
                done += L.post_batch(s, specs).applied
            else:
                a, b = rng.sample(shard, 2)
                seq += 1
                L.transfer(s, f"{mode}-{index}-{seq}", a, b, rng.randint(1, 10**9))
                done += 1
    elapsed = time.time() - start_at
    engine.dispose()
    return done, elapsed


def measure(url: str, mode: str, clients: int, accounts: list[str], batch_size: int, duration_s: float,
            shared: bool) -> float:
    """Transfers/s of ``clients`` processes in ``mode`` (``batched`` | ``single``)."""
    shards = [accounts if shared else accounts[i::clients] for i in range(clients)]
    start_at = time.time() + 2.0  # all clients start together, after their imports and connections
    jobs = [(url, mode, i, shards[i], batch_size, start_at, duration_s) for i in range(clients)]
    with mp.get_context("fork").Pool(clients) as pool:
        results = pool.map(_client, jobs)
    total = sum(n for n, _ in results)
    return total / max(t for _, t in results)


def pgbench_tps(server: PostgresServer, clients: int, duration_s: float) -> float:
    """TPC-B tps of ``pgbench`` (built-in script) with ``clients`` clients, scale factor ``clients``."""
    import psycopg

    with psycopg.connect(f"host={server.host} port={server.port} user={server.user} dbname=postgres",
                         autocommit=True) as conn:
        conn.execute("CREATE DATABASE pgbench")
    bench = str(server.bindir / "pgbench")
    conn_args = ["-h", server.host, "-p", str(server.port), "-U", server.user]
    subprocess.run([bench, "-i", "-q", "-s", str(clients), *conn_args, "pgbench"], check=True, capture_output=True)
    res = subprocess.run([bench, "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1)),
                          "-T", str(int(duration_s)), "-n", *conn_args, "pgbench"],
                         check=True, capture_output=True, text=True)
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", res.stdout)
    if not match:
        raise RuntimeError(f"could not parse pgbench output:\n{res.stdout}")
    return float(match.group(1))


def server_settings(server: PostgresServer) -> dict[str, str]:
    import psycopg

    with psycopg.connect(f"host={server.host} port={server.port} user={server.user} dbname=postgres") as conn:
        return {k: conn.execute(f"SHOW {k}").fetchone()[0] for k in ("fsync", "synchronous_commit",
                                                                      "full_page_writes", "shared_buffers")}


def run(args: argparse.Namespace) -> dict:
    server = PostgresServer(fsync=True).start()
    try:
        url = server.create_database("ledger_bench")
        setup_ledger(url, args.accounts)
        accounts = _accounts(args.accounts)
        batched = measure(url, "batched", args.clients, accounts, args.batch_size, args.duration_s, args.shared)
        single = measure(url, "single", args.clients, accounts, 1, args.duration_s, args.shared)
        pgbench = pgbench_tps(server, args.clients, args.duration_s)
        engine = make_engine(url)
        with Session(engine) as s:
            violations = L.check_invariants(s)
            transfers = s.execute(text("SELECT count(*) FROM ledger_transfers")).scalar_one()
        engine.dispose()
        return {
            "batched_tps": round(batched, 1), "single_tps": round(single, 1), "pgbench_tps": round(pgbench, 1),
            "ratio_batched_vs_pgbench": round(batched / pgbench, 2),
            "ratio_single_vs_pgbench": round(single / pgbench, 2),
            "invariant_violations": len(violations), "violations": violations[:10],
            "journal_rows": int(transfers), "clients": args.clients, "batch_size": args.batch_size,
            "accounts": args.accounts, "shared_accounts": args.shared, "duration_s": args.duration_s,
            "cpu_count": os.cpu_count(), "postgres": server_settings(server),
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--duration-s", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client processes (and pgbench -c)")
    parser.add_argument("--batch-size", type=int, default=2000, help="transfers per batched transaction")
    parser.add_argument("--accounts", type=int, default=1000, help="accounts moved between")
    parser.add_argument("--shared", action="store_true", help="every client uses every account (hot contention)")
    result = run(parser.parse_args())
    if parser.parse_args().json:
        print(json.dumps(result, indent=2))
        return
    pg = result["postgres"]
    print(f"Postgres fsync={pg['fsync']} synchronous_commit={pg['synchronous_commit']} "
          f"full_page_writes={pg['full_page_writes']}, {result['clients']} clients, {result['cpu_count']} CPUs, "
          f"{result['duration_s']:.0f} s per phase, {result['accounts']} accounts"
          f"{' (shared)' if result['shared_accounts'] else ' (sharded per client)'}")
    print(f"{'measure':<44}{'transfers/s':>14}{'vs pgbench':>12}")
    rows = [(f"ledger post_batch ({result['batch_size']} per transaction)", result["batched_tps"]),
            ("ledger transfer (1 per transaction)", result["single_tps"]),
            ("pgbench TPC-B (baseline, tps)", result["pgbench_tps"])]
    for name, value in rows:
        print(f"{name:<44}{value:>14,.0f}{value / result['pgbench_tps']:>11.2f}x")
    print(f"invariant violations: {result['invariant_violations']} (journal rows {result['journal_rows']:,})")


if __name__ == "__main__":
    main()
