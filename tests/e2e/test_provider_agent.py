"""One provider agent end to end against the real exchange: its own token-auth Ray cluster, registration,
an embedding job run on its cluster and paid (logs uploaded), drain (SIGUSR1 + control file: no new leases,
listed as draining), and stop (SIGTERM by pidfile: exits 0, its Ray processes gone by PID)."""

from __future__ import annotations

import io
import time

import numpy as np
import psutil
import pytest
from eth_account import Account

from market.client import Client
from market.exchange.service import ServiceConfig
from market.settings import Settings
from providers.agent import AGENT_PIDFILE, DRAIN_FILE, drain_agent, stop_agent, undrain_agent
from tests.providers.harness import AgentProcess, bond, wait_for
from tests.service.harness import ThreadService

pytestmark = [pytest.mark.ray]


def test_agent_runs_drains_and_stops(tmp_path):
    settings = Settings(data_dir=tmp_path / "exchange", settlement_window_s=1.0, max_attempts=3)
    svc = ThreadService(settings, ServiceConfig(lease_s=5.0, round_interval_s=0.2, dev=True)).start()
    agent = AgentProcess("solo", svc.url, tmp_path, cpus=1)
    try:
        t0 = time.monotonic()
        summary = agent.start().wait_started()
        print(f"agent registered in {time.monotonic() - t0:.1f} s")
        assert summary["address"] == agent.address and summary["cluster_owned"]
        assert (agent.data_dir / AGENT_PIDFILE).exists()
        cluster_procs = agent.cluster.processes()
        assert {"raylet", "gcs_server"} <= {p.name() for p in cluster_procs}
        bond(svc.url, agent)
        client = Client(svc.url, Account.create().key)
        client.faucet(10**18)

        # attest-only: a lone provider has no peer to re-execute a spot-check sample (an unverifiable job is not paid)
        job = client.submit_inference(b"first sentence\nsecond sentence\nthird one\n", max_price_wei=10**15,
                                      verification="attest-only")
        done = client.wait(job["job_id"], timeout_s=600)
        assert done["status"] in ("paid", "settled") and done["provider"] == "solo", done
        emb = np.load(io.BytesIO(client.result(job["job_id"])))
        assert emb.shape == (3, 384) and emb.dtype == np.float32
        assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
        lines = client.logs(job["job_id"])
        assert any("started inference job" in ln for ln in lines) and any("result hash" in ln for ln in lines)

        # drain: no new lease while draining; listed as draining; undrain takes the job.
        drain_agent(agent.data_dir)
        assert (agent.data_dir / DRAIN_FILE).exists()
        wait_for(lambda: {p["name"]: p for p in client.providers()}["solo"]["draining"], 60, "listed as draining")
        held = client.submit_inference(b"waits for the drain to end\n", max_price_wei=10**15,
                                       verification="attest-only")["job_id"]
        time.sleep(4.0)
        assert client.status(held)["provider"] in (None, "solo") and client.status(held)["status"] in (
            "open", "assigned"), client.status(held)
        assert "draining" in agent.log()
        undrain_agent(agent.data_dir)
        done = client.wait(held, timeout_s=600)
        assert done["status"] in ("paid", "settled"), done

        # stop: SIGTERM by pidfile, clean exit, every Ray process of its own cluster gone.
        cluster_procs = agent.cluster.processes()
        out = stop_agent(agent.data_dir, timeout_s=90)
        assert out["stopped"] and not out["killed"], out
        assert agent.proc.wait(10) == 0
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in cluster_procs)
        assert agent.cluster is None and not (agent.data_dir / AGENT_PIDFILE).exists()
        assert "stopped its Ray cluster" in agent.log()
    finally:
        agent.cleanup()
        svc.stop()
