"""The DEVELOPMENT faucet moves real chain money (issue 12): ``POST /v1/dev/faucet`` sends ``Vault.depositFor`` /
``stakeFor`` from a well-known dev key, the ledger is credited before the reply through the deposit watcher's
own idempotent path (never twice when the watcher reaches the block), the audit is balanced; ``world`` is closed
on the service's ledger; a claim is readable only by its own address (signed ``account.claim``)."""

from __future__ import annotations

import httpx
import pytest
from eth_account import Account
from sqlalchemy import text
from sqlalchemy.orm import Session

from market import ledger
from market.client import Client, ProviderClient
from market.client.wallet import Wallet
from market.exchange.service import ServiceConfig
from market.exchange.service.money import DEV_FAUCET_KEYS
from market.settings import Settings
from tests.money.conftest import ETH
from tests.service.harness import ThreadService


@pytest.fixture
def svc(tmp_path):
    service = ThreadService(Settings(data_dir=tmp_path / "data", confirmations=2),
                            ServiceConfig(lease_s=6.0, round_interval_s=0.1, dev=True)).start()
    yield service
    service.stop()


def test_faucet_deposits_and_stakes_on_chain_credited_once(svc) -> None:
    rt = svc.runtime
    chain, vault = rt.chain.chain, rt.money.vault
    client_key, provider_key = (Account.create().key.hex() for _ in range(2))  # generated test keys
    before = vault.balance_wei()
    out = Client(svc.url, client_key).faucet(ETH)
    assert out["balance_wei"] == str(ETH)  # spendable at once, although 2 confirmations are configured
    (tx,) = out["faucet_txs"]
    assert tx["function"] == "depositFor" and tx["amount_wei"] == str(ETH)
    receipt = chain.w3.eth.get_transaction_receipt(tx["tx_hash"])
    assert receipt["from"] == Account.from_key(DEV_FAUCET_KEYS[chain.kind]).address  # the named dev key paid
    (dep,) = vault.events(receipt, "Deposited")
    assert dep.args.account == Account.from_key(client_key).address and dep.args.amount == ETH
    assert vault.balance_wei() == before + ETH  # real chain money

    ProviderClient(svc.url, provider_key).register("p1", offer={
        "price_per_cpu_s_wei": 10**9, "cpus": 1, "gpus": 0, "gpu_model": None, "memory_bytes": 2**30, "speed": 1.0})
    bonded = Client(svc.url, provider_key).faucet(0, bond_wei=ETH // 10, provider_name="p1")
    assert bonded["bond_wei"] == str(ETH // 10) and bonded["faucet_txs"][0]["function"] == "stakeFor"
    assert vault.stake_of(Account.from_key(provider_key).address).active == ETH // 10

    report = svc.check_audit()  # at the checkpoint (2 confirmations): the early credits are not counted yet
    assert report.balanced and report.checked_at_block < receipt["blockNumber"]
    chain.mine(3)  # the watcher now reaches the faucet's blocks: it must skip, not credit again
    rt.money.watcher.poll_once()
    with Session(rt.engine) as s:
        assert ledger.balance(s, ledger.client_account(Account.from_key(client_key).address)) == ETH
        assert ledger.balance(s, ledger.bond_account("p1")) == ETH // 10
        assert s.execute(text("SELECT count(*) FROM vault_events WHERE event IN ('Deposited', 'Staked')")
                         ).scalar_one() == 2
        with pytest.raises(ledger.WorldClosed):  # world is no source of funds on the service's ledger
            ledger.deposit(s, "mint", ledger.client_account(Account.from_key(client_key).address), 1)
    report = svc.check_audit()
    assert report.checked_at_block >= receipt["blockNumber"] and report.contract_balance_wei == before + ETH + ETH // 10


def test_claim_is_readable_only_by_its_address(svc) -> None:
    key = Account.create().key.hex()
    Client(svc.url, key).faucet(ETH)
    mine = Wallet(svc.url, key)
    mine.withdraw(ETH // 2)
    assert mine.claim_info()["claimable_wei"] == str(ETH // 2)
    stranger = Wallet(svc.url, Account.create().key.hex())
    assert stranger.claim_info()["address"] == stranger.address  # a signer reads its own claim only
    assert stranger.claim_info()["claimable_wei"] == "0"
    assert httpx.get(f"{svc.url}/v1/claims/{mine.address}").status_code in (404, 405)  # no public per-address read
