"""``dev down`` stops exactly the processes ``dev up`` recorded, by PID and start time, and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict

import psutil
import pytest
from typer.testing import CliRunner

import cli
from market.cli import dev
from market.cli.dev import STATE_FILE, Started, dev_down, dev_dir
from market.settings import Settings, read_config, update_config


def sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)


@pytest.fixture
def s(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("RAYMARKET_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("RAYMARKET_HOME", str(tmp_path / "home"))
    return Settings.load()


def record(s: Settings, procs: list[Started], **info) -> None:
    path = dev_dir(s) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**info, "processes": [asdict(p) for p in procs]}))


def started(role: str, proc: subprocess.Popen, create_time: float | None = None) -> Started:
    return Started(role, role, proc.pid, create_time or psutil.Process(proc.pid).create_time(), "/dev/null")


def test_stops_the_recorded_processes_only(s):
    ours, theirs, reused = sleeper(), sleeper(), sleeper()
    try:
        # `reused`: a recorded PID whose start time differs (the PID was reused by someone else's process)
        record(s, [started("exchange", ours), started("anvil", reused, create_time=1.0)],
               exchange_url="http://127.0.0.1:9", rpc_url="http://127.0.0.1:8")
        update_config({"exchange_url": "http://127.0.0.1:9", "rpc_url": "http://127.0.0.1:8", "contract": "0x1",
                       "dev_up": {"providers": []}}, s.data_dir)
        res = dev_down(s)
        assert ours.wait(30) is not None
        assert theirs.poll() is None and reused.poll() is None  # never signalled
        assert {(p["role"], p["how"]) for p in res["stopped"]} == {("exchange", "terminated"), ("anvil", "gone")}
        assert res["left"] == [] and not (dev_dir(s) / STATE_FILE).exists()
        assert read_config(s.data_dir) == {"contract": "0x1"}  # the URLs of what was stopped are gone
    finally:
        for p in (ours, theirs, reused):
            p.kill()
            p.wait(10)


def test_kills_what_ignores_sigterm(s, monkeypatch):
    monkeypatch.setitem(dev.STOP_TIMEOUTS_S, "anvil", 2.0)  # not the real 20 s: the escalation is under test
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"],
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert stubborn.stdout.readline().strip() == "ready"
        record(s, [started("anvil", stubborn)])
        res = dev_down(s)  # anvil gets its SIGTERM timeout (2 s here), then SIGKILL
        assert res["stopped"][0]["how"] == "killed" and stubborn.wait(10) is not None
    finally:
        stubborn.kill()
        stubborn.wait(10)


def test_down_and_status_without_a_market(s):
    res = CliRunner().invoke(cli.app, ["dev", "down", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["stopped"] == []
    res = CliRunner().invoke(cli.app, ["dev", "status", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["processes"] == []
