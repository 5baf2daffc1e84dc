"""Migration 0008_wei_text: an old SQLite database (64-bit INTEGER wei) keeps every amount exactly, as text.

The database is made at the revision before 0008 with real ledger operations (escrow, payment, stake,
collateral, unbonding, slashes) and exchange rows, every wei value is read raw, ``upgrade`` runs, and
each value must be its exact decimal text afterwards; then amounts beyond 2**63 work. A non-integer
value stops the upgrade with the table and column named and nothing changed; the downgrade refuses
amounts that no longer fit 64 bits. Postgres: the revision changes nothing (NUMERIC stays).
"""

from __future__ import annotations

import sqlite3

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from market import ledger as L
from market.core.slashing import SLASH_CANCEL_WINDOW_S
from market.db import migrate
from market.db.base import make_engine

REVISION = "0008_wei_text"
_SCRIPT = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
BEFORE = _SCRIPT.get_revision(REVISION).down_revision
TWO_BEFORE = _SCRIPT.get_revision(BEFORE).down_revision  # an older database: several revisions in one upgrade
NEAR_2_63 = 2**63 - 1


def _wei_values(path) -> dict[tuple[str, str, int], tuple[str, object]]:
    """(table, column, rowid) -> (SQLite storage class, raw value) of every ``*_wei`` column."""
    con = sqlite3.connect(path)
    try:
        out = {}
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for col in [r[1] for r in con.execute(f'PRAGMA table_info("{table}")') if r[1].endswith("_wei")]:
                for rowid, kind, value in con.execute(f'SELECT rowid, typeof("{col}"), "{col}" FROM "{table}"'):
                    out[(table, col, rowid)] = (kind, value)
        return out
    finally:
        con.close()


def _old_database(tmp_path, revision: str = BEFORE):
    """A SQLite database at ``revision`` (before 0008) with money in every wei column of the ledger."""
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url, revision)
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        L.open_client(s, "alice")
        L.open_provider(s, "p1")
        L.open_provider(s, "p2")
        L.deposit(s, "dep-a", L.client_account("alice"), 2**62 + 12_345)
        L.deposit(s, "dep-p", L.provider_account("p1"), 2**61 + 7)
        L.escrow_job(s, "esc-1", "alice", "job-1", 2**60 + 3)
        L.release_payment(s, "pay-1", "job-1", "p2", 2**59 + 1)
        L.escrow_job(s, "esc-2", "alice", "job-9", 10**18)  # stays pending
        L.bond(s, "bond-1", "p1", 2**60)
        L.lock_collateral(s, "lock-1", "p1", "job-2", 2**58 + 5)
        L.slash(s, "sl-1", "p1", "job-2", "wrong_result", now_s=0.0, client="alice")
        L.finalize_slash(s, "fin-1", "sl-1", now_s=SLASH_CANCEL_WINDOW_S + 1)
        L.request_unbond(s, "unb-1", "p1", 2**57 + 9, now_s=0.0)
        L.slash(s, "sl-2", "p1", "job-3", "missed_deadline", now_s=1.0, rescuer="p2", amount_wei=2**56 + 11)
    engine.dispose()
    con = sqlite3.connect(path)
    con.execute("INSERT INTO jobs (job_id, client, kind, status, spec, input_hash, max_price_wei, collateral_wei, "
                "deadline_s, created_at, updated_at, attempt, cleared_price_wei) "
                "VALUES ('j', 'c', 'proof', 'open', '{}', '0x', ?, 0, 1, 1, 1, 1, NULL)", (NEAR_2_63,))
    con.commit()
    con.close()
    return path, url


@pytest.mark.parametrize("start", [BEFORE, TWO_BEFORE])
def test_upgrade_keeps_every_amount_exactly(tmp_path, start):
    path, url = _old_database(tmp_path, start)
    before = _wei_values(path)
    assert {k for k, _ in before.values()} == {"integer", "null"} and len(before) > 30
    migrate.upgrade(url)  # to head, as `raymarket db upgrade` does (foreign keys off for the rebuilds)
    assert migrate.current(url) == _SCRIPT.get_current_head()
    after = _wei_values(path)
    assert after.keys() == before.keys()
    for key, (kind, value) in before.items():
        assert after[key] == (("null", None) if kind == "null" else ("text", str(value))), key
    engine = make_engine(url)
    with Session(engine) as s:
        assert L.check_invariants(s) == []
    with Session(engine) as s, s.begin():  # beyond 64 bits now
        L.deposit(s, "big", L.client_account("alice"), 2**255)
        assert L.balance(s, L.client_account("alice")) > 2**255
    with Session(engine) as s:
        assert L.check_invariants(s) == []
    engine.dispose()
    migrate.check(url)  # models == migrations at head


def test_a_non_integer_amount_stops_the_upgrade_naming_it(tmp_path):
    path, url = _old_database(tmp_path)
    con = sqlite3.connect(path)
    con.execute("UPDATE jobs SET collateral_wei = 1.5 WHERE job_id = 'j'")  # NUMERIC affinity keeps the REAL
    con.commit()
    con.close()
    before = _wei_values(path)
    with pytest.raises(RuntimeError, match=r"jobs\.collateral_wei has 1 value.* not exact integers"):
        migrate.upgrade(url, REVISION)
    assert migrate.current(url) == BEFORE and _wei_values(path) == before


def test_downgrade_round_trip_and_its_64_bit_limit(tmp_path):
    path, url = _old_database(tmp_path)
    before = _wei_values(path)
    migrate.upgrade(url, REVISION)
    migrate.downgrade(url, BEFORE)
    assert _wei_values(path) == before  # back to exact 64-bit integers
    migrate.upgrade(url, REVISION)
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        L.deposit(s, "big", L.client_account("alice"), 2**200)
    engine.dispose()
    with pytest.raises(RuntimeError, match=r"ledger_accounts\.balance_wei .* not signed 64-bit integers"):
        migrate.downgrade(url, BEFORE)
    assert migrate.current(url) == REVISION


@pytest.mark.postgres
def test_a_no_op_on_postgres(pg_url):
    migrate.upgrade(pg_url, BEFORE)
    engine = make_engine(pg_url)
    with Session(engine) as s, s.begin():
        L.open_client(s, "alice")
        L.deposit(s, "big", L.client_account("alice"), 2**255)
    migrate.upgrade(pg_url, REVISION)
    col = next(c for c in inspect(engine).get_columns("ledger_accounts") if c["name"] == "balance_wei")
    assert (col["type"].precision, col["type"].scale) == (78, 0)
    with Session(engine) as s:
        assert L.balance(s, L.client_account("alice")) == 2**255
    engine.dispose()
