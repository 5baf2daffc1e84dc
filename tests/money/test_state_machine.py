"""A hypothesis state machine over random deposits, stakes, jobs, payments, withdrawals, slashes, epochs, claims and
unstakes on the in-process EVM: after every step the audit is balanced (the Vault holds what the ledger owes) and
the ledger equals a replay of its journal. Bounded: a few examples of a few steps (each step is chain transactions)."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from eth_account import Account
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy.orm import Session

from contracts.chain import connect
from market import ledger
from market.db.models import ProviderRecord
from market.ledger import chain as chain_ledger
from market.settlement.audit import audit
from market.settlement.epochs import EpochPoster
from tests.money.conftest import UNBONDING_S, make_money

GWEI = 10**9
CHAIN = None
amounts = st.integers(min_value=1, max_value=5 * 10**8).map(lambda g: g * GWEI)  # up to 0.5 ETH


def shared_chain():
    global CHAIN
    if CHAIN is None:
        CHAIN = connect(None)
    return CHAIN


class MoneyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory(prefix="rm-money-")
        self.m = make_money(shared_chain(), f"sqlite:///{Path(self.tmp.name) / 'm.db'}")
        self.clients = [self.m.new_key(eth=5) for _ in range(2)]
        self.providers = [self.m.new_key(eth=5) for _ in range(2)]
        with Session(self.m.engine) as s, s.begin():
            for i, key in enumerate(self.providers):
                s.add(ProviderRecord(name=f"p{i}", address=Account.from_key(key).address, cpus=1, memory_bytes=0,
                                     price_per_cpu_s_wei=1, price_per_gpu_s_wei=0, registered_at=0.0))
        self.poster = EpochPoster(self.m.engine, self.m.vault, self.m.operator_key)
        self.ids = itertools.count()

    def teardown(self) -> None:
        self.m.engine.dispose()
        self.tmp.cleanup()

    def addr(self, key: str) -> str:
        return Account.from_key(key).address

    # ------------------------------------------------------------------ rules
    @rule(i=st.integers(0, 1), amount=amounts)
    def deposit(self, i: int, amount: int) -> None:
        self.m.vault.deposit(self.clients[i], amount)

    @rule(j=st.integers(0, 1), amount=amounts)
    def stake(self, j: int, amount: int) -> None:
        self.m.vault.stake(self.providers[j], amount)

    @rule(i=st.integers(0, 1), j=st.integers(0, 1), budget=amounts, share=st.integers(0, 100))
    def job(self, i: int, j: int, budget: int, share: int) -> None:
        client = self.addr(self.clients[i])
        n = next(self.ids)
        with Session(self.m.engine) as s, s.begin():
            ledger.open_client(s, client)
            if ledger.balance(s, ledger.client_account(client)) < budget:
                return
            ledger.escrow_job(s, f"escrow:{n}", client, f"j{n}", budget)
            price = budget * share // 100
            if price:
                ledger.open_provider(s, f"p{j}")
                ledger.release_payment(s, f"pay:{n}", f"j{n}", f"p{j}", price)
            else:
                ledger.void_escrow(s, f"void:{n}", f"j{n}")

    @rule(i=st.integers(0, 1), share=st.integers(1, 100))
    def withdraw(self, i: int, share: int) -> None:
        client = self.addr(self.clients[i])
        with Session(self.m.engine) as s, s.begin():
            ledger.open_client(s, client)
            amount = ledger.balance(s, ledger.client_account(client)) * share // 100
            if amount:
                chain_ledger.mark_withdrawable(s, f"withdraw:{next(self.ids)}", client, amount)

    @rule(j=st.integers(0, 1), i=st.integers(0, 1), share=st.integers(1, 100))
    def slash(self, j: int, i: int, share: int) -> None:
        name, n = f"p{j}", next(self.ids)
        with Session(self.m.engine) as s, s.begin():
            ledger.open_provider(s, name)
            ledger.open_client(s, self.addr(self.clients[i]))
            stake = ledger.balance(s, ledger.bond_account(name)) + ledger.balance(s, ledger.unbonding_account(name))
            amount = stake * share // 100
            if not amount:
                return
            need = amount - ledger.balance(s, ledger.bond_account(name))
            if need > 0:
                chain_ledger.reach_unbonding(s, f"reach:{n}", name, need)
            ledger.slash(s, f"s{n}", name, f"j-s{n}", "wrong_result", 0.0, client=self.addr(self.clients[i]),
                         amount_wei=amount, window_s=0.0)
            ledger.finalize_slash(s, f"final:s{n}", f"s{n}", 1.0)

    @rule(j=st.integers(0, 1), share=st.integers(1, 100))
    def unstake(self, j: int, share: int) -> None:
        active = self.m.vault.stake_of(self.addr(self.providers[j])).active
        if active * share // 100:
            self.m.vault.request_unstake(self.providers[j], active * share // 100)

    @rule()
    def mature_and_withdraw_stake(self) -> None:
        self.m.chain.advance_time(UNBONDING_S + 1)
        for key in self.providers:
            if self.m.vault.stake_of(self.addr(key)).unbonding:
                self.m.vault.withdraw_stake(key)

    @rule()
    def epoch(self) -> None:
        result = self.poster.run_epoch()
        assert result.error is None, result
        assert all(v == "sent" for v in result.slashes.values()), result

    @rule(k=st.integers(0, 3))
    def claim(self, k: int) -> None:
        key = (self.clients + self.providers)[k]
        proof = self.poster.proof(self.addr(key))
        if proof is None or proof.cumulative_wei <= self.m.vault.claimed(self.addr(key)):
            return
        self.m.vault.claim(key, proof.cumulative_wei, [bytes.fromhex(p[2:]) for p in proof.proof])

    # ------------------------------------------------------------------ invariants
    @invariant()
    def balanced_and_replayable(self) -> None:
        self.m.watcher.poll_once()
        report = audit(self.m.engine, self.m.vault)
        assert report.balanced, report
        with Session(self.m.engine) as s:
            assert ledger.check_invariants(s) == []
        t = self.m.vault.totals()
        assert t.balance == t.liabilities


MoneyMachine.TestCase.settings = settings(max_examples=4, stateful_step_count=12, deadline=None,
                                          suppress_health_check=list(HealthCheck),
                                          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # no shrinking: slow
TestMoney = MoneyMachine.TestCase
