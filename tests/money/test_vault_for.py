"""``Vault.depositFor`` / ``stakeFor`` (the development faucet's transactions) on the in-process EVM: the same
``Deposited`` / ``Staked`` events and books as ``deposit`` / ``stake`` by the beneficiary itself; custom errors for
a zero address or amount; stopped by the pause; only the beneficiary can take the stake out."""

from __future__ import annotations

import pytest
from eth_account import Account

from contracts.chain import connect
from contracts.errors import ContractReverted
from contracts.vault import VaultContract

ETH = 10**18


def _revert(name: str, fn, *args, **kw) -> None:
    with pytest.raises(ContractReverted) as info:
        fn(*args, **kw)
    assert info.value.error_name == name


def test_deposit_for_and_stake_for() -> None:
    chain = connect(None)
    owner, payer, beneficiary = chain.dev_keys[0], chain.dev_keys[5], chain.dev_keys[6]
    vault = VaultContract.deploy(chain, owner, unbonding_period_s=1)
    who = Account.from_key(beneficiary).address
    (dep,) = vault.events(vault.deposit_for(payer, who, ETH), "Deposited")
    assert dep.args.account == who and dep.args.amount == ETH
    (st,) = vault.events(vault.stake_for(payer, who, ETH // 2), "Staked")
    assert st.args.provider == who and st.args.amount == ETH // 2
    assert vault.stake_of(who).active == ETH // 2 and vault.stake_of(Account.from_key(payer).address).active == 0
    totals = vault.totals()
    assert totals.deposited == ETH and totals.staked == ETH // 2 and totals.balance == totals.liabilities
    _revert("ZeroAmount", vault.deposit_for, payer, who, 0)
    _revert("ZeroAddress", vault.stake_for, payer, "0x" + "00" * 20, 1)
    _revert("InsufficientStake", vault.request_unstake, payer, 1)  # the payer owns none of it
    vault.pause(owner)
    _revert("EnforcedPause", vault.deposit_for, payer, who, 1)
    _revert("EnforcedPause", vault.stake_for, payer, who, 1)
