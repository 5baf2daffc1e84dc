"""The CLI as a user runs it (a subprocess of the installed entry point): data on stdout, one-line
errors with a hint and a non-zero exit code on bad input, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run(*args: str, home, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RAYMARKET_")}
    environ.update({"RAYMARKET_HOME": str(home), **env})
    return subprocess.run([sys.executable, "-c", "import cli; cli.main()", *args], capture_output=True, text=True,
                          env=environ, timeout=120)


def assert_clean_error(res: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    for w in words:
        assert w in res.stderr, res.stderr


def test_missing_input_file(tmp_path):
    res = run("submit", "inference", str(tmp_path / "nope.txt"), "--max-price", "100", home=tmp_path)
    assert_clean_error(res, 2, "does not exist")


@pytest.mark.parametrize("price,word", [("-5", "positive"), ("1.5e3", "integer"), ("abc", "integer")])
def test_price_must_be_positive_integer_wei(tmp_path, price, word):
    text = tmp_path / "in.txt"
    text.write_text("one sentence\n")
    res = run("submit", "inference", str(text), "--max-price", price, home=tmp_path)
    assert_clean_error(res, 2, word)


def test_unknown_job_kind(tmp_path):
    res = run("submit", "mining", home=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_submit_without_funds_says_deposit_first(tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("one sentence\n")
    res = run("submit", "inference", str(text), "--max-price", "1000", "--client", "carol", home=tmp_path)
    assert_clean_error(res, 4, "fund")


def test_deposit_submit_status_json_roundtrip(tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("first sentence\nsecond sentence\n")
    dep = run("deposit", "carol", "5000", "--json", home=tmp_path)
    assert dep.returncode == 0, dep.stderr
    assert json.loads(dep.stdout) == {"client": "carol", "balance_wei": "5000"}
    sub = run("submit", "inference", str(text), "--max-price", "1000", "--client", "carol", "--job-id", "j-1",
              "--json", home=tmp_path)
    assert sub.returncode == 0, sub.stderr
    assert json.loads(sub.stdout)["job_id"] == "j-1"
    st = run("status", "j-1", "--json", home=tmp_path)
    job = json.loads(st.stdout)
    assert job["status"] == "open" and job["max_price_wei"] == "1000"
    assert [e["event"] for e in job["history"]] == ["submitted"]
    bal = run("deposit", "carol", "1", "--json", home=tmp_path)
    assert json.loads(bal.stdout)["balance_wei"] == "4001"  # 1000 escrowed


def test_unknown_job(tmp_path):
    res = run("status", "no-such-job", home=tmp_path)
    assert_clean_error(res, 4, "no-such-job")


def test_unreachable_database(tmp_path):
    res = run("status", "--database-url", "postgresql://nobody@127.0.0.1:1/none", home=tmp_path)
    assert_clean_error(res, 5, "database")


def test_demo_with_unreachable_rpc_fails_fast_and_clearly(tmp_path):
    res = run("demo", "--rpc-url", "http://127.0.0.1:1", home=tmp_path)
    assert_clean_error(res, 5, "--rpc-url")


def test_quote_rejects_unknown_spec_fields(tmp_path):
    res = run("quote", '{"kind": "proof", "colour": "red"}', home=tmp_path)
    assert_clean_error(res, 2, "colour")
