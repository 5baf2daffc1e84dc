"""A provider agent killed with SIGKILL mid-job: its lease expires, the job is re-auctioned to the other
provider (excluding the silent one), completes and is paid exactly once; the dead one is paid nothing."""

from __future__ import annotations

import time

import pytest
from eth_account import Account

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from market import ledger
from market.client import Client
from market.exchange.service import ServiceConfig
from market.settings import Settings
from tests.providers.harness import AgentProcess, bond, start_agents, wait_for
from tests.service.harness import ThreadService

pytestmark = [pytest.mark.ray]

def provider_earnings(settings: Settings, names: list[str]) -> dict[str, int]:
    """Each provider's earnings account in the exchange's ledger (read by the test, not by a provider)."""
    engine = create_engine(settings.resolved_database_url)
    try:
        with Session(engine) as s:
            all_balances = ledger.balances(s)
        return {n: all_balances.get(ledger.provider_account(n), 0) for n in names}
    finally:
        engine.dispose()


TEXT = "".join(f"sentence number {i} about a market for verifiable compute\n" for i in range(40)).encode()


def test_killed_agent_lease_expires_and_job_moves_to_the_other_provider(tmp_path):
    settings = Settings(data_dir=tmp_path / "exchange", settlement_window_s=1.0, max_attempts=3)
    svc = ThreadService(settings, ServiceConfig(lease_s=4.0, round_interval_s=0.2, dev=True)).start()
    a = AgentProcess("pA", svc.url, tmp_path, price_per_cpu_s_wei=10**9)  # cheaper: gets the job first
    b = AgentProcess("pB", svc.url, tmp_path, price_per_cpu_s_wei=2 * 10**9)
    try:
        start_agents([a, b])
        for agent in (a, b):
            bond(svc.url, agent)
        client = Client(svc.url, Account.create().key)
        client.faucet(10**18)
        before = client.balance()
        # attest-only: with pA dead, no second provider could re-execute a spot-check sample (lease expiry is tested)
        job_id = client.submit_inference(TEXT, max_price_wei=10**15, verification="attest-only")["job_id"]
        # The embedding worker loads its model first (seconds): kill A while it works on the job.
        # pA is cheaper per CPU-second, but the exchange prices by the speed it measures (speed challenges are on
        # by default), so on a loaded box either may win: the one running the job is the one killed.
        first = wait_for(lambda: (j := client.status(job_id))["status"] == "running" and j["provider"],
                         300, "job running on a provider", every_s=0.1)
        if first == "pB":
            a, b = b, a
        a.kill()
        t_kill = time.monotonic()
        done = client.wait(job_id, timeout_s=600)
        print(f"after SIGKILL of {a.name}: done in {time.monotonic() - t_kill:.1f} s")
        assert done["status"] in ("paid", "settled"), done
        assert done["provider"] == b.name, done
        events = [e["event"] for e in done["history"]]
        assert events.count("paid") == 1 and "fault" in events, events
        assert any("expired" in (e.get("detail") or "") or "expired" in str(e) for e in done["history"]
                   if e["event"] == "fault"), done["history"]
        assert len(client.result(job_id)) > 40 * 384 * 4  # the .npy of (40, 384) float32, hash checked
        after = client.balance()
        spent = (int(before["balance_wei"]) + int(before["escrowed_wei"])
                 - int(after["balance_wei"]) - int(after["escrowed_wei"]))
        assert spent == int(done["price_wei"])  # the client paid once
        earned = provider_earnings(settings, ["pA", "pB"])
        assert earned[a.name] == 0 and 0 < earned[b.name] <= int(done["price_wei"]), earned  # the survivor paid
        assert b.proc.poll() is None  # the other agent carried on
    finally:
        for agent in (a, b):
            agent.cleanup()
        svc.stop()
    assert a.cluster is None and b.cluster is None  # both Ray clusters stopped by PID
