"""The deposit watcher: Vault deposits and stake credit the ledger only after N confirmations, exactly once; a
reorg before confirmation never credits; a reorg after crediting debits back, leaves a debt and is reported."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from market import ledger
from market.db.models import ProviderRecord
from market.ledger import chain as chain_ledger
from market.settlement.audit import audit
from market.settlement.vault_models import VaultEvent, VaultReorg
from tests.money.conftest import ETH, Money, address


def test_deposit_credits_after_confirmations_once(money: Money) -> None:
    m = money
    w = m.watch(confirmations=2)
    key = m.new_key()
    m.vault.deposit(key, 3 * ETH)
    w.poll_once()
    client = ledger.client_account(address(key))
    assert m.balance(client) == 0  # one block on top of nothing: not yet confirmed
    m.assert_sound()  # the audit stands below the deposit block: balanced
    m.chain.mine(1)
    w.poll_once()
    assert m.balance(client) == 0
    m.chain.mine(1)
    events = w.poll_once()
    assert [(e.action, e.event, e.amount_wei) for e in events] == [("applied", "Deposited", 3 * ETH)]
    assert m.balance(client) == 3 * ETH
    assert w.poll_once() == [] and m.balance(client) == 3 * ETH  # idempotent
    report = audit(m.engine, m.vault)
    assert report.balanced and report.contract_balance_wei == 3 * ETH == report.ledger_liabilities_wei
    assert report.checked_at_block == m.chain.block_number() - 2


def test_restarted_watcher_applies_each_event_once(money: Money) -> None:
    m = money
    key = m.new_key()
    for _ in range(3):
        m.vault.deposit(key, ETH)
    m.watcher.poll_once()
    m.watch(confirmations=0).poll_once()  # a new process: same checkpoint
    assert m.balance(ledger.client_account(address(key))) == 3 * ETH
    with Session(m.engine) as s:
        assert len(s.scalars(select(VaultEvent)).all()) == 3


def test_stake_before_registration_is_parked_then_bonded(money: Money) -> None:
    m = money
    key = m.new_key()
    m.vault.stake(key, 2 * ETH)
    m.watcher.poll_once()
    assert m.balance(f"stake:{address(key)}") == 2 * ETH
    m.assert_sound()
    with Session(m.engine) as s, s.begin():
        s.add(ProviderRecord(name="p1", address=address(key), cpus=1, memory_bytes=0, price_per_cpu_s_wei=1, price_per_gpu_s_wei=0,
                             registered_at=0.0))
    m.watcher.poll_once()
    assert m.balance("stake:" + address(key)) == 0 and m.balance(ledger.bond_account("p1")) == 2 * ETH
    m.vault.stake(key, ETH)
    m.watcher.poll_once()
    assert m.balance(ledger.bond_account("p1")) == 3 * ETH


@pytest.mark.anvil
def test_reorg_before_confirmation_never_credits(anvil_money: Money) -> None:
    m = anvil_money
    w = m.watch(confirmations=3)
    key = m.new_key()
    m.chain.mine(3)
    w.poll_once()
    m.vault.deposit(key, 5 * ETH)
    m.chain.mine(1)
    w.poll_once()
    client = ledger.client_account(address(key))
    assert m.balance(client) == 0
    m.chain.w3.provider.make_request("anvil_reorg", [2, []])  # the deposit's block and the one above it re-mined empty
    m.chain.forget_nonce(address(key))
    m.chain.mine(5)
    assert m.vault.totals().deposited == 0
    events = w.poll_once()
    assert events == [] and m.balance(client) == 0
    m.assert_sound()
    with Session(m.engine) as s:
        assert s.scalars(select(VaultReorg)).all() == []


@pytest.mark.anvil
def test_reorg_after_crediting_debits_back_and_flags_the_spender(anvil_money: Money) -> None:
    m = anvil_money
    w = m.watch(confirmations=0)
    key = m.new_key()
    who = address(key)
    m.chain.mine(2)
    w.poll_once()
    m.vault.deposit(key, 5 * ETH)
    w.poll_once()
    client = ledger.client_account(who)
    assert m.balance(client) == 5 * ETH
    with Session(m.engine) as s, s.begin():  # the client spends 2 ETH of it on a job escrow
        ledger.escrow_job(s, "escrow:j1", who, "j1", 2 * ETH)
    m.chain.w3.provider.make_request("anvil_reorg", [1, []])
    m.chain.forget_nonce(who)
    events = w.poll_once()
    assert [(e.action, e.event, e.amount_wei, e.shortfall_wei) for e in events] == \
        [("reverted", "Deposited", 5 * ETH, 2 * ETH)]
    assert m.balance(client) == 0 and m.balance(chain_ledger.debt_account(who)) == -2 * ETH
    with Session(m.engine) as s:
        (row,) = s.scalars(select(VaultReorg)).all()
        assert (row.account, row.reverted_wei, row.shortfall_wei) == (who, 5 * ETH, 2 * ETH)
        assert chain_ledger.flagged_accounts(s) == {who: 2 * ETH}
        with pytest.raises(chain_ledger.AccountInDebt):
            chain_ledger.require_no_debt(s, who)
    m.assert_sound()  # nothing spendable is unbacked: escrow 2 ETH + debt -2 ETH == 0 in the Vault
    # the next deposit covers the debt first
    m.vault.deposit(key, 3 * ETH)
    w.poll_once()
    assert m.balance(chain_ledger.debt_account(who)) == 0 and m.balance(client) == ETH
    with Session(m.engine) as s:
        chain_ledger.require_no_debt(s, who)
    m.assert_sound()
