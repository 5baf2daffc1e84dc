"""A hypothesis state machine over the Vault on the in-process EVM: random deposits, stakes, unstake requests,
withdrawals, time, slashes, epoch roots and claims, checked against a Python model of the books. After every
step the Vault's balance equals its liabilities, every claim paid exactly the difference, and nothing
unmatured left the Vault. Plus: a contract that re-enters ``claim`` from its receive hook gets nothing."""

from __future__ import annotations

import os

from eth_account import Account
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from contracts.bindings import Artifact, ContractHandle, send_transaction
from contracts.build import compile_sources
from contracts.chain import connect
from contracts.errors import ContractReverted
from contracts.vault import ClaimTree, VaultContract

UNBONDING_S = 100
N_ACCOUNTS = 4
GWEI = 10**9

ATTACKER_SOL = """
// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;
interface IVault { function claim(uint256 cumulativeWei, bytes32[] calldata proof) external; }
contract ReentrantClaimer {
    IVault public vault; uint256 public amount; bytes32[] public proof; uint256 public reentered;
    constructor(IVault v) { vault = v; }
    function attack(uint256 a, bytes32[] calldata p) external { amount = a; proof = p; vault.claim(a, p); }
    receive() external payable { reentered += 1; vault.claim(amount, proof); }
}
"""


class VaultMachine(RuleBasedStateMachine):
    """Model: per account active/unbonding stake, matured time, cumulative claimable and claimed."""

    chain = None  # one in-process chain for all examples (each example deploys a fresh Vault)

    @initialize()
    def deploy(self) -> None:
        if VaultMachine.chain is None:
            VaultMachine.chain = connect(None)
        self.c = VaultMachine.chain
        self.owner = self.c.dev_keys[0]
        self.operator = self.c.dev_keys[1]
        self.keys = list(self.c.dev_keys[2:2 + N_ACCOUNTS])
        self.addrs = [Account.from_key(k).address for k in self.keys]
        self.vault = VaultContract.deploy(self.c, self.owner, unbonding_period_s=UNBONDING_S)
        self.vault.set_operator(self.owner, Account.from_key(self.operator).address)
        self.active = [0] * N_ACCOUNTS
        self.unbonding = [0] * N_ACCOUNTS
        self.matures = [0] * N_ACCOUNTS
        self.cumulative = [0] * N_ACCOUNTS
        self.claimed = [0] * N_ACCOUNTS
        self.funded = 0  # deposits + unburned slashes
        self.epoch = 0
        self.tree: ClaimTree | None = None

    def _now(self) -> int:
        return self.c.timestamp()

    def _slashable(self, i: int, at: int) -> int:
        return self.active[i] + (self.unbonding[i] if at < self.matures[i] else 0)

    @rule(i=st.integers(0, N_ACCOUNTS - 1), gwei=st.integers(1, 1000))
    def deposit(self, i: int, gwei: int) -> None:
        self.vault.deposit(self.keys[i], gwei * GWEI)
        self.funded += gwei * GWEI

    @rule(i=st.integers(0, N_ACCOUNTS - 1), gwei=st.integers(1, 1000))
    def stake(self, i: int, gwei: int) -> None:
        self.vault.stake(self.keys[i], gwei * GWEI)
        self.active[i] += gwei * GWEI

    @rule(i=st.integers(0, N_ACCOUNTS - 1), gwei=st.integers(1, 1000))
    def request_unstake(self, i: int, gwei: int) -> None:
        amount = gwei * GWEI
        try:
            receipt = self.vault.request_unstake(self.keys[i], amount)
        except ContractReverted as exc:
            assert exc.error_name == "InsufficientStake" and amount > self.active[i]
            return
        self.active[i] -= amount
        self.unbonding[i] += amount
        self.matures[i] = self.vault.events(receipt, "UnstakeRequested")[0].args.maturesAt

    @rule(i=st.integers(0, N_ACCOUNTS - 1))
    def withdraw_stake(self, i: int) -> None:
        try:
            receipt = self.vault.withdraw_stake(self.keys[i])
        except ContractReverted as exc:
            if exc.error_name == "NothingUnbonding":
                assert self.unbonding[i] == 0
            else:
                assert exc.error_name == "UnbondingNotMatured", exc
                _, matures_at, now = exc.error_args
                assert matures_at == self.matures[i] and now < matures_at and self.unbonding[i] > 0
            return
        (event,) = self.vault.events(receipt, "StakeWithdrawn")
        assert event.args.amount == self.unbonding[i]
        self.unbonding[i] = 0
        self.matures[i] = 0

    @rule(seconds=st.sampled_from([10, UNBONDING_S // 2, UNBONDING_S + 1]))
    def advance(self, seconds: int) -> None:
        self.c.advance_time(seconds)

    @rule(i=st.integers(0, N_ACCOUNTS - 1), gwei=st.integers(1, 500), burn_pct=st.integers(0, 100))
    def slash(self, i: int, gwei: int, burn_pct: int) -> None:
        amount = gwei * GWEI
        burn = amount * burn_pct // 100
        try:
            receipt = self.vault.slash(self.operator, self.addrs[i], amount, burn, os.urandom(32))
        except ContractReverted as exc:
            assert exc.error_name == "InsufficientStake", exc
            available = exc.error_args[1]
            assert available < amount and available in (self.active[i], self.active[i] + self.unbonding[i])
            return
        block_time = self.c.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
        assert amount <= self._slashable(i, block_time)
        from_active = min(amount, self.active[i])
        self.active[i] -= from_active
        self.unbonding[i] -= amount - from_active
        self.funded += amount - burn

    @rule(data=st.data())
    def post_root(self, data) -> None:
        """Raise some cumulative amounts within what is funded, post the next epoch."""
        budget = self.funded - sum(self.cumulative)
        for i in range(N_ACCOUNTS):
            if budget <= 0:
                break
            extra = data.draw(st.integers(0, min(budget, 500 * GWEI)))
            self.cumulative[i] += extra
            budget -= extra
        self.tree = ClaimTree(dict(zip(self.addrs, self.cumulative)))
        self.epoch += 1
        self.vault.post_tree(self.operator, self.epoch, self.tree)

    @rule(i=st.integers(0, N_ACCOUNTS - 1))
    def claim(self, i: int) -> None:
        if self.tree is None:
            return
        owed = self.cumulative[i] - self.claimed[i]
        try:
            receipt = self.vault.claim(self.keys[i], self.cumulative[i], self.tree.proof(self.addrs[i]))
        except ContractReverted as exc:
            assert exc.error_name == "NothingToClaim" and owed == 0
            return
        (event,) = self.vault.events(receipt, "Claimed")
        assert event.args.amount == owed > 0
        self.claimed[i] = self.cumulative[i]

    @rule(i=st.integers(0, N_ACCOUNTS - 1), j=st.integers(0, N_ACCOUNTS - 1))
    def claim_with_someone_elses_proof(self, i: int, j: int) -> None:
        if self.tree is None or self.cumulative[i] == self.cumulative[j]:
            return
        try:
            self.vault.claim(self.keys[i], self.cumulative[j], self.tree.proof(self.addrs[j]))
        except ContractReverted as exc:
            assert exc.error_name == "InvalidProof"
        else:
            raise AssertionError("a proof for another address paid")

    @invariant()
    def books_match(self) -> None:
        if not hasattr(self, "vault"):
            return
        t = self.vault.totals()
        assert t.balance == t.liabilities
        assert t.staked == sum(self.active) + sum(self.unbonding)
        assert t.claimed == sum(self.claimed) <= t.epoch_total_cumulative
        assert t.deposited + t.slashed_to_pool == self.funded

    def teardown(self) -> None:
        if hasattr(self, "vault"):
            for i, a in enumerate(self.addrs):
                info = self.vault.stake_of(a)
                assert (info.active, info.unbonding) == (self.active[i], self.unbonding[i])


VaultMachine.TestCase.settings = settings(max_examples=5, stateful_step_count=20, deadline=None,
                                          suppress_health_check=list(HealthCheck))
test_vault_state_machine = VaultMachine.TestCase


def test_reentrant_claim_gets_nothing() -> None:
    c = connect(None)
    owner, operator = c.dev_keys[0], c.dev_keys[1]
    vault = VaultContract.deploy(c, owner)
    vault.set_operator(owner, Account.from_key(operator).address)
    vault.deposit(c.dev_keys[2], 10**18)
    art = compile_sources({"ReentrantClaimer.sol": ATTACKER_SOL})["ReentrantClaimer"]
    factory = c.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    receipt = send_transaction(c, c.account(owner), {"data": factory.constructor(vault.address).data_in_transaction,
                                                     "gas": 1_500_000})
    attacker = ContractHandle(c, Artifact("ReentrantClaimer", art["abi"], art["bytecode"]),
                              receipt["contractAddress"])
    tree = ClaimTree({attacker.address: 10**17, Account.from_key(c.dev_keys[2]).address: 10**17})
    vault.post_tree(operator, 1, tree)
    try:
        attacker.transact(owner, "attack", 10**17, tree.proof(attacker.address), gas=1_000_000)
    except ContractReverted:
        pass  # the inner claim reverts ReentrancyGuardReentrantCall, so the payment and the whole claim fail
    else:
        raise AssertionError("the re-entrant claim went through")
    assert vault.claimed(attacker.address) == 0 and c.w3.eth.get_balance(attacker.address) == 0
    t = vault.totals()
    assert t.balance == t.liabilities == 10**18
