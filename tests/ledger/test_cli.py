"""``raymarket ledger ...`` and ``raymarket provider bond|unbond`` through typer's CliRunner."""

from __future__ import annotations

import json

import pytest
import typer
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from market import ledger as L
from market.db.base import make_engine
from market.cli.ledger import register
from market.ledger.errors import InsufficientFunds, UnknownAccount, UnbondingNotMatured


@pytest.fixture
def cli():
    app, provider_app = typer.Typer(), typer.Typer()
    app.add_typer(provider_app, name="provider")
    register(app, provider_app)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cli.db'}"
    return request.getfixturevalue("pg_url")


def test_bond_balance_history_unbond(cli, url):
    res = cli("provider", "bond", "5000", "--provider", "p1", "--deposit", "--transfer-id", "b-1", "--json",
              "--database-url", url)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["bond_wei"] == "5000"
    again = cli("provider", "bond", "5000", "--provider", "p1", "--deposit", "--transfer-id", "b-1", "--json",
                "--database-url", url)  # a retry with the same id: applied once
    assert again.exit_code == 0 and json.loads(again.stdout)["bond_wei"] == "5000"

    res = cli("ledger", "balance", "bond:p1", "--json", "--database-url", url)
    assert json.loads(res.stdout) == {"account": "bond:p1", "kind": "bond", "balance_wei": "5000"}
    res = cli("ledger", "balance", "bond:p1", "--database-url", url)
    assert res.stdout.strip() == "bond:p1\t5000 wei"

    res = cli("ledger", "history", "provider:p1", "--json", "--database-url", url)
    assert [(r["transfer_id"], r["delta_wei"]) for r in json.loads(res.stdout)] == [("b-1:deposit", "5000"),
                                                                                   ("b-1", "-5000")]
    res = cli("provider", "unbond", "2000", "--provider", "p1", "--json", "--database-url", url)
    assert res.exit_code == 0, res.output
    res = cli("provider", "unbond", "--complete", "--provider", "p1", "--database-url", url)
    assert isinstance(res.exception, UnbondingNotMatured)  # cli.main maps it to an exit code and a hint
    res = cli("ledger", "check", "--json", "--database-url", url)
    assert res.exit_code == 0 and json.loads(res.stdout) == {"ok": True, "violations": []}
    engine = make_engine(url)
    with Session(engine) as s:
        assert L.balance(s, L.unbonding_account("p1")) == 2000
    engine.dispose()


def test_errors(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    res = cli("ledger", "balance", "client:nobody", "--database-url", url)
    assert isinstance(res.exception, UnknownAccount)
    res = cli("provider", "bond", "10", "--provider", "p2", "--database-url", url)
    assert isinstance(res.exception, InsufficientFunds)
    res = cli("provider", "bond", "0", "--provider", "p2", "--database-url", url)
    assert res.exit_code == 2 and "positive" in res.output
    res = cli("provider", "bond", "1.5", "--provider", "p2", "--database-url", url)
    assert res.exit_code == 2 and "integer" in res.output
