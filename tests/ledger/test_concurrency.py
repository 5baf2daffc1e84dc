"""8 threads doing random ledger operations on a few hot accounts of a real Postgres, for a bounded time.

Afterwards: every invariant holds (balances == journal replay, no negative balance, holding
accounts == open reservations), no transfer id was applied twice (even ids submitted by several
threads at once), each contested reservation was resolved exactly once, no deadlock happened.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from market import ledger as L
from market.ledger.errors import InsufficientFunds, LedgerError, PendingAlreadyResolved, UnbondingNotMatured
from tests.ledger.conftest import funded

pytestmark = pytest.mark.postgres

THREADS = 8
DURATION_S = 10.0
CLIENTS = [f"c{i}" for i in range(4)]
PROVIDERS = [f"p{i}" for i in range(3)]
SHARED_JOBS = [f"shared-{i}" for i in range(150)]
TWIN_DEPOSITS = 60  # ids that every thread submits: each must be applied once


class Worker:
    """One thread's random operations; records what succeeded and what failed."""

    def __init__(self, engine, index: int, deadline: float) -> None:
        self.engine, self.index, self.deadline = engine, index, deadline
        self.rng = random.Random(1000 + index)
        self.seq = 0
        self.ok: list[tuple[str, str, object]] = []   # (kind, id, result)
        self.errors: Counter[str] = Counter()
        self.unexpected: list[BaseException] = []
        self.my_jobs: list[str] = []
        self.my_locks: list[tuple[str, str]] = []

    def next_id(self, kind: str) -> str:
        self.seq += 1
        return f"w{self.index}-{kind}-{self.seq}"

    def run(self) -> None:
        ops = [self.batch, self.deposit, self.withdraw, self.escrow, self.settle_own, self.race_shared,
               self.lock, self.unlock, self.twin, self.retry, self.slash, self.unbond, self.expire]
        while time.monotonic() < self.deadline:
            op = self.rng.choice(ops)
            try:
                with Session(self.engine) as s, s.begin():
                    op(s)
            except (InsufficientFunds, PendingAlreadyResolved, UnbondingNotMatured) as exc:
                self.errors[type(exc).__name__] += 1
            except (LedgerError, DBAPIError) as exc:  # a deadlock / lost update / bug
                self.unexpected.append(exc)

    def record(self, kind: str, op_id: str, result: object) -> None:
        self.ok.append((kind, op_id, result))

    def batch(self, s: Session) -> None:
        specs = []
        for _ in range(self.rng.randint(1, 6)):
            a, b = self.rng.sample(CLIENTS, 2)
            specs.append(L.TransferSpec(self.next_id("t"), L.client_account(a), L.client_account(b),
                                        self.rng.randint(1, 3_000)))
        L.post_batch(s, specs)
        for spec in specs:
            self.record("transfer", spec.transfer_id, spec)

    def deposit(self, s: Session) -> None:
        op_id, amount = self.next_id("dep"), self.rng.randint(1, 5_000)
        self.record("deposit", op_id, L.deposit(s, op_id, L.client_account(self.rng.choice(CLIENTS)), amount))

    def withdraw(self, s: Session) -> None:
        op_id, amount = self.next_id("wd"), self.rng.randint(1, 8_000)
        self.record("withdraw", op_id, L.withdraw(s, op_id, L.client_account(self.rng.choice(CLIENTS)), amount))

    def escrow(self, s: Session) -> None:
        job, op_id = self.next_id("job"), self.next_id("esc")
        L.escrow_job(s, op_id, self.rng.choice(CLIENTS), job, self.rng.randint(100, 4_000))
        self.my_jobs.append(job)

    def settle_own(self, s: Session) -> None:
        if not self.my_jobs:
            return
        job = self.my_jobs.pop(self.rng.randrange(len(self.my_jobs)))
        if self.rng.random() < 0.7:
            L.release_payment(s, self.next_id("rel"), job, self.rng.choice(PROVIDERS), 100, fee_bps=150)
        else:
            L.void_escrow(s, self.next_id("void"), job)

    def race_shared(self, s: Session) -> None:
        job = self.rng.choice(SHARED_JOBS)
        op_id = self.next_id("shared")
        if self.rng.random() < 0.5:
            self.record("resolve", op_id, L.release_payment(s, op_id, job, self.rng.choice(PROVIDERS), 50, fee_bps=100))
        else:
            self.record("resolve", op_id, L.void_escrow(s, op_id, job))

    def lock(self, s: Session) -> None:
        provider, job = self.rng.choice(PROVIDERS), self.next_id("cjob")
        L.lock_collateral(s, self.next_id("lock"), provider, job, self.rng.randint(2, 2_000))
        self.my_locks.append((provider, job))

    def unlock(self, s: Session) -> None:
        if self.my_locks:
            provider, job = self.my_locks.pop(self.rng.randrange(len(self.my_locks)))
            L.unlock_collateral(s, self.next_id("unlock"), provider, job)

    def slash(self, s: Session) -> None:
        """Slash one of my locks (half, missed deadline, rescued by another provider), then finalize or cancel it."""
        if not self.my_locks:
            return
        provider, job = self.my_locks.pop(self.rng.randrange(len(self.my_locks)))
        rescuer = self.rng.choice([p for p in PROVIDERS if p != provider])
        sl = L.slash(s, self.next_id("slash"), provider, job, "missed_deadline", 0.0, rescuer=rescuer, window_s=0.0)
        if self.rng.random() < 0.5:
            L.finalize_slash(s, self.next_id("final"), sl.slash_id, 1.0)
        if sl.from_collateral_wei < sl.amount_wei or self.rng.random() < 0.5:
            return
        L.unlock_collateral(s, self.next_id("unlock"), provider, job)

    def unbond(self, s: Session) -> None:
        provider = self.rng.choice(PROVIDERS)
        L.request_unbond(s, self.next_id("ub"), provider, self.rng.randint(1, 500), 0.0, period_s=0.0)
        if self.rng.random() < 0.5:
            L.complete_unbond(s, self.next_id("cub"), provider, 1.0)

    def expire(self, s: Session) -> None:
        if self.rng.random() < 0.5:
            job = self.next_id("xjob")
            L.escrow_job(s, self.next_id("xesc"), self.rng.choice(CLIENTS), job, 100, expires_at_s=5.0)
        else:
            for r in L.expire_pending(s, 10.0, limit=5):
                self.record("expired", r.transfer_id, r)

    def twin(self, s: Session) -> None:
        i = self.rng.randrange(TWIN_DEPOSITS)
        result = L.deposit(s, f"twin-{i}", L.client_account(CLIENTS[i % len(CLIENTS)]), 1_000 + i)
        self.record("twin", f"twin-{i}", result)

    def retry(self, s: Session) -> None:
        done = [(k, i, r) for k, i, r in self.ok[-50:] if k in ("deposit", "withdraw")]
        if done:
            kind, op_id, first = self.rng.choice(done)
            again = (L.deposit if kind == "deposit" else L.withdraw)(s, op_id, first.credit_account_id
                                                                    if kind == "deposit" else first.debit_account_id,
                                                                    first.amount_wei)
            assert again == first


def test_random_concurrent_operations_keep_every_invariant(pg_engine):
    with Session(pg_engine) as s, s.begin():
        funded(s, clients={c: 200_000 for c in CLIENTS}, providers={p: 100_000 for p in PROVIDERS},
               bonds={p: 100_000 for p in PROVIDERS})
        for i, job in enumerate(SHARED_JOBS):
            L.escrow_job(s, f"setup-{job}", CLIENTS[i % len(CLIENTS)], job, 500)
    deadline = time.monotonic() + DURATION_S
    workers = [Worker(pg_engine, i, deadline) for i in range(THREADS)]
    threads = [threading.Thread(target=w.run) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DURATION_S + 60)
    assert not any(t.is_alive() for t in threads)
    unexpected = [e for w in workers for e in w.unexpected]
    assert unexpected == [], unexpected[:3]
    ok = [x for w in workers for x in w.ok]
    errors = sum((w.errors for w in workers), Counter())
    print(f"{len(ok)} successful operations, expected refusals {dict(errors)}")
    assert len(ok) > 200, "too little work done to mean anything"

    with Session(pg_engine) as s:
        assert L.check_invariants(s) == []
        # no transfer applied twice
        dup = s.execute(text("SELECT op_id, leg FROM ledger_transfers GROUP BY op_id, leg HAVING count(*) > 1")).all()
        assert dup == []
        # every id several threads submitted at once was applied once, with one journal row
        twins = s.execute(text("SELECT op_id, count(*) FROM ledger_transfers WHERE op_id LIKE 'twin-%' "
                               "GROUP BY op_id")).all()
        assert twins and all(n == 1 for _, n in twins)
        assert {i for k, i, _ in ok if k == "twin"} == {op_id for op_id, _ in twins}
        # each contested escrow was resolved exactly once, by the one operation that reported success
        resolved = s.execute(text("SELECT job_id, resolved_by FROM ledger_pendings WHERE job_id LIKE 'shared-%' "
                                  "AND status <> 'pending'")).all()
        winners = {i for k, i, _ in ok if k == "resolve"}
        assert {by for _, by in resolved} == winners
        assert len(resolved) == len({job for job, _ in resolved})
        # the world account moved exactly by the deposits and withdrawals that reported success
        deposits = {i: r.amount_wei for k, i, r in ok if k in ("deposit", "twin")}
        withdrawals = {i: r.amount_wei for k, i, r in ok if k == "withdraw"}
        funding = 4 * 200_000 + 3 * 100_000
        assert L.balance(s, L.WORLD_ACCOUNT) == -(funding + sum(deposits.values()) - sum(withdrawals.values()))
