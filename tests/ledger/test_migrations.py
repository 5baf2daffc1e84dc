"""Migrations: upgrade -> downgrade -> upgrade on Postgres (and SQLite), and no drift between
the models and the migrations (``alembic check``)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from market.ledger import models as ledger_models

from market.db import migrate
from market.db.base import Base, make_engine

LEDGER_TABLES = {t.name for t in Base.metadata.sorted_tables if t.name.startswith("ledger_")}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _ledger_diffs(url: str) -> list:
    """Autogenerate differences that concern the ledger's tables (``alembic check`` restricted to them)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return [d for d in compare_metadata(ctx, Base.metadata) if "ledger_" in repr(d)]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_round_trip_on_postgres(pg_url):
    migrate.upgrade(pg_url, "0001_ledger")
    assert LEDGER_TABLES <= _tables(pg_url)
    assert migrate.current(pg_url) == "0001_ledger"
    migrate.downgrade(pg_url, "base")
    assert not (LEDGER_TABLES & _tables(pg_url))
    migrate.upgrade(pg_url, "0001_ledger")
    assert LEDGER_TABLES <= _tables(pg_url)
    assert _ledger_diffs(pg_url) == []


def test_round_trip_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"  # at head: 0008_wei_text makes the SQLite wei columns decimal text
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    migrate.upgrade(url)
    assert LEDGER_TABLES <= _tables(url)
    assert _ledger_diffs(url) == []


@pytest.mark.postgres
def test_alembic_check_at_head(pg_url):
    """The full ``alembic check`` at head, once the chain after 0001_ledger exists (0002_market, ...)."""
    script = ScriptDirectory.from_config(migrate.alembic_config(pg_url))
    if script.get_current_head() == "0001_ledger":
        pytest.skip("only the ledger revision exists: covered by test_round_trip_on_postgres")
    migrate.upgrade(pg_url)
    migrate.check(pg_url)
    migrate.downgrade(pg_url, "base")
    migrate.upgrade(pg_url)


def test_models_cover_the_ledger_tables():
    assert LEDGER_TABLES == {"ledger_accounts", "ledger_operations", "ledger_transfers", "ledger_pendings",
                             "ledger_unbonds", "ledger_slashes", "ledger_tx_audit"}
    assert ledger_models.Account.__tablename__ == "ledger_accounts"
