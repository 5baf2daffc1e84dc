"""Postgres itself rejects bad writes that bypass the Python layer (raw SQL through psycopg).

CHECKs: non-negative balances unless allowed, positive amounts, distinct accounts; triggers:
append-only journal, and the deferred per-transaction audit (every balance change must be
a journal row, money is neither created nor destroyed).
"""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from market import ledger as L
from tests.ledger.conftest import funded

pytestmark = pytest.mark.postgres

JOURNAL = ("INSERT INTO ledger_transfers (op_id, leg, debit_account_id, credit_account_id, amount_wei, kind) "
           "VALUES ('{op}', 0, '{debit}', '{credit}', {amount}, 't')")
OP = "INSERT INTO ledger_operations (id, kind, inputs_sha256) VALUES ('{op}', 't', 'h')"
MOVE = "UPDATE ledger_accounts SET balance_wei = balance_wei + ({delta}) WHERE id = '{account}'"


@pytest.fixture
def raw(pg_engine):
    """A raw psycopg connection on a ledger where client:a holds 100 wei; also returns the engine."""
    with Session(pg_engine) as s, s.begin():
        funded(s, clients={"a": 100, "b": 0})
    url = pg_engine.url
    conn = psycopg.connect(host=url.host, port=url.port, user=url.username, dbname=url.database)
    yield conn, pg_engine
    conn.close()


def run(conn, *statements: str) -> None:
    with conn.transaction():
        for sql in statements:
            conn.execute(sql)


def assert_rejected(raw, *statements: str, match: str) -> None:
    conn, engine = raw
    with Session(engine) as s:
        before = L.balances(s)
    with pytest.raises(psycopg.errors.CheckViolation, match=match):
        run(conn, *statements)
    with Session(engine) as s:
        assert L.balances(s) == before
        assert L.check_invariants(s) == []


def test_negative_balance_rejected(raw):
    assert_rejected(raw, MOVE.format(delta=-101, account="client:a"), MOVE.format(delta=101, account="world"),
                    match="balance_nonnegative")


def test_minting_without_a_journal_row_rejected(raw):
    assert_rejected(raw, MOVE.format(delta=5, account="client:a"), match="unbalanced transaction")


def test_balanced_move_without_a_journal_row_rejected(raw):
    assert_rejected(raw, MOVE.format(delta=-5, account="client:a"), MOVE.format(delta=5, account="client:b"),
                    match="unbalanced transaction")


def test_journal_row_without_balance_change_rejected(raw):
    assert_rejected(raw, OP.format(op="x"), JOURNAL.format(op="x", debit="client:a", credit="client:b", amount=5),
                    match="unbalanced transaction")


def test_balances_moved_other_than_the_journal_says_rejected(raw):
    assert_rejected(raw, OP.format(op="x"), JOURNAL.format(op="x", debit="client:a", credit="client:b", amount=5),
                    MOVE.format(delta=-5, account="client:a"), MOVE.format(delta=5, account="world"),
                    match="unbalanced transaction")


def test_account_opened_with_a_balance_rejected(raw):
    assert_rejected(raw, "INSERT INTO ledger_accounts (id, kind, balance_wei) VALUES ('client:rich', 'client', 7)",
                    match="unbalanced transaction")


def test_zero_amount_and_self_transfer_rejected(raw):
    assert_rejected(raw, OP.format(op="x"), JOURNAL.format(op="x", debit="client:a", credit="client:b", amount=0),
                    match="amount_positive")
    assert_rejected(raw, OP.format(op="y"), JOURNAL.format(op="y", debit="client:a", credit="client:a", amount=1),
                    match="distinct_accounts")


def test_journal_is_append_only(raw):
    assert_rejected(raw, "UPDATE ledger_transfers SET amount_wei = 1", match="append-only")
    assert_rejected(raw, "DELETE FROM ledger_transfers", match="append-only")
    assert_rejected(raw, "TRUNCATE ledger_transfers CASCADE", match="append-only")
    assert_rejected(raw, "DELETE FROM ledger_accounts WHERE id = 'client:b'", match="append-only")


def test_a_correct_raw_transfer_is_accepted(raw):
    conn, engine = raw
    run(conn, OP.format(op="ok"), JOURNAL.format(op="ok", debit="client:a", credit="client:b", amount=40),
        MOVE.format(delta=-40, account="client:a"), MOVE.format(delta=40, account="client:b"))
    with Session(engine) as s:
        assert (L.balance(s, "client:a"), L.balance(s, "client:b")) == (60, 40)
        assert L.check_invariants(s) == []
        assert s.execute(text("SELECT count(*) FROM ledger_tx_audit")).scalar_one() == 0


def test_journal_row_naming_a_missing_account_rejected(raw):
    """No per-row foreign key on the journal: the audit rejects a row whose account cannot have moved."""
    assert_rejected(raw, OP.format(op="x"), JOURNAL.format(op="x", debit="client:a", credit="client:ghost", amount=5),
                    MOVE.format(delta=-5, account="client:a"), MOVE.format(delta=5, account="client:b"),
                    match="unbalanced transaction")
