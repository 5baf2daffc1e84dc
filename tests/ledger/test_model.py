"""Property test: random operation sequences against a plain in-memory model of the ledger.

After every step the database's balances equal the model's; an illegal operation raises the
same error class as the model predicts and changes nothing (the transaction is committed even
after the error, so a write made before the check would show). Retries with the same id
return the same result and change nothing; the same id with other inputs is a conflict.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy.orm import Session

from market import ledger as L
from market.ledger.errors import (IdempotencyConflict, InsufficientFunds, InvalidAmount, LedgerError,
                                  PendingAlreadyResolved, PendingExists, PendingNotFound, PriceExceedsEscrow,
                                  SlashAlreadyResolved, SlashExceedsBond, SlashNotFound, SlashWindowClosed,
                                  SlashWindowOpen, UnbondingNotMatured, UnknownAccount)
from market.core.slashing import protocol_fee_wei, rule_for, slash_amount_wei, split_slash

WINDOW_S, PERIOD_S = 100.0, 1_000.0
_runs = itertools.count()


@dataclass
class Model:
    """The ledger as plain dicts. ``bal`` holds this run's accounts and the system accounts' deltas."""

    bal: dict[str, int]
    pendings: dict[str, dict] = field(default_factory=dict)
    unbonds: dict[str, dict] = field(default_factory=dict)
    slashes: dict[str, dict] = field(default_factory=dict)
    now: float = 0.0

    def moves(self, moves: list[tuple[str, str, int]]) -> None:
        """Apply (debit, credit, amount) moves in order on a copy; commit only if all pass."""
        bal = dict(self.bal)
        for debit, credit, amount in moves:
            if amount == 0:
                continue
            for acct in (debit, credit):
                if acct not in bal:
                    raise UnknownAccount(acct)
            if debit != L.WORLD_ACCOUNT and bal[debit] < amount:
                raise InsufficientFunds(debit, amount, bal[debit])
            bal[debit] -= amount
            bal[credit] += amount
        self.bal = bal

    def open_pending(self, kind: str, job: str, party: str | None) -> dict | None:
        open_ = [pid for pid, p in self.pendings.items() if p["kind"] == kind and p["job"] == job
                 and (party is None or p["party"] == party) and p["status"] == "pending"]
        return self.pendings[min(open_)] if open_ else None  # the ledger takes the lowest id

    def not_open(self, kind: str, job: str, party: str | None) -> LedgerError:
        if any(p["kind"] == kind and p["job"] == job and (party is None or p["party"] == party)
               for p in self.pendings.values()):
            return PendingAlreadyResolved("", "")
        return PendingNotFound("")


def make_machine(engine):
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.prefix = f"r{next(_runs)}-"
            self.n = 0
            self.done: list[tuple] = []  # (fn, args, kwargs, result) of successful operations
            self.clients = [self.prefix + c for c in ("a", "b")]
            self.providers = [self.prefix + p for p in ("p", "q")]
            with Session(engine) as s, s.begin():
                for c in self.clients:
                    L.open_client(s, c)
                    L.deposit(s, f"{self.prefix}fund-{c}", L.client_account(c), 20_000)
                for p in self.providers:
                    L.open_provider(s, p)
                    L.deposit(s, f"{self.prefix}fund-{p}", L.provider_account(p), 10_000)
                    L.bond(s, f"{self.prefix}bond-{p}", p, 8_000)
                self.sys0 = {a: L.balance(s, a) for a in L.SYSTEM_ACCOUNTS}
                bal = {a: L.balance(s, a) for a in self.tracked_initial()}
            self.model = Model({**bal, **{a: 0 for a in L.SYSTEM_ACCOUNTS}})

        def tracked_initial(self) -> list[str]:
            out = [L.client_account(c) for c in self.clients]
            for p in self.providers:
                out += [f(p) for f in (L.provider_account, L.bond_account, L.collateral_account,
                                       L.unbonding_account, L.slashing_account)]
            return out

        def next_id(self) -> str:
            self.n += 1
            return f"{self.prefix}op{self.n}"

        def job(self, k: int) -> str:
            return f"{self.prefix}j{k}"

        def run(self, expect_model, fn, *args, **kwargs):
            """Run ``fn`` in the database (committing even on error) and ``expect_model`` on a model copy."""
            import copy
            trial = copy.deepcopy(self.model)
            expected_exc = None
            try:
                expected = expect_model(trial)
            except LedgerError as exc:
                expected_exc = type(exc)
            got_exc, result = None, None
            with Session(engine) as s, s.begin():
                try:
                    result = fn(s, *args, **kwargs)
                except LedgerError as exc:
                    got_exc = type(exc)
            assert got_exc == expected_exc, (fn.__name__, args, kwargs, got_exc, expected_exc)
            if expected_exc is None:
                self.model = trial
                self.done.append((fn, args, kwargs, result))
                if expected is not None:
                    assert expected(result), (fn.__name__, result)
            return result

        # ------------------------------------------------------------------ rules

        @rule(c=st.integers(0, 2), amount=st.integers(-1, 5_000))
        def deposit(self, c, amount):
            acct = L.client_account(self.prefix + "abz"[c])  # "z" was never opened
            def model(m):
                if amount <= 0:
                    raise InvalidAmount("", amount)
                m.moves([(L.WORLD_ACCOUNT, acct, amount)])
            self.run(model, L.deposit, self.next_id(), acct, amount)

        @rule(c=st.integers(0, 1), amount=st.integers(1, 6_000))
        def withdraw(self, c, amount):
            acct = L.client_account(self.clients[c])
            self.run(lambda m: m.moves([(acct, L.WORLD_ACCOUNT, amount)]), L.withdraw, self.next_id(), acct, amount)

        @rule(legs=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 3_000)), min_size=1, max_size=3))
        def batch(self, legs):
            accts = [L.client_account(c) for c in self.clients] + [L.provider_account(p) for p in self.providers]
            specs = [L.TransferSpec(self.next_id(), accts[a], accts[b], amt) for a, b, amt in legs if a != b]
            if specs:
                self.run(lambda m: m.moves([(x.debit_account_id, x.credit_account_id, x.amount_wei) for x in specs]),
                         L.post_batch, specs)

        @rule(c=st.integers(0, 1), k=st.integers(0, 3), amount=st.integers(1, 3_000),
              ttl=st.sampled_from([None, None, 1.0, WINDOW_S]))
        def escrow(self, c, k, amount, ttl):
            client, job, op_id = self.clients[c], self.job(k), self.next_id()
            expires = None if ttl is None else self.model.now + ttl
            def model(m):
                if L.client_account(client) not in m.bal:
                    raise UnknownAccount("")
                if m.open_pending("escrow", job, client):
                    raise PendingExists("", "", "")
                m.bal.setdefault(L.escrow_account(job), 0)
                m.moves([(L.client_account(client), L.escrow_account(job), amount)])
                m.pendings[op_id] = dict(kind="escrow", job=job, party=client, debit=L.client_account(client),
                                         credit=L.escrow_account(job), remaining=amount, status="pending",
                                         expires=expires)
            self.run(model, L.escrow_job, op_id, client, job, amount, expires_at_s=expires)

        @rule()
        def expire(self):
            def model(m):
                due = sorted(pid for pid, p in m.pendings.items()
                             if p["status"] == "pending" and p.get("expires") is not None and p["expires"] <= m.now)
                for pid in due:
                    p = m.pendings[pid]
                    m.moves([(p["credit"], p["debit"], p["remaining"])])
                    p.update(remaining=0, status="expired")
                return lambda res: sorted(r.pending_id for r in res if r.pending_id.startswith(self.prefix)) == due
            self.run(model, L.expire_pending, self.model.now, limit=100_000)
            self.done.pop()  # not retryable with the same meaning (it is time-driven)

        @rule(k=st.integers(0, 3), p=st.integers(0, 2), price=st.integers(1, 3_000), fee_bps=st.sampled_from([0, 100, 2_500]))
        def release(self, k, p, price, fee_bps):
            job, provider = self.job(k), self.prefix + "pqz"[p]
            def model(m):
                pend = m.open_pending("escrow", job, None)
                if pend is None:
                    raise m.not_open("escrow", job, None)
                if L.provider_account(provider) not in m.bal:
                    raise UnknownAccount("")
                if price > pend["remaining"]:
                    raise PriceExceedsEscrow("", 0, 0)
                fee = protocol_fee_wei(price, fee_bps)
                m.moves([(pend["credit"], L.provider_account(provider), price - fee),
                         (pend["credit"], L.PROTOCOL_FEE_ACCOUNT, fee), (pend["credit"], pend["debit"], pend["remaining"] - price)])
                pend.update(remaining=0, status="posted")
            self.run(model, L.release_payment, self.next_id(), job, provider, price, fee_bps=fee_bps)

        @rule(k=st.integers(0, 3))
        def void(self, k):
            job = self.job(k)
            def model(m):
                pend = m.open_pending("escrow", job, None)
                if pend is None:
                    raise m.not_open("escrow", job, None)
                m.moves([(pend["credit"], pend["debit"], pend["remaining"])])
                pend.update(remaining=0, status="voided")
            self.run(model, L.void_escrow, self.next_id(), job)

        @rule(p=st.integers(0, 1), amount=st.integers(1, 4_000))
        def fund_and_bond(self, p, amount):
            provider = self.providers[p]
            self.run(lambda m: m.moves([(L.WORLD_ACCOUNT, L.provider_account(provider), amount)]),
                     L.deposit, self.next_id(), L.provider_account(provider), amount)
            self.run(lambda m: m.moves([(L.provider_account(provider), L.bond_account(provider), amount)]),
                     L.bond, self.next_id(), provider, amount)

        @rule(p=st.integers(0, 1), k=st.integers(0, 3), amount=st.integers(1, 3_000))
        def lock(self, p, k, amount):
            provider, job, op_id = self.providers[p], self.job(k), self.next_id()
            def model(m):
                if m.open_pending("collateral", job, provider):
                    raise PendingExists("", "", "")
                m.moves([(L.bond_account(provider), L.collateral_account(provider), amount)])
                m.pendings[op_id] = dict(kind="collateral", job=job, party=provider, debit=L.bond_account(provider),
                                         credit=L.collateral_account(provider), remaining=amount, status="pending")
            self.run(model, L.lock_collateral, op_id, provider, job, amount)

        @rule(p=st.integers(0, 1), k=st.integers(0, 3))
        def unlock(self, p, k):
            provider, job = self.providers[p], self.job(k)
            def model(m):
                pend = m.open_pending("collateral", job, provider)
                if pend is None:
                    raise m.not_open("collateral", job, provider)
                m.moves([(pend["credit"], pend["debit"], pend["remaining"])])
                pend.update(remaining=0, status="posted")
            self.run(model, L.unlock_collateral, self.next_id(), provider, job)

        @rule(p=st.integers(0, 1), amount=st.integers(1, 3_000))
        def request_unbond(self, p, amount):
            provider, op_id = self.providers[p], self.next_id()
            def model(m):
                m.moves([(L.bond_account(provider), L.unbonding_account(provider), amount)])
                m.unbonds[op_id] = dict(provider=provider, amount=amount, matures=m.now + PERIOD_S, status="pending")
            self.run(model, L.request_unbond, op_id, provider, amount, self.model.now, period_s=PERIOD_S)

        @rule(p=st.integers(0, 1))
        def complete_unbond(self, p):
            provider = self.providers[p]
            def model(m):
                ready = [u for u in m.unbonds.values() if u["provider"] == provider and u["status"] == "pending"
                         and u["matures"] <= m.now]
                if not ready:
                    raise UnbondingNotMatured(provider, None, m.now)
                m.moves([(L.unbonding_account(provider), L.provider_account(provider), sum(u["amount"] for u in ready))])
                for u in ready:
                    u["status"] = "completed"
            self.run(model, L.complete_unbond, self.next_id(), provider, self.model.now)

        @rule(p=st.integers(0, 1), k=st.integers(0, 3), reason=st.sampled_from(["missed_deadline", "wrong_result"]),
              rescue=st.booleans(), compensate=st.booleans(), amount=st.one_of(st.none(), st.integers(1, 6_000)))
        def slash(self, p, k, reason, rescue, compensate, amount):
            provider, job, op_id = self.providers[p], self.job(k), self.next_id()
            rescuer = self.providers[1 - p] if rescue else None
            client = self.clients[0] if compensate else None
            def model(m):
                lock = m.open_pending("collateral", job, provider)
                if amount is None and lock is None:
                    raise PendingNotFound("")
                locked = lock["remaining"] if lock else 0
                rule_ = rule_for(reason)
                amt = amount if amount is not None else slash_amount_wei(rule_, locked)
                if amt <= 0:
                    raise InvalidAmount("", amt)
                free = max(m.bal[L.bond_account(provider)], 0)
                # unbonding stake not matured yet stays slashable (issue 14 finding 5), newest request first
                unbonding = sorted(((u["matures"], uid, u) for uid, u in m.unbonds.items()
                                    if u["provider"] == provider and u["status"] == "pending" and u["matures"] > m.now),
                                   key=lambda t: (t[0], t[1]), reverse=True)
                if amt > locked + free + sum(u["amount"] for _, _, u in unbonding):
                    raise SlashExceedsBond(provider, amt, 0)
                from_coll = min(amt, locked)
                from_free = min(amt - from_coll, free)
                rest = amt - from_coll - from_free
                m.moves([(L.collateral_account(provider), L.slashing_account(provider), from_coll),
                         (L.bond_account(provider), L.slashing_account(provider), from_free),
                         (L.unbonding_account(provider), L.slashing_account(provider), rest)])
                for _, _, u in unbonding:
                    if rest <= 0:
                        break
                    part = min(rest, u["amount"])
                    if part == u["amount"]:
                        u["status"] = "completed"
                    else:
                        u["amount"] -= part
                    rest -= part
                if lock is not None and from_coll:
                    lock["remaining"] -= from_coll
                    lock["status"] = "pending" if lock["remaining"] else "posted"
                split = split_slash(rule_, amt, has_rescuer=rescuer is not None, has_client=client is not None)
                m.slashes[op_id] = dict(provider=provider, amount=amt, split=split, rescuer=rescuer, client=client,
                                        final_after=m.now + WINDOW_S, status="pending")
            self.run(model, L.slash, op_id, provider, job, reason, self.model.now, rescuer=rescuer, client=client,
                     amount_wei=amount, window_s=WINDOW_S)

        def _slash_target(self, i: int) -> str:
            ids = sorted(self.model.slashes)
            return ids[i % len(ids)] if ids else f"{self.prefix}none"

        @rule(i=st.integers(0, 5))
        def cancel_slash(self, i):
            sid = self._slash_target(i)
            def model(m):
                sl = m.slashes.get(sid)
                if sl is None:
                    raise SlashNotFound(sid)
                if sl["status"] != "pending":
                    raise SlashAlreadyResolved(sid, "")
                if m.now >= sl["final_after"]:
                    raise SlashWindowClosed(sid, 0, 0)
                m.moves([(L.slashing_account(sl["provider"]), L.bond_account(sl["provider"]), sl["amount"])])
                sl["status"] = "cancelled"
            self.run(model, L.cancel_slash, self.next_id(), sid, self.model.now)

        @rule(i=st.integers(0, 5))
        def finalize_slash(self, i):
            sid = self._slash_target(i)
            def model(m):
                sl = m.slashes.get(sid)
                if sl is None:
                    raise SlashNotFound(sid)
                if sl["status"] != "pending":
                    raise SlashAlreadyResolved(sid, "")
                if m.now < sl["final_after"]:
                    raise SlashWindowOpen(sid, 0, 0)
                hold, split = L.slashing_account(sl["provider"]), sl["split"]
                m.moves([(hold, L.BURN_ACCOUNT, split.burn_wei),
                         (hold, L.provider_account(sl["rescuer"]) if sl["rescuer"] else hold, split.rescuer_wei),
                         (hold, L.client_account(sl["client"]) if sl["client"] else hold, split.client_wei)])
                sl["status"] = "final"
            self.run(model, L.finalize_slash, self.next_id(), sid, self.model.now)

        @rule(dt=st.sampled_from([1.0, WINDOW_S, PERIOD_S]))
        def advance(self, dt):
            self.model.now += dt

        @rule(i=st.integers(0, 1_000))
        def retry(self, i):
            if not self.done:
                return
            fn, args, kwargs, first = self.done[i % len(self.done)]
            if fn is L.post_batch:  # a retried batch replays every transfer
                first = L.BatchResult(applied=0, replayed=len(args[0]))
            self.run(lambda m: (lambda r: r == first), fn, *args, **kwargs)
            self.done.pop()  # the retry itself is not a new operation

        @rule(i=st.integers(0, 1_000))
        def conflict(self, i):
            deposits = [d for d in self.done if d[0] is L.deposit]
            if deposits:
                _, (op_id, acct, amount), _, _ = deposits[i % len(deposits)]
                def model(m):
                    raise IdempotencyConflict(op_id, "", "")
                self.run(model, L.deposit, op_id, acct, amount + 1)

        # ------------------------------------------------------------------ invariants

        @invariant()
        def database_equals_model(self):
            with Session(engine) as s:
                db = L.balances(s)
            for acct, expected in self.model.bal.items():
                base = self.sys0.get(acct, 0)
                assert db.get(acct, 0) - base == expected, (acct, db.get(acct), base, expected)

        def teardown(self):
            with Session(engine) as s:
                assert L.check_invariants(s) == []

    return LedgerMachine


@pytest.mark.postgres
def test_ledger_matches_model_on_postgres(pg_engine):
    run_state_machine_as_test(make_machine(pg_engine), settings=settings(
        max_examples=20, stateful_step_count=50, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


def test_ledger_matches_model_on_sqlite(sqlite_engine):
    run_state_machine_as_test(make_machine(sqlite_engine), settings=settings(
        max_examples=10, stateful_step_count=50, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
