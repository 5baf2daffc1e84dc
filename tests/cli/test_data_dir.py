"""Regression: every command opens the same files under ``$RAYMARKET_HOME``.

Before, ``market.db.base.default_sqlite_url`` and the pipeline CLI resolved the platformdirs
directory themselves and ignored ``RAYMARKET_HOME``: ``raymarket watch`` and ``raymarket settlement
verify`` opened another SQLite file than ``raymarket status``. Here the user data dir
(``XDG_DATA_HOME``) is a separate empty directory that must stay untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.orm import Session

from market.db.base import make_engine
from tests.money.funding import chain_deposit

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, home: Path, xdg: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAYMARKET_")}
    env.update(RAYMARKET_HOME=str(home), XDG_DATA_HOME=str(xdg), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", "import cli; cli.main()", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def test_db_ledger_settlement_watch_and_pipeline_use_raymarket_home(tmp_path):
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    up = run("db", "upgrade", home=home, xdg=xdg)
    assert up.returncode == 0, up.stderr
    assert (home / "ledger.db").is_file()  # the default SQLite file is under $RAYMARKET_HOME
    engine = make_engine(f"sqlite:///{home / 'ledger.db'}")
    with Session(engine) as s, s.begin():
        chain_deposit(s, "carol", 5000, "dep-carol")  # a confirmed Vault deposit
    engine.dispose()
    bal = run("ledger", "balance", "client:carol", "--json", home=home, xdg=xdg)
    assert bal.returncode == 0, bal.stderr
    assert json.loads(bal.stdout)["balance_wei"] == "5000"  # the ledger CLI reads the same file
    ver = run("settlement", "verify", "job-x", home=home, xdg=xdg)
    # the migrated file was found (else: "no settlement tables", exit 3); the job is not settled
    assert ver.returncode == 4 and "no attestation for job 'job-x'" in ver.stderr, ver.stderr
    watch = run("watch", "--rpc-url", "http://127.0.0.1:1", "--contract", "0x" + "11" * 20, "--once",
                home=home, xdg=xdg)
    assert watch.returncode == 5 and "cannot reach the chain" in watch.stderr, watch.stderr  # DB found first
    stats = run("pipeline", "stats", home=home, xdg=xdg)
    assert stats.returncode == 4 and str(home / "pipeline") in stats.stderr.replace("\n", ""), stats.stderr
    assert not (xdg / "raymarket").exists()
    for res in (up, bal, ver, watch, stats):
        assert "Traceback" not in res.stderr
