"""A connection killed in the middle of a transaction (``pg_terminate_backend``) loses nothing, and a
retry with the same transfer ids completes exactly once."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from market import ledger as L
from tests.ledger.conftest import funded

pytestmark = pytest.mark.postgres

ALICE, BOB = L.client_account("alice"), L.client_account("bob")


def work(s: Session) -> None:
    """The unit of work that gets killed and retried: several operations, one transaction."""
    L.deposit(s, "k-dep", ALICE, 700)
    L.escrow_job(s, "k-esc", "alice", "k-job", 1_000)
    L.release_payment(s, "k-rel", "k-job", "p1", 600, fee_bps=100)
    L.post_batch(s, [L.TransferSpec(f"k-t{i}", ALICE, BOB, 10) for i in range(20)])


def kill(admin, pid: int) -> None:
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()


def state(engine) -> tuple:
    with Session(engine) as s:
        ops = s.execute(text("SELECT count(*) FROM ledger_operations")).scalar_one()
        return L.balances(s), ops, L.check_invariants(s)


@pytest.fixture
def ledger(pg_engine):
    with Session(pg_engine) as s, s.begin():
        funded(s, clients={"alice": 5_000, "bob": 0}, providers={"p1": 0})
    admin = create_engine(pg_engine.url, poolclass=None)
    yield pg_engine, admin
    admin.dispose()


def test_killed_before_commit_loses_nothing_and_retry_applies_once(ledger):
    engine, admin = ledger
    before = state(engine)
    with pytest.raises(DBAPIError):
        with Session(engine) as s, s.begin():
            pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
            work(s)
            kill(admin, pid)
            s.execute(text("SELECT 1"))  # the dead connection fails here (or at COMMIT)
    assert state(engine) == before  # nothing half-applied
    for _ in range(2):  # the retry, then a retry of the retry (client unsure it committed)
        with Session(engine) as s, s.begin():
            work(s)
    balances, ops, violations = state(engine)
    assert violations == []
    assert ops == before[1] + 3 + 20
    assert balances[ALICE] == 5_000 + 700 - 600 - 200
    assert balances[BOB] == 200
    assert balances[L.provider_account("p1")] == 594


def test_killed_while_holding_locks_releases_them(ledger):
    """A transaction killed while it holds account locks: a second one waiting on them then completes."""
    engine, admin = ledger
    holder = Session(engine)
    holder.begin()
    pid = holder.execute(text("SELECT pg_backend_pid()")).scalar_one()
    L.withdraw(holder, "h-wd", ALICE, 4_000)  # locks alice (and world) FOR UPDATE, uncommitted
    done = threading.Event()

    def waiter() -> None:
        with Session(engine) as s, s.begin():
            L.withdraw(s, "w-wd", ALICE, 4_500)  # blocks on alice's lock; succeeds once the holder dies
        done.set()

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.5)
    assert not done.is_set()  # really waiting on the lock
    kill(admin, pid)
    t.join(timeout=30)
    assert done.is_set()
    with pytest.raises(DBAPIError):
        holder.commit()
    holder.close()
    balances, _, violations = state(engine)
    assert violations == []
    assert balances[ALICE] == 500  # only the waiter's withdrawal was applied
    with Session(engine) as s, s.begin():  # the killed one retried: now refused, funds are gone
        with pytest.raises(L.LedgerError):
            L.withdraw(s, "h-wd", ALICE, 4_000)
