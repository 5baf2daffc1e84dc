"""The client commands' pure parts (CliRunner on the real app): keys, options, errors without an exchange."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
import typer
from eth_account import Account
from typer.testing import CliRunner

import cli
from market.cli.accounts import KeystoreError, resolve_keystore
from market.cli.exit_codes import ExitCode
from market.cli.jobs import parse_bytes, result_summary
from market.settings import Settings

PW = "correct horse battery staple"


@pytest.fixture
def home(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("RAYMARKET_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("RAYMARKET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAYMARKET_PASSWORD", PW)
    return tmp_path / "home"


def invoke(*args: str):
    return CliRunner().invoke(cli.app, list(args))


def test_account_new_list_import(home, tmp_path):
    res = invoke("account", "new", "--name", "alice", "--json")
    assert res.exit_code == 0, res.output
    alice = json.loads(res.stdout)
    path = home / "keys" / "alice.json"
    assert alice["keystore"] == str(path) and oct(path.stat().st_mode & 0o777) == "0o600"
    blob = json.loads(path.read_text())
    assert Account.from_key(Account.decrypt(blob, PW)).address == alice["address"]  # a real v3 keystore
    again = invoke("account", "new", "--name", "alice")
    assert again.exit_code == ExitCode.BAD_INPUT and "never overwritten" in again.stderr
    key = "0x" + "11" * 32
    (tmp_path / "k.txt").write_text(key + "\n")
    imp = invoke("account", "import", "--private-key-file", str(tmp_path / "k.txt"), "--name", "bob", "--json")
    assert imp.exit_code == 0 and json.loads(imp.stdout)["address"] == Account.from_key(key).address
    rows = json.loads(invoke("account", "list", "--json").stdout)
    assert [r["name"] for r in rows] == ["alice", "bob"] and not any(r["default"] for r in rows)


def test_password_file_wins_over_the_environment(home, tmp_path):
    (tmp_path / "pw").write_text("from-file\nignored\n")
    res = invoke("account", "new", "--name", "c", "--password-file", str(tmp_path / "pw"), "--json")
    blob = json.loads((home / "keys" / "c.json").read_text())
    assert res.exit_code == 0 and Account.decrypt(blob, "from-file")


def test_which_key_signs(home):
    s = Settings.load()
    with pytest.raises(KeystoreError, match="account new"):
        resolve_keystore(None, s)
    invoke("account", "new", "--name", "one")
    assert resolve_keystore(None, s) == home / "keys" / "one.json"  # the only one
    invoke("account", "new", "--name", "two")
    with pytest.raises(KeystoreError, match="--key"):
        resolve_keystore(None, s)
    assert resolve_keystore("two", s) == home / "keys" / "two.json"  # by name
    assert resolve_keystore(None, Settings.load(keystore=home / "keys" / "one.json")).name == "one.json"


def test_unreachable_exchange_is_exit_5_with_a_hint(home, tmp_path):
    invoke("account", "new")
    text = tmp_path / "in.txt"
    text.write_text("a sentence\n")
    res = invoke("submit", "inference", str(text), "--max-price", "1000", "--exchange", "http://127.0.0.1:1")
    assert res.exit_code == ExitCode.UNREACHABLE, res.output
    assert "unreachable" in res.stderr and "hint:" in res.stderr and "Traceback" not in res.stderr
    res = invoke("status", "j-1", "--exchange", "http://127.0.0.1:1")
    assert res.exit_code == ExitCode.UNREACHABLE


def test_no_key_is_a_clean_error(home, tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("a sentence\n")
    res = invoke("submit", "inference", str(text), "--max-price", "1000", "--exchange", "http://127.0.0.1:1")
    assert res.exit_code == ExitCode.BAD_INPUT and "raymarket account new" in res.stderr


@pytest.mark.parametrize("args,word", [
    (["submit", "inference", "nope.txt", "--max-price", "100"], "nope.txt"),
    (["submit", "proof", "--max-price", "-5"], "positive"),
    (["submit", "proof", "--max-price", "1.5e3"], "integer"),
    (["submit", "proof", "--max-price", "100", "--memory", "lots"], "size"),
    (["submit", "mining"], "mining"),
    (["quote", '{"kind": "proof", "colour": "red"}'], "colour"),
])
def test_usage_errors(home, args, word):
    res = invoke(*args)
    assert res.exit_code == ExitCode.USAGE and word in res.output and "Traceback" not in res.output


def test_parse_bytes():
    assert parse_bytes("0") == 0 and parse_bytes("2GiB") == 2 * 2**30 and parse_bytes("512 MiB") == 512 * 2**20
    assert parse_bytes("1.5GB") == 1_500_000_000
    with pytest.raises(typer.BadParameter):
        parse_bytes("2 parsecs")


def test_result_summary_checks_embedding_shape():
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 384), dtype=np.float32))
    assert result_summary("inference", buf.getvalue()) == {"shape": [3, 384], "dtype": "float32"}
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 384), dtype=np.float64))
    with pytest.raises(ValueError, match="float64"):
        result_summary("inference", buf.getvalue())
    assert result_summary("proof", json.dumps({"pi_a": 1, "pi_b": 2}).encode()) == {"fields": ["pi_a", "pi_b"]}
