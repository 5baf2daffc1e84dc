"""The service's money side end to end (SQLite + in-process EVM, the dev relay for the parties' own signed Vault
transactions): deposit -> credited -> withdraw -> epoch root -> claim; stake for a registered provider; the audit
is balanced and exported in /metrics."""

from __future__ import annotations

import time

import httpx
from eth_account import Account

from contracts.bindings import send_transaction
from market.client import ProviderClient
from market.client.wallet import Wallet
from market.exchange.service import ServiceConfig
from market.settings import Settings
from tests.money.conftest import ETH
from tests.service.harness import ThreadService


def wait_for(fn, timeout_s: float = 60.0, what: str = "condition"):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_deposit_withdraw_claim_through_the_service(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path / "data", settlement_window_s=1.0)
    svc = ThreadService(settings, ServiceConfig(lease_s=6.0, round_interval_s=0.1, dev=True)).start()
    try:
        rt = svc.runtime
        rt.money.epoch_interval_s = rt.money.poll_interval_s = 0.5
        chain = rt.chain.chain
        client_key, provider_key = (Account.create().key.hex() for _ in range(2))  # generated test keys
        for key in (client_key, provider_key):
            send_transaction(chain, chain.account(chain.dev_keys[1]),
                             {"to": Account.from_key(key).address, "value": 5 * ETH, "gas": 21_000})
        client = Wallet(svc.url, client_key)
        assert client.vault["relay"] is True
        client.deposit(ETH)
        wait_for(lambda: client.balance()["balance_wei"] == str(ETH), what="the deposit credited")
        ProviderClient(svc.url, provider_key).register("p1", offer={
            "price_per_cpu_s_wei": 10**9, "cpus": 1, "gpus": 0, "gpu_model": None, "memory_bytes": 2**30, "speed": 1.0})
        provider = Wallet(svc.url, provider_key)
        provider.stake(ETH // 10)
        wait_for(lambda: svc.runtime.money.last_audit and svc.runtime.money.last_audit.contract_balance_wei
                 == ETH + ETH // 10, what="the stake seen")
        client.withdraw(4 * ETH // 10)
        info = wait_for(lambda: (i := client.claim_info())["cumulative_wei"] == str(4 * ETH // 10) and i,
                        what="the epoch root with the withdrawal")
        assert info["epoch"] >= 1 and info["claimable_wei"] == str(4 * ETH // 10)
        before = chain.w3.eth.get_balance(client.address)
        out = client.claim()
        assert out["amount_wei"] == str(4 * ETH // 10)
        assert chain.w3.eth.get_balance(client.address) > before + 3 * ETH // 10
        assert client.claim() is None  # nothing more to claim
        wait_for(lambda: client.balance()["claimable_wei"] == "0", what="the claim applied")
        audit = wait_for(lambda: (a := client.audit())["balanced"] and a["pending_claims_wei"] == "0" and a,
                         what="a balanced audit")
        assert audit["contract_balance_wei"] == str(6 * ETH // 10 + ETH // 10) == audit["ledger_liabilities_wei"]
        metrics = httpx.get(f"{svc.url}/metrics").text
        assert "raymarket_audit_balanced 1.0" in metrics and "raymarket_vault_balance_wei" in metrics
    finally:
        svc.stop()
