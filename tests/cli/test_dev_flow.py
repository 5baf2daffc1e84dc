"""The new user's flow, as a user types it (subprocesses of the real CLI, real components):

``raymarket dev up --json`` -> ``submit proof --wait --json`` -> ``result --out`` -> ``submit inference
--wait --json`` -> ``result --out`` (a float32 .npy of shape (lines, 384)) -> ``status``, ``logs``, an
unmatchable job's explanation and ``cancel`` -> ``dev down``,
which leaves no process of ours behind (checked by PID: the exchange, anvil, the agent and every
process of the agent's own Ray cluster).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
MAX_PRICE = str(10**15)


def run(home: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAYMARKET_", "RAY_"))}
    env.update(RAYMARKET_HOME=str(home), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=timeout)


def ok(res: subprocess.CompletedProcess) -> dict:
    assert res.returncode == 0, f"exit {res.returncode}\nstdout: {res.stdout[-3000:]}\nstderr: {res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr
    return json.loads(res.stdout)


def recorded_pids(home: Path) -> list[tuple[int, float]]:
    """Every process dev up recorded, plus the agents' Ray clusters' processes (their pidfiles)."""
    state = json.loads((home / "dev" / "state.json").read_text())
    pids = [(p["pid"], p["create_time"]) for p in state["processes"]]
    for p in state["processes"]:
        if p.get("data_dir"):
            rec = json.loads((Path(p["data_dir"]) / "ray" / "cluster.json").read_text())
            pids += [(int(pid), float(t)) for pid, t in rec["pids"]]
    return pids


def alive(pid: int, create_time: float) -> bool:
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - create_time) < 0.05 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_dev_up_submit_wait_result_dev_down(tmp_path):
    home = tmp_path / "home"
    market = ok(run(home, "dev", "up", "--providers", "1", "--json"))
    try:
        assert market["exchange_url"].startswith("http://127.0.0.1:") and market["contract"].startswith("0x")
        (prov,) = market["providers"]
        assert prov["name"] == "dev-p1" and prov["address"].startswith("0x") and prov["ray_address"]
        assert Path(market["client"]["keystore"]).is_file()
        pids = recorded_pids(home)
        assert all(alive(*p) for p in pids)
        config = (home / "config.toml").read_text()
        assert market["exchange_url"] in config and market["contract"] in config

        proof = ok(run(home, "submit", "proof", "--rounds", "8", "--max-price", MAX_PRICE, "--wait", "--json"))
        assert proof["status"] in ("paid", "settled") and proof["job_id"]
        got = ok(run(home, "result", proof["job_id"], "--out", str(tmp_path / "proof.json"), "--json"))
        assert got["hash_checked"] and json.loads((tmp_path / "proof.json").read_text())

        text = tmp_path / "in.txt"
        text.write_text("The quick brown fox.\nA second sentence.\nAnd a third one.\n")
        # one provider: nobody else could re-execute a spot-check sample (such a job is not paid until verified;
        # tests/hardening/test_spot_reexecution.py covers that path), so this job asks for attest-only
        emb = ok(run(home, "submit", "inference", str(text), "--max-price", MAX_PRICE, "--verification", "attest-only",
                     "--wait", "--json"))
        assert emb["status"] in ("paid", "settled")
        got = ok(run(home, "result", emb["job_id"], "--out", str(tmp_path / "emb.npy"), "--json"))
        arr = np.load(tmp_path / "emb.npy")
        assert arr.shape == (3, 384) and arr.dtype == np.float32 and got["shape"] == [3, 384]

        status = ok(run(home, "status", emb["job_id"], "--json"))
        assert status["provider"] and [e["event"] for e in status["history"]][0] == "submitted"
        assert status["verification"] == "attest-only"
        assert ok(run(home, "provider", "list", "--json"))[0]["name"] == "dev-p1"
        assert isinstance(ok(run(home, "logs", emb["job_id"], "--json"))["lines"], list)

        low = ok(run(home, "submit", "proof", "--rounds", "8", "--max-price", "1", "--json"))  # below every ask
        assert low["status"] == "open"
        why = ok(run(home, "status", low["job_id"], "--json"))
        assert why["status"] == "open" and why["explanation"]  # why it is not matched
        assert ok(run(home, "cancel", low["job_id"], "--json"))["status"] == "cancelled"
    finally:
        down = run(home, "dev", "down", "--json")
    res = ok(down)
    assert res["left"] == [] and {p["role"] for p in res["stopped"]} >= {"exchange", "provider"}
    assert not [p for p in pids if alive(*p)]  # nothing of ours is left, checked by PID
    assert not (home / "dev" / "state.json").exists()


@pytest.mark.postgres
@pytest.mark.anvil
def test_dev_up_on_postgres_and_an_existing_node(tmp_path, pg_url, anvil):
    """The real parts by flag: the exchange's database on Postgres, the chain an existing node (not stopped)."""
    home = tmp_path / "home"
    market = ok(run(home, "dev", "up", "--providers", "1", "--database-url", pg_url, "--rpc-url", anvil.rpc_url,
                    "--json"))
    try:
        assert market["rpc_url"] == anvil.rpc_url and market["chain_id"] == anvil.chain_id
        assert {p["role"] for p in json.loads((home / "dev" / "state.json").read_text())["processes"]} == {
            "exchange", "provider"}  # no anvil of ours
        pids = recorded_pids(home)
        proof = ok(run(home, "submit", "proof", "--rounds", "8", "--max-price", MAX_PRICE, "--wait", "--json"))
        assert proof["status"] in ("paid", "settled")
    finally:
        down = run(home, "dev", "down", "--json")
    assert ok(down)["left"] == [] and not [p for p in pids if alive(*p)]
    assert anvil.w3.eth.block_number >= 0  # the session's node is still up
