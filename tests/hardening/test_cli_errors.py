"""Issue 14 finding 8: user errors give one clear line and a hint, a non-zero exit, no traceback, and never
the job's secret; ``db downgrade`` asks for ``--yes``. The CLI runs as a subprocess (``python -m cli``)
against the real service."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from market.client import Client
from proving.field import FR_MODULUS
from tests.service.conftest import start_service

REPO = Path(__file__).resolve().parents[2]
PW = "hardening test password"


def run(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAYMARKET_", "RAY_"))}
    env.update(RAYMARKET_HOME=str(home), RAYMARKET_PASSWORD=PW, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=timeout)


def clean_failure(res: subprocess.CompletedProcess, *words: str, secret: str | None = None) -> str:
    text = res.stdout + res.stderr
    assert res.returncode != 0, text
    assert "Traceback" not in text and "internal error" not in text, text
    assert res.returncode != 70, text  # the handler's "this is a bug" code
    for w in words:
        assert w in text, (w, text)
    if secret is not None:
        assert secret not in text, text
    return text


@pytest.fixture(scope="module")
def market(tmp_path_factory, request):
    """The real service, and a CLI home with a funded imported key."""
    tmp = tmp_path_factory.mktemp("cli-errors")
    svc = start_service(tmp / "data")
    request.addfinalizer(svc.stop)
    key = Account.create().key.hex()
    Client(svc.url, key).faucet(10**18)
    home = tmp / "home"
    (tmp / "key.txt").write_text(key)
    assert run(home, "account", "import", "--private-key-file", str(tmp / "key.txt")).returncode == 0
    return svc, home


@pytest.mark.parametrize("price", [str(2**63), str(2**256), str(2**64 + 1)])
def test_huge_max_price_is_a_clean_refusal_without_the_preimage(market, price):
    svc, home = market
    secret = "918273645546372819"
    res = run(home, "submit", "proof", "--max-price", price, "--preimage", secret, "--rounds", "4",
              "--exchange", svc.url)
    clean_failure(res, "wei", secret=secret)  # already clean on the service: 422 invalid + hint


@pytest.mark.parametrize("preimage", ["-1", str(FR_MODULUS), str(FR_MODULUS + 12345), str(2**300)])
def test_preimage_out_of_the_field_refused_without_echo(market, preimage):
    svc, home = market
    res = run(home, "submit", "proof", "--max-price", "1000", "--preimage", preimage, "--exchange", svc.url)
    text = clean_failure(res, "--preimage", secret=preimage)
    assert res.returncode == 2, text


def test_service_refuses_preimage_out_of_the_field(market):
    """The SDK path (no CLI check): 422 invalid naming spec.preimage, the value not echoed."""
    svc, _ = market
    from market.client import ApiError

    c = Client(svc.url, Account.create().key.hex())
    c.faucet(10**18)
    with pytest.raises(ApiError) as e:
        c.submit_proof(FR_MODULUS + 7, rounds=4, max_price_wei=1000)
    assert e.value.code == "invalid" and "preimage" in e.value.message
    assert str(FR_MODULUS + 7) not in e.value.message + e.value.hint


_Q = '"kind": "inference", "input_b64": "aGVsbG8gd29ybGQu", "max_price_wei": 1000'


@pytest.mark.parametrize("spec,field", [("{" + _Q + ', "cpus": "x"}', "cpus"),
                                        ("{" + _Q + ', "deadline_s": null}', "deadline_s")])
def test_quote_with_bad_fields(market, spec, field):
    svc, home = market
    clean_failure(run(home, "quote", spec, "--exchange", svc.url), field)


@pytest.mark.parametrize("url,word", [("notaurl", "no scheme"), ("mysql://root:hunter2@db/x", "mysql")])
def test_unsupported_database_urls(tmp_path, url, word):
    for cmd in (["db", "upgrade"], ["db", "check"]):
        text = clean_failure(run(tmp_path / "home", *cmd, "--database-url", url), "database_url", word,
                             secret="hunter2")
        assert "sqlite" in text and "postgresql" in text


def test_db_downgrade_needs_yes(tmp_path):
    home = tmp_path / "home"
    assert run(home, "db", "upgrade").returncode == 0
    text = clean_failure(run(home, "db", "downgrade", "base"), "--yes")
    assert "ledger" in text
    assert (home / "ledger.db").exists() or any(home.rglob("ledger.db"))
    res = run(home, "db", "downgrade", "base", "--yes")
    assert res.returncode == 0, res.stderr
