"""``verify JOB`` through the CLI, and migration 0003_settlement against the models (Postgres and SQLite)."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from sqlalchemy import inspect
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from contracts.chain import connect
from market.db.base import make_engine
from market.settlement.batching import BatchingPolicy, Settler
from market.settlement.models import SETTLEMENT_TABLES, LeafRecord
from tests.settlement.helpers import signed_leaf
from tests.settlement.test_watcher import make_db, setup_settlement


def cli_app():
    import typer

    from market.cli.settlement import settlement_app, watch

    app = typer.Typer()
    app.command("watch")(watch)
    app.add_typer(settlement_app, name="settlement")
    return app


@pytest.mark.anvil
@pytest.mark.postgres
def test_verify_prints_leaf_proof_and_onchain_root_and_detects_tampering(anvil, pg_url, tmp_path) -> None:
    # Postgres, not SQLite: SQLAlchemy binds NUMERIC as float on SQLite, so wei > 2**53 lose precision there
    chain = connect(anvil.rpc_url, dev_keys=tuple(anvil.dev_keys))
    settlement, owner, operator = setup_settlement(chain)
    url = pg_url
    engine = make_db(url)
    settler = Settler(engine, settlement, operator, BatchingPolicy(max_batch_size=5, window_s=10.0))
    provider = "0x" + bytes(Account.create().key).hex()
    for i in range(5):
        settler.add(signed_leaf(provider, settlement.domain), job_ref=f"job-{i}", added_at_s=1.0)
    (batch_id,) = settler.flush(now_s=2.0)
    runner = CliRunner()
    args = ["settlement", "verify", "job-3", "--rpc-url", anvil.rpc_url, "--database-url", url]
    result = runner.invoke(cli_app(), args + ["--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["batch_id"] == batch_id and 0 <= report["leaf_index"] < 5
    assert report["onchain_root"] == report["root"] and report["proof"]
    assert report["checks"]["contract_verifies_attestation"]
    text = runner.invoke(cli_app(), args)
    assert text.exit_code == 0 and "onchain_root" in text.stdout and "ok   contract_verifies_attestation" in text.stdout
    with Session(engine) as s, s.begin():  # tamper with the stored price: the leaf no longer matches
        leaf = s.scalars(__import__("sqlalchemy").select(LeafRecord).where(LeafRecord.job_ref == "job-3")).one()
        leaf.price_wei += 1
    bad = runner.invoke(cli_app(), args + ["--json"])
    assert bad.exit_code == 1
    assert not json.loads(bad.stdout)["checks"]["contract_verifies_attestation"]
    missing = runner.invoke(cli_app(), ["settlement", "verify", "nope", "--database-url", url])
    assert missing.exit_code == 4 and "no attestation for job 'nope'" in missing.output  # ExitCode.NOT_FOUND
    no_rpc = runner.invoke(cli_app(), ["watch", "--contract", settlement.address, "--database-url", url])
    assert no_rpc.exit_code == 2 and "--rpc-url" in no_rpc.output
    empty = runner.invoke(cli_app(), ["settlement", "verify", "job-1", "--database-url",
                                      f"sqlite:///{tmp_path / 'empty.sqlite'}"])
    assert empty.exit_code == 3 and "raymarket db upgrade" in empty.output  # ExitCode.BAD_INPUT
    unreachable = runner.invoke(cli_app(), ["watch", "--contract", settlement.address, "--database-url", url,
                                            "--rpc-url", "http://127.0.0.1:1", "--once"])
    assert unreachable.exit_code == 5 and "cannot reach the chain" in unreachable.output  # ExitCode.UNREACHABLE


def _settlement_diffs(url: str) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from market.db.base import Base

    engine = make_engine(url)
    names = {t.name for t in SETTLEMENT_TABLES}
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    return [d for d in diffs if names & set(str(d).split("'"))]


@pytest.mark.postgres
def test_migration_0003_creates_exactly_the_modelled_tables_and_downgrades(pg_url, tmp_path) -> None:
    from market.db.migrate import downgrade, upgrade

    for url in (pg_url, f"sqlite:///{tmp_path / 'm.sqlite'}"):
        upgrade(url)
        engine = make_engine(url)
        assert {t.name for t in SETTLEMENT_TABLES} <= set(inspect(engine).get_table_names())
        engine.dispose()
        assert _settlement_diffs(url) == []
        downgrade(url, "0002_market")
        engine = make_engine(url)
        assert not {t.name for t in SETTLEMENT_TABLES} & set(inspect(engine).get_table_names())
        engine.dispose()
