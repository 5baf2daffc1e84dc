"""The exchange SIGKILLed mid-job and restarted (same database, same chain): the real provider agents keep
running (their leases, clusters and uploads survive the outage), every job completes and is paid once."""

from __future__ import annotations

import time

import pytest
from eth_account import Account

from market.client import Client
from market.settings import Settings
from tests.e2e.test_agent_killed import provider_earnings
from tests.providers.harness import AgentProcess, bond, start_agents, wait_for
from tests.service.harness import ProcessService

pytestmark = [pytest.mark.ray]

TEXT = "".join(f"line {i}: the exchange may die, the providers carry on\n" for i in range(30)).encode()


def test_exchange_killed_and_restarted_mid_job(tmp_path, anvil):
    args = ["--data-dir", str(tmp_path / "exchange"), "--dev", "--lease-s", "20", "--round-interval-s", "0.2",
            "--settlement-window-s", "1", "--rpc-url", anvil.rpc_url]
    svc = ProcessService(args, tmp_path / "exchange.log").start()
    agents = [AgentProcess("pA", svc.url, tmp_path, price_per_cpu_s_wei=10**9),
              AgentProcess("pB", svc.url, tmp_path, price_per_cpu_s_wei=10**9)]
    try:
        start_agents(agents)
        for agent in agents:
            bond(svc.url, agent)
        pids = {a.name: a.proc.pid for a in agents}
        client = Client(svc.url, Account.create().key)
        client.faucet(10**18)
        before = client.balance()
        jobs = [client.submit_inference(TEXT, max_price_wei=10**16)["job_id"],
                client.submit_proof(3, rounds=4, max_price_wei=10**16)["job_id"],
                client.submit_proof(4, rounds=4, max_price_wei=10**16)["job_id"]]
        wait_for(lambda: any(client.status(j)["status"] == "running" for j in jobs), 300, "a job running",
                 every_s=0.1)
        svc.kill()
        t_kill = time.monotonic()
        time.sleep(3.0)  # the agents see the exchange gone (polls, heartbeats, maybe an upload fail)
        assert all(a.proc.poll() is None for a in agents)
        svc.start()  # same port, same database, same chain
        print(f"exchange back after {time.monotonic() - t_kill:.1f} s")
        done = {j: client.wait(j, timeout_s=600) for j in jobs}
        print(f"all jobs done {time.monotonic() - t_kill:.1f} s after the kill")
        for j, view in done.items():
            assert view["status"] in ("paid", "settled"), view
            assert [e["event"] for e in view["history"]].count("paid") == 1, view["history"]
        after = client.balance()
        spent = (int(before["balance_wei"]) + int(before["escrowed_wei"])
                 - int(after["balance_wei"]) - int(after["escrowed_wei"]))
        assert spent == sum(int(v["price_wei"]) for v in done.values())  # each job paid once
        earned = provider_earnings(Settings(data_dir=tmp_path / "exchange"), ["pA", "pB"])
        assert 0 < sum(earned.values()) <= spent, earned
        assert {a.name: a.proc.pid for a in agents} == pids and all(a.proc.poll() is None for a in agents)
        assert all(a.cluster is not None and a.cluster.alive() for a in agents)
    finally:
        for agent in agents:
            agent.cleanup()
        svc.stop()
