"""Vault behaviour on the in-process EVM and on anvil: deposits, stake and unbonding, epoch roots, claims,
slashes, pause; after every test the Vault's balance equals its liabilities."""

from __future__ import annotations

import os

import pytest

from contracts.bindings import send_transaction
from contracts.errors import ContractReverted
from contracts.merkle import build_tree
from contracts.vault import DEFAULT_BURN_SINK, ClaimTree, VaultContract
from tests.contracts.conftest import ETH, UNBONDING_S, Market, address
from tests.settlement.conftest import CIRCUIT_ID
from tests.settlement.helpers import proof_leaf, signed_leaf


def expect_revert(name: str, fn, *args, **kw) -> ContractReverted:
    with pytest.raises(ContractReverted) as info:
        fn(*args, **kw)
    assert info.value.error_name == name, info.value
    return info.value


def paid(m: Market, receipt) -> int:
    """The gas fee a receipt cost its sender, in wei."""
    return receipt["gasUsed"] * receipt["effectiveGasPrice"]


def balance(m: Market, key: str) -> int:
    return m.chain.w3.eth.get_balance(address(key))


def next_epoch(m: Market) -> int:
    return m.vault.current_epoch() + 1


@pytest.fixture(autouse=True)
def solvent(market: Market):
    """After every test: balance == liabilities (nothing forced in), claims within the posted total."""
    yield
    t = market.vault.totals()
    assert t.balance == t.liabilities == t.deposited + t.slashed_to_pool - t.claimed + t.staked
    assert t.claimed <= t.epoch_total_cumulative <= t.deposited + t.slashed_to_pool


def test_deposit_epoch_root_claim_round_trip(market: Market) -> None:
    m = market
    client, provider = m.new_key(), m.new_key()
    start = m.chain.block_number()
    receipt = m.vault.deposit(client, 3 * ETH)
    (event,) = m.vault.events(receipt, "Deposited")
    assert event.args.account == address(client) and event.args.amount == 3 * ETH
    assert [e.args.amount for e in m.vault.logs("Deposited", start + 1)] == [3 * ETH]
    # the job paid the provider 1 ETH off-chain; the client withdraws 1.5 ETH of its unused 2 ETH
    earnings, unused = 1 * ETH, 3 * ETH // 2
    tree = ClaimTree({address(provider): earnings, address(client): unused})
    epoch = next_epoch(m)
    receipt = m.vault.post_tree(m.operator_key, epoch, tree)
    (posted,) = m.vault.events(receipt, "EpochRootPosted")
    assert posted.args.root == tree.root and posted.args.totalCumulativeWei == earnings + unused
    assert m.vault.current_root() == tree.root and m.vault.current_epoch() == epoch
    before = balance(m, provider)
    receipt = m.vault.claim(provider, earnings, tree.proof(address(provider)))
    assert balance(m, provider) == before + earnings - paid(m, receipt)
    (claimed,) = m.vault.events(receipt, "Claimed")
    assert (claimed.args.account, claimed.args.amount, claimed.args.cumulativeWei) == (address(provider), earnings,
                                                                                       earnings)
    # a second claim of the same cumulative amount pays nothing
    err = expect_revert("NothingToClaim", m.vault.claim, provider, earnings, tree.proof(address(provider)))
    assert err.error_args == (address(provider), earnings, earnings)
    assert m.vault.claimed(address(provider)) == earnings
    # a proof for another address is refused (the leaf is hashed from the caller's own address)
    expect_revert("InvalidProof", m.vault.claim, client, earnings, tree.proof(address(provider)))
    expect_revert("InvalidProof", m.vault.claim, client, unused + 1, tree.proof(address(client)))
    before = balance(m, client)
    receipt = m.vault.claim(client, unused, tree.proof(address(client)))
    assert balance(m, client) == before + unused - paid(m, receipt)
    # next epoch: the provider earned 0.25 ETH more; the claim pays only the difference
    tree2 = ClaimTree({address(provider): earnings + ETH // 4, address(client): unused})
    m.vault.post_tree(m.operator_key, epoch + 1, tree2)
    receipt = m.vault.claim(provider, earnings + ETH // 4, tree2.proof(address(provider)))
    (claimed,) = m.vault.events(receipt, "Claimed")
    assert claimed.args.amount == ETH // 4 and claimed.args.epoch == epoch + 1
    # an old epoch's proof no longer matches the latest root
    expect_revert("InvalidProof", m.vault.claim, provider, earnings, tree.proof(address(provider)))


def test_epoch_roots_are_consecutive_monotonic_and_backed(market: Market) -> None:
    m = market
    client = m.new_key()
    m.vault.deposit(client, ETH)
    t = m.vault.totals()
    funded = t.deposited + t.slashed_to_pool
    epoch = next_epoch(m)
    err = expect_revert("Undercollateralized", m.vault.post_epoch_root, m.operator_key, epoch, os.urandom(32),
                        funded + 1)
    assert err.error_args == (funded + 1, funded)
    expect_revert("BadEpoch", m.vault.post_epoch_root, m.operator_key, epoch + 1, os.urandom(32), 0)
    expect_revert("EmptyRoot", m.vault.post_epoch_root, m.operator_key, epoch, bytes(32), 0)
    if t.epoch_total_cumulative > 0:
        expect_revert("CumulativeDecreased", m.vault.post_epoch_root, m.operator_key, epoch, os.urandom(32),
                      t.epoch_total_cumulative - 1)
    expect_revert("NotOperator", m.vault.post_epoch_root, client, epoch, os.urandom(32), 0)
    # stake never backs claims: staking more does not raise what roots may promise
    provider = m.new_key()
    m.vault.stake(provider, 5 * ETH)
    expect_revert("Undercollateralized", m.vault.post_epoch_root, m.operator_key, epoch, os.urandom(32), funded + 1)
    expect_revert("ZeroAmount", m.vault.deposit, client, 0)


def test_unstake_before_maturity_is_refused(market: Market) -> None:
    m = market
    provider = m.new_key()
    receipt = m.vault.stake(provider, 2 * ETH)
    (event,) = m.vault.events(receipt, "Staked")
    assert event.args.provider == address(provider) and event.args.amount == 2 * ETH
    expect_revert("InsufficientStake", m.vault.request_unstake, provider, 3 * ETH)
    expect_revert("NothingUnbonding", m.vault.withdraw_stake, provider)
    receipt = m.vault.request_unstake(provider, ETH)
    (req,) = m.vault.events(receipt, "UnstakeRequested")
    info = m.vault.stake_of(address(provider))
    assert info.active == ETH and info.unbonding == ETH and info.matures_at == req.args.maturesAt
    assert info.matures_at >= m.chain.timestamp() + UNBONDING_S - 1
    err = expect_revert("UnbondingNotMatured", m.vault.withdraw_stake, provider)
    assert err.error_args[1] == info.matures_at
    m.chain.advance_time(UNBONDING_S // 2)
    expect_revert("UnbondingNotMatured", m.vault.withdraw_stake, provider)
    m.chain.advance_time(UNBONDING_S)
    before = balance(m, provider)
    receipt = m.vault.withdraw_stake(provider)
    assert balance(m, provider) == before + ETH - paid(m, receipt)
    (out,) = m.vault.events(receipt, "StakeWithdrawn")
    assert out.args.amount == ETH
    assert m.vault.stake_of(address(provider)) == type(info)(ETH, 0, 0)


def test_slash_during_unbonding_reaches_the_stake(market: Market) -> None:
    m = market
    provider = m.new_key()
    m.vault.stake(provider, 2 * ETH)
    m.vault.request_unstake(provider, 2 * ETH)  # tries to escape right after being paid
    assert m.vault.slashable_stake(address(provider)) == 2 * ETH
    sink_before = m.chain.w3.eth.get_balance(DEFAULT_BURN_SINK)
    pool_before = m.vault.totals().slashed_to_pool
    ref = os.urandom(32)
    receipt = m.vault.slash(m.operator_key, address(provider), ETH, ETH // 4, ref)
    (event,) = m.vault.events(receipt, "Slashed")
    assert (event.args.amount, event.args.burned, event.args.toPool, event.args.fromUnbonding) == (
        ETH, ETH // 4, 3 * ETH // 4, ETH)
    assert m.chain.w3.eth.get_balance(DEFAULT_BURN_SINK) == sink_before + ETH // 4
    assert m.vault.totals().slashed_to_pool == pool_before + 3 * ETH // 4
    expect_revert("SlashRefUsed", m.vault.slash, m.operator_key, address(provider), 1, 0, ref)
    expect_revert("InsufficientStake", m.vault.slash, m.operator_key, address(provider), ETH + 1, 0, os.urandom(32))
    expect_revert("BurnExceedsAmount", m.vault.slash, m.operator_key, address(provider), 1, 2, os.urandom(32))
    expect_revert("NotOperator", m.vault.slash, provider, address(provider), 1, 0, os.urandom(32))
    m.chain.advance_time(UNBONDING_S + 1)
    assert m.vault.slashable_stake(address(provider)) == 0  # matured: out of reach
    expect_revert("InsufficientStake", m.vault.slash, m.operator_key, address(provider), 1, 0, os.urandom(32))
    before = balance(m, provider)
    receipt = m.vault.withdraw_stake(provider)
    assert balance(m, provider) == before + ETH - paid(m, receipt)


def test_slash_of_a_challenged_bad_proof_leaf(market: Market) -> None:
    m = market
    provider = m.new_key()
    m.vault.stake(provider, 10 * ETH)
    domain = m.settlement.domain
    pub = [5, 7]
    bad_proof = m.circuit.prove(pub)
    bad_proof[6:8] = m.circuit.prove(pub)[6:8]
    bad = proof_leaf(provider, domain, CIRCUIT_ID, bad_proof, pub)
    other = signed_leaf(provider, domain)
    tree = build_tree([bad.hash, other.hash])
    batch_id = os.urandom(32)
    m.settlement.submit_batch(m.operator_key, batch_id, tree.root, 2, 0)
    expect_revert("NotSlashableChallenge", m.vault.slash_challenged, m.challenger_key, batch_id, bad)
    m.settlement.challenge_proof(m.challenger_key, batch_id, bad, tree.proof(0), CIRCUIT_ID, bad_proof, pub,
                                 gas=1_000_000)
    price = bad.signed.attestation.price_wei
    receipt = m.vault.slash_challenged(m.challenger_key, batch_id, bad)  # anyone may call
    (event,) = m.vault.events(receipt, "Slashed")
    assert event.args.provider == address(provider) and event.args.amount == min(price, 10 * ETH)
    assert event.args.burned == event.args.amount // 2  # default: multiplier 1, half burned
    expect_revert("SlashRefUsed", m.vault.slash_challenged, m.challenger_key, batch_id, bad)
    expect_revert("NotSlashableChallenge", m.vault.slash_challenged, m.challenger_key, batch_id, other)


def test_pause_and_admin_are_owner_only(market: Market) -> None:
    m = market
    client = m.new_key()
    expect_revert("OwnableUnauthorizedAccount", m.vault.pause, client)
    m.vault.pause(m.owner_key)
    try:
        expect_revert("EnforcedPause", m.vault.deposit, client, ETH)
        expect_revert("EnforcedPause", m.vault.stake, client, ETH)
        expect_revert("EnforcedPause", m.vault.claim, client, 1, [])
    finally:
        m.vault.unpause(m.owner_key)
    m.vault.deposit(client, ETH)
    expect_revert("InvalidUnbondingPeriod", m.vault.set_unbonding_period, m.owner_key, 0)
    expect_revert("InvalidChallengeSlash", m.vault.set_challenge_slash, m.owner_key, 101, 0)
    expect_revert("OwnableUnauthorizedAccount", m.vault.set_operator, client, address(client))
    with pytest.raises(ContractReverted):
        VaultContract.deploy(m.chain, m.owner_key, unbonding_period_s=0)
    # plain ETH sent to the Vault is refused (no receive function): every wei in it is accounted
    with pytest.raises(Exception):
        send_transaction(m.chain, m.chain.account(client), {"to": m.vault.address, "value": 1, "gas": 50_000})
