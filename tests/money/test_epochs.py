"""Epochs and claims: deposit -> job -> pay -> epoch root -> claim round trip; repeated claims pay nothing; a proof
for another address is refused; a slash during unbonding reaches the stake; unstake before maturity is refused.
The audit is balanced after every step (the fixture checks it once more at the end)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from contracts.errors import ContractReverted
from market import ledger
from market.db.models import ProviderRecord
from market.ledger import chain as chain_ledger
from market.settlement.epochs import EpochPoster
from tests.money.conftest import ETH, UNBONDING_S, Money, address


def expect_revert(name: str, fn, *args) -> None:
    with pytest.raises(ContractReverted) as info:
        fn(*args)
    assert info.value.error_name == name, info.value


def register(m: Money, name: str, key: str) -> None:
    with Session(m.engine) as s, s.begin():
        s.add(ProviderRecord(name=name, address=address(key), cpus=1, memory_bytes=0, price_per_cpu_s_wei=1,
                             price_per_gpu_s_wei=0, registered_at=0.0))


def gas_paid(receipt) -> int:
    return receipt["gasUsed"] * receipt["effectiveGasPrice"]


def test_deposit_job_pay_epoch_claim_round_trip(money: Money) -> None:
    m = money
    client, provider = m.new_key(), m.new_key()
    register(m, "p1", provider)
    m.vault.deposit(client, 3 * ETH)
    m.vault.stake(provider, 2 * ETH)
    m.watcher.poll_once()
    m.assert_sound()
    c = address(client)
    with Session(m.engine) as s, s.begin():  # a job: escrow 1 ETH, paid 0.6 ETH (fee 0), the rest refunded
        ledger.escrow_job(s, "escrow:j1", c, "j1", ETH)
        ledger.release_payment(s, "pay:j1", "j1", "p1", 6 * ETH // 10, fee_bps=0)
        chain_ledger.mark_withdrawable(s, "withdraw:c:1", c, 2 * ETH)  # of its unused 2.4 ETH
    m.assert_sound()
    poster = EpochPoster(m.engine, m.vault, m.operator_key)
    result = poster.run_epoch()
    assert result.swept == {"p1": 6 * ETH // 10} and result.epoch == 1 and result.total_wei == 26 * ETH // 10
    assert poster.run_epoch().epoch is None  # unchanged root: nothing posted
    m.watcher.poll_once()
    m.assert_sound()
    for key, want in ((provider, 6 * ETH // 10), (client, 2 * ETH)):
        claim = poster.proof(address(key))
        assert claim.cumulative_wei == want and claim.epoch == 1
        before = m.chain.w3.eth.get_balance(address(key))
        receipt = m.vault.claim(key, claim.cumulative_wei, [bytes.fromhex(p[2:]) for p in claim.proof])
        assert m.chain.w3.eth.get_balance(address(key)) == before + want - gas_paid(receipt)
        # a second claim of the same cumulative amount pays nothing
        expect_revert("NothingToClaim", m.vault.claim, key, claim.cumulative_wei,
                      [bytes.fromhex(p[2:]) for p in claim.proof])
    # a proof for another address is refused
    other = poster.proof(address(provider))
    expect_revert("InvalidProof", m.vault.claim, client, other.cumulative_wei,
                  [bytes.fromhex(p[2:]) for p in other.proof])
    m.watcher.poll_once()
    assert m.balance(chain_ledger.claimable_account(c)) == 0 and m.balance(chain_ledger.claimable_account(address(provider))) == 0
    assert m.balance(ledger.client_account(c)) == 4 * ETH // 10
    m.assert_sound()
    # more earnings later: the cumulative leaf grows, the claim pays only the difference
    with Session(m.engine) as s, s.begin():
        ledger.escrow_job(s, "escrow:j2", c, "j2", 4 * ETH // 10)
        ledger.release_payment(s, "pay:j2", "j2", "p1", 4 * ETH // 10, fee_bps=0)
    assert poster.run_epoch().epoch == 2
    claim = poster.proof(address(provider))
    assert claim.cumulative_wei == ETH
    receipt = m.vault.claim(provider, claim.cumulative_wei, [bytes.fromhex(p[2:]) for p in claim.proof])
    (event,) = m.vault.events(receipt, "Claimed")
    assert event.args.amount == 4 * ETH // 10
    m.watcher.poll_once()
    m.assert_sound()


def test_slash_during_unbonding_reaches_the_stake_and_unstake_waits_for_maturity(money: Money) -> None:
    m = money
    client, provider = m.new_key(), m.new_key()
    register(m, "p1", provider)
    m.vault.deposit(client, ETH)
    m.vault.stake(provider, 2 * ETH)
    m.watcher.poll_once()
    m.vault.request_unstake(provider, 2 * ETH)  # all of it: nothing active, 2 ETH unbonding
    m.watcher.poll_once()
    assert m.balance(ledger.bond_account("p1")) == 0 and m.balance(ledger.unbonding_account("p1")) == 2 * ETH
    expect_revert("UnbondingNotMatured", m.vault.withdraw_stake, provider)  # unstake before maturity refused
    m.assert_sound()
    # a wrong result while unbonding: the arbiter slashes 1 ETH, half to the client, half burned
    with Session(m.engine) as s, s.begin():
        assert chain_ledger.reach_unbonding(s, "reach:s1", "p1", ETH) == ETH
        sl = ledger.slash(s, "s1", "p1", "j1", "wrong_result", 0.0, client=address(client), amount_wei=ETH,
                          window_s=0.0)
    assert sl.burn_wei + sl.client_wei == ETH and sl.client_wei > 0
    m.assert_sound()  # nothing left the Vault yet: the slash is queued in the ledger
    poster = EpochPoster(m.engine, m.vault, m.operator_key)
    result = poster.run_epoch()  # the window closed: final in the ledger, then carried out on chain
    assert result.finalized == ["s1"] and result.slashes == {"s1": "sent"}
    info = m.vault.stake_of(address(provider))
    assert (info.active, info.unbonding) == (0, ETH)  # the slash reached the unbonding stake
    m.watcher.poll_once()
    assert m.balance(ledger.BURN_ACCOUNT) == 0
    m.assert_sound()
    # the client's share is claimable (it came from the slash, into the claim pool)
    with Session(m.engine) as s, s.begin():
        chain_ledger.mark_withdrawable(s, "withdraw:c", address(client), ETH + sl.client_wei)
    assert poster.run_epoch().epoch == 1
    claim = poster.proof(address(client))
    m.vault.claim(client, claim.cumulative_wei, [bytes.fromhex(p[2:]) for p in claim.proof])
    m.chain.advance_time(UNBONDING_S + 1)
    m.vault.withdraw_stake(provider)
    m.watcher.poll_once()
    assert m.balance(ledger.unbonding_account("p1")) == 0 and m.balance(ledger.bond_account("p1")) == 0
    m.assert_sound()
    assert m.vault.balance_wei() == 0
