"""Issue 14 finding 9: the chain node paused (SIGSTOP on a real anvil) delays settlement, never the market.

While anvil is stopped, jobs are still submitted, matched, run, verified (the inference job's spot-check by a
second provider included) and paid in the ledger; the stall is logged once (not once per failed call) and shown
by ``/metrics`` (``raymarket_chain_rpc_up 0``, ``raymarket_chain_seconds_since_ok`` growing). After SIGCONT the
end of the stall is logged once, the gauge is back to 1 and every job settles on chain.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time

import pytest
from sqlalchemy.orm import Session

from market import ledger
from market.core.tickets import DEV_SETUP_SEED
from tests.fixtures.services import AnvilNode
from tests.service.conftest import ROUNDS, make_parties, start_service
from tests.service.harness import Heartbeats, attest, run_lease

TEXT = b"One sentence while the chain sleeps.\nAnother one.\nAnd a third.\n"


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys")
    run_lease({"kind": "proof", "ticket": {"preimage": "1", "rounds": ROUNDS, "setup_seed": DEV_SETUP_SEED}}, path)
    return path


def _serve(pc, key, name, keys_dir, n, out):
    deadline = time.monotonic() + 90
    while len(out) < n and time.monotonic() < deadline:
        for lease in pc.poll(name, max_leases=n, wait_s=2):
            with Heartbeats(pc, name, [lease["job_id"]]):
                result = run_lease(lease, keys_dir)
            h, sig = attest(lease, key, result)
            out[lease["lease_id"]] = pc.complete(lease, result=result, result_hash=h, signature=sig)["status"]


def _metric(client, name: str) -> float:
    text = client.t.http.get("/metrics").text
    m = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def _until(pred, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (v := pred()):
            return v
        time.sleep(0.2)
    raise AssertionError(f"not reached in {timeout_s} s: {what}")


def test_paused_rpc_node_delays_settlement_not_the_market(tmp_path, keys_dir, caplog):
    caplog.set_level(logging.WARNING, logger="raymarket.exchange")
    node = AnvilNode().start()
    svc = None
    try:
        svc = start_service(tmp_path / "data", rpc_url=node.rpc_url)
        client, provs = make_parties(svc)  # the faucet moves chain money: before the pause
        assert _metric(client, "raymarket_chain_rpc_up") == 1.0
        rounds_before = _metric(client, "raymarket_round_seconds_count")
        os.kill(node.proc.pid, signal.SIGSTOP)
        paused = time.monotonic()
        inf = client.submit_inference(TEXT, max_price_wei=10**15)["job_id"]
        prf = client.submit_proof(4711, rounds=ROUNDS, max_price_wei=10**15)["job_id"]
        answers: dict[str, str] = {}  # lease id -> answer, both providers (whichever wins, the other verifies)
        serving = [threading.Thread(target=_serve, args=(*provs[n], n, keys_dir, 3, answers), daemon=True)
                   for n in ("p1", "p2")]
        for th in serving:
            th.start()
        _until(lambda: len(answers) >= 3, 90, "both jobs run and the inference job's sample re-executed")
        assert sorted(answers.values()) == ["agreed", "paid", "verifying"]
        _until(lambda: client.status(inf)["status"] == "paid", 60, "the inference job verified and paid")
        assert client.status(prf)["status"] == "paid"
        assert _metric(client, "raymarket_round_seconds_count") > rounds_before  # rounds went on
        # the chain thread sees the stall once its call (or probe) times out: RPC_TIMEOUT_S, twice at worst
        _until(lambda: _metric(client, "raymarket_chain_rpc_up") == 0.0, 30, "the stall in /metrics")
        assert _metric(client, "raymarket_chain_seconds_since_ok") >= min(3.0, time.monotonic() - paused - 2)
        time.sleep(6)  # more failed probes: still one log line for the stall
        stalls = [r for r in caplog.records if "chain RPC not answering" in r.getMessage()]
        assert len(stalls) == 1 and _metric(client, "raymarket_chain_stalls_total") == 1.0
        for job in (inf, prf):
            assert client.status(job)["status"] == "paid"  # settlement waits for the chain
        os.kill(node.proc.pid, signal.SIGCONT)
        _until(lambda: all(client.status(j)["status"] == "settled" for j in (inf, prf)), 90, "both jobs settled")
        assert _metric(client, "raymarket_chain_rpc_up") == 1.0
        assert _metric(client, "raymarket_chain_seconds_since_ok") < 5
        assert len([r for r in caplog.records if "chain RPC answers again" in r.getMessage()]) == 1
        with Session(svc.runtime.engine) as s:
            assert ledger.check_invariants(s) == []
    finally:
        if node.proc is not None and node.proc.poll() is None:
            os.kill(node.proc.pid, signal.SIGCONT)
        if svc is not None:
            svc.stop()
        node.stop()
