"""``raymarket ledger ...`` (read-only operator tools) through typer's CliRunner."""

from __future__ import annotations

import json

import pytest
import typer
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from market import ledger as L
from market.db.base import make_engine
from market.cli.ledger import register
from market.ledger.errors import UnknownAccount


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


def _bond_p1(url: str) -> None:
    """State for the read commands, written through the ledger API (the CLI writes no money)."""
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        L.open_provider(s, "p1")
        L.deposit(s, "b-1:deposit", L.provider_account("p1"), 5000)
        L.bond(s, "b-1", "p1", 5000)
    engine.dispose()


def test_balance_history_check(cli, url):
    migrate_cli = cli("ledger", "check", "--json", "--database-url", url)
    assert migrate_cli.exit_code == 0, migrate_cli.output
    _bond_p1(url)
    res = cli("ledger", "balance", "bond:p1", "--json", "--database-url", url)
    assert json.loads(res.stdout) == {"account": "bond:p1", "kind": "bond", "balance_wei": "5000"}
    res = cli("ledger", "balance", "bond:p1", "--database-url", url)
    assert res.stdout.strip() == "bond:p1\t5000 wei"
    res = cli("ledger", "history", "provider:p1", "--json", "--database-url", url)
    assert [(r["transfer_id"], r["delta_wei"]) for r in json.loads(res.stdout)] == [("b-1:deposit", "5000"),
                                                                                   ("b-1", "-5000")]
    res = cli("ledger", "check", "--json", "--database-url", url)
    assert res.exit_code == 0 and json.loads(res.stdout) == {"ok": True, "violations": []}


def test_no_command_writes_stake_into_the_database(cli):
    """Issue 11/12: `provider bond --deposit` minted stake from nothing; stake is on-chain only now."""
    for args in (("provider", "bond", "5000", "--provider", "p1", "--deposit"), ("provider", "unbond", "1")):
        res = cli(*args)
        assert res.exit_code != 0 and "No such command" in res.output


def test_errors(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    res = cli("ledger", "balance", "client:nobody", "--database-url", url)
    assert isinstance(res.exception, UnknownAccount)

