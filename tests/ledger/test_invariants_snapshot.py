"""``check_invariants`` beside a live writer: its reads are one snapshot (the CI failure of stop 18).

The sweeper test once read ``collateral:p2`` as 0 wei and then, after the exchange committed a collateral lock
between two of the check's statements, p2's new reservation of 10^14 wei: a false violation. Here the commit is
forced between the check's first statement (the accounts) and its later ones, on both backends.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from market import ledger as L
from tests.ledger.conftest import funded


def test_a_commit_between_the_checks_reads_is_not_seen_half(engine, tx):
    with tx() as s:
        funded(s, providers={"p2": 10**18}, bonds={"p2": 10**17})
    fired: list[bool] = []

    def _commit_a_lock_once(conn, cursor, statement, *_args) -> None:  # after the check's accounts SELECT
        if fired or "ledger_accounts" not in statement or conn is writer_conn:
            return
        fired.append(True)
        with Session(bind=writer_conn) as w, w.begin():
            L.lock_collateral(w, "lock:j1", "p2", "j1", 10**14)

    writer_conn = engine.connect()
    event.listen(engine, "after_cursor_execute", _commit_a_lock_once)
    try:
        with Session(engine) as s:
            assert L.check_invariants(s) == []
    finally:
        event.remove(engine, "after_cursor_execute", _commit_a_lock_once)
        writer_conn.close()
    assert fired, "the concurrent lock never ran: the test did not interleave"
    with Session(engine) as s:  # the lock did commit, and a fresh check sees all of it
        assert L.balance(s, L.collateral_account("p2")) == 10**14
        assert L.check_invariants(s) == []
