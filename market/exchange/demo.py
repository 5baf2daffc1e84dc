"""``raymarket demo``: the whole market on one machine, on real input, every part real.

A head and three provider nodes (separate raylets) on local Ray, the ledger (SQLite file by
default, Postgres by URL), the Settlement contract on the in-process EVM (anvil by URL), an
embedding job over a public-domain text shipped with the project and two Groth16 proof jobs
(MiMC-7 preimages), matched in auction rounds, run on the providers' nodes, verified, paid
from escrow, attested (EIP-712), batched into a Merkle root on-chain and marked ``settled``
by the watcher.
"""

from __future__ import annotations

import secrets
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from sqlalchemy.orm import Session

from market.settings import Settings
from market.exchange.runner import MarketRunner, Progress

GWEI = 10**9
#: Demo prices: wei per CPU-second of each provider (p1 cheapest), and the bond each posts.
DEMO_PRICES_WEI = {"p1": 20 * GWEI, "p2": 30 * GWEI, "p3": 45 * GWEI}
DEMO_BOND_WEI = 10**18
DEMO_CLIENT = "alice"
DEMO_CLIENT_DEPOSIT_WEI = 10**18
DEMO_MAX_PRICE_WEI = 5 * 10**15
DEMO_COLLATERAL_WEI = 10**16


def demo_text_path() -> Path:
    """The public-domain text shipped with the project (one sentence per line)."""
    return Path(str(resources.files("market") / "demo_data" / "public_domain.txt"))


def run_demo(settings: Settings, *, text_path: Path | None = None, proof_rounds: int = 91, proof_jobs: int = 2,
             progress: Progress, inspect: Callable[[MarketRunner, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the demo and return what happened (jobs, ledger check, contract, stage timings in seconds).

    ``inspect(runner, report)``, when given, is called before the runner shuts down (tests use it
    to read the chain and the database the demo used).
    """
    from providers.keys import new_key

    runner = MarketRunner(settings, progress)
    t_start = time.perf_counter()
    try:
        runner.start_database()
        runner.start_chain()  # before Ray: an unreachable RPC fails in a second, not after the cluster starts
        runner.start_ray(list(DEMO_PRICES_WEI))
        t0 = time.perf_counter()
        for name, price in DEMO_PRICES_WEI.items():
            runner.add_provider(name, new_key(), price_per_cpu_s_wei=price, bond_wei=DEMO_BOND_WEI)
        runner.timings["providers"] = time.perf_counter() - t0
        runner.fund_client(DEMO_CLIENT, DEMO_CLIENT_DEPOSIT_WEI)
        runner.proving_key(proof_rounds)
        jobs = [runner.submit_inference(DEMO_CLIENT, text_path or demo_text_path(), max_price_wei=DEMO_MAX_PRICE_WEI,
                                        collateral_wei=DEMO_COLLATERAL_WEI)]
        for _ in range(proof_jobs):
            jobs.append(runner.submit_proof(DEMO_CLIENT, secrets.randbelow(2**128), rounds=proof_rounds,
                                            max_price_wei=DEMO_MAX_PRICE_WEI, collateral_wei=DEMO_COLLATERAL_WEI))
        progress(f"submitted {len(jobs)} jobs; running rounds")
        runner.run_until_done()
        report = summarize(runner, jobs, time.perf_counter() - t_start)
        if inspect is not None:
            inspect(runner, report)
        return report
    finally:
        runner.shutdown()


def summarize(runner: MarketRunner, job_ids: list[str], total_s: float) -> dict[str, Any]:
    """The demo's report: per job (id, kind, provider, price, status, result, tx) and the ledger check."""
    from market import ledger
    from market.exchange import get_job, job_summary

    with Session(runner.engine) as s:
        jobs = [job_summary(get_job(s, j)) for j in job_ids]
        check = ledger.check_invariants(s)
        balances = ledger.balances(s)
    deposits = -balances.get(ledger.WORLD_ACCOUNT, 0)
    held = sum(v for k, v in balances.items() if k != ledger.WORLD_ACCOUNT)
    ledger_view = {"total_deposits_wei": str(deposits), "sum_of_balances_wei": str(held),
                   "balanced": held == deposits and not check, "invariant_violations": check,
                   "protocol_fees_wei": str(balances.get(ledger.PROTOCOL_FEE_ACCOUNT, 0)),
                   "balances_wei": {k: str(v) for k, v in sorted(balances.items()) if v}}
    return {"jobs": jobs, "ledger": ledger_view,
            "contract": runner.contract.address, "chain": runner.chain.kind, "chain_id": runner.chain.chain_id,
            "seconds": {k: round(v, 2) for k, v in sorted(runner.timings.items())} | {"total": round(total_s, 2)}}
