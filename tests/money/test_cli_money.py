"""The money commands on the real CLI app against the real service (SQLite + in-process EVM, dev relay): AMOUNT
units parsed exactly; deposit -> withdraw -> claim; `audit --json` balanced."""

from __future__ import annotations

import json
import time

import pytest
from eth_account import Account
from typer.testing import CliRunner

import cli
from contracts.bindings import send_transaction
from market.core.units import AmountError, format_eth, parse_amount
from market.exchange.service import ServiceConfig
from market.settings import Settings
from providers.keys import create_keystore
from tests.money.conftest import ETH
from tests.service.harness import ThreadService


def test_amounts_parse_exactly_and_print_in_eth() -> None:
    assert parse_amount("1.5eth") == 15 * 10**17 and parse_amount("20 GWEI") == 20 * 10**9
    assert parse_amount("1000") == 1000 and parse_amount("0.000000000000000001ether") == 1
    assert parse_amount("123456789.123456789123456789eth") == 123456789123456789123456789
    for bad in ("0.5wei", "1e18", "-1", "2 btc", "", "1.2.3eth"):
        with pytest.raises(AmountError):
            parse_amount(bad)
    assert format_eth(15 * 10**17) == "1.5 ETH (1500000000000000000 wei)" and format_eth(1) == \
        "0.000000000000000001 ETH (1 wei)"
    result = CliRunner().invoke(cli.app, ["deposit", "0.5wei", "--exchange", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "whole number of wei" in result.output


def test_deposit_withdraw_claim_audit_on_the_cli(tmp_path) -> None:
    svc = ThreadService(Settings(data_dir=tmp_path / "data", settlement_window_s=1.0),
                        ServiceConfig(lease_s=6.0, round_interval_s=0.1, dev=True)).start()
    try:
        svc.runtime.money.epoch_interval_s = svc.runtime.money.poll_interval_s = 0.5
        chain = svc.runtime.chain.chain
        key = Account.create().key.hex()  # generated test key
        send_transaction(chain, chain.account(chain.dev_keys[1]),
                         {"to": Account.from_key(key).address, "value": 3 * ETH, "gas": 21_000})
        (tmp_path / "pw").write_text("test-password\n")
        create_keystore(tmp_path / "k.json", "test-password", key, kdf="pbkdf2", iterations=2)
        common = ["--exchange", svc.url, "--key", str(tmp_path / "k.json"), "--password-file", str(tmp_path / "pw"),
                  "--data-dir", str(tmp_path / "cli"), "--json"]
        run = lambda *args: CliRunner().invoke(cli.app, [*args, *common])  # noqa: E731
        r = run("deposit", "1.5eth")
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["amount_wei"] == str(15 * 10**17)
        deadline = time.time() + 60
        while json.loads(run("wallet").output)["balance_wei"] != str(15 * 10**17):
            assert time.time() < deadline
            time.sleep(0.2)
        assert run("withdraw", "500000000gwei").exit_code == 0
        while True:
            r = run("claim")
            assert r.exit_code == 0, r.output
            if json.loads(r.output).get("tx_hash"):
                assert json.loads(r.output)["amount_wei"] == str(ETH // 2)
                break
            assert time.time() < deadline
            time.sleep(0.2)
        while True:
            r = CliRunner().invoke(cli.app, ["audit", "--json", "--exchange", svc.url])
            report = json.loads(r.stdout if hasattr(r, "stdout") else r.output)
            if report["balanced"] and report["pending_claims_wei"] == "0":
                break
            assert time.time() < deadline
            time.sleep(0.2)
        assert r.exit_code == 0 and report["contract_balance_wei"] == str(ETH) == report["ledger_liabilities_wei"]
    finally:
        svc.stop()
