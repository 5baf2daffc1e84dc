"""Fixtures of the money tests: a Vault on the in-process EVM or anvil, a migrated ledger database, the deposit
watcher, and helpers that check the audit and the journal replay after every test."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from eth_account import Account
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from contracts.bindings import send_transaction
from contracts.chain import Chain, connect
from contracts.vault import VaultContract
from market import ledger
from market.db.base import make_engine
from market.db.migrate import upgrade
from market.settlement.audit import audit
from market.settlement.deposits import VaultWatcher, VaultWatcherConfig

ETH = 10**18
UNBONDING_S = 1_000


@dataclass
class Money:
    """A Vault, its chain, a migrated ledger and a deposit watcher (confirmations as given)."""

    chain: Chain
    vault: VaultContract
    owner_key: str
    operator_key: str
    engine: Engine
    watcher: VaultWatcher
    keys: list[str] = field(default_factory=list)

    def new_key(self, eth: int = 20) -> str:
        """A generated test key funded with ``eth`` ETH from a dev key."""
        key = "0x" + bytes(Account.create().key).hex()
        send_transaction(self.chain, self.chain.account(self.owner_key),
                         {"to": Account.from_key(key).address, "value": eth * ETH, "gas": 21_000})
        self.keys.append(key)
        return key

    def watch(self, confirmations: int) -> VaultWatcher:
        """A fresh watcher (same checkpoint) with another confirmation count."""
        self.watcher = VaultWatcher(self.vault, self.engine, VaultWatcherConfig(
            from_block=self.watcher.config.from_block, confirmations=confirmations))
        return self.watcher

    def balance(self, account_id: str) -> int:
        with Session(self.engine) as s:
            try:
                return ledger.balance(s, account_id)
            except ledger.UnknownAccount:
                return 0

    def assert_sound(self) -> None:
        """The audit is balanced at the watcher's checkpoint and the ledger equals a replay of its journal."""
        report = audit(self.engine, self.vault)
        assert report.balanced, report
        with Session(self.engine) as s:
            assert ledger.check_invariants(s) == []


def address(key: str) -> str:
    return Account.from_key(key).address


def make_money(chain: Chain, url: str, confirmations: int = 0) -> Money:
    owner, operator = chain.dev_keys[-1], chain.dev_keys[-2]
    vault = VaultContract.deploy(chain, owner, unbonding_period_s=UNBONDING_S)
    vault.set_operator(owner, address(operator))
    upgrade(url)
    engine = make_engine(url)
    watcher = VaultWatcher(vault, engine, VaultWatcherConfig(from_block=chain.block_number(),
                                                             confirmations=confirmations))
    return Money(chain, vault, owner, operator, engine, watcher)


@pytest.fixture(params=["in-process", pytest.param("anvil", marks=pytest.mark.anvil),
                        pytest.param("postgres+anvil", marks=[pytest.mark.anvil, pytest.mark.postgres])])
def money(request: pytest.FixtureRequest, tmp_path) -> Money:
    """A fresh Vault + ledger: SQLite on the in-process EVM and on anvil, Postgres (NUMERIC wei) on anvil;
    audited after the test."""
    url = f"sqlite:///{tmp_path / 'money.db'}"
    if request.param == "in-process":
        chain = connect(None)
    else:
        node = request.getfixturevalue("anvil")
        chain = connect(node.rpc_url, dev_keys=tuple(node.dev_keys))
        if request.param.startswith("postgres"):
            url = request.getfixturevalue("pg_url")
    m = make_money(chain, url)
    yield m
    m.watcher.poll_once()
    m.assert_sound()
    m.engine.dispose()


@pytest.fixture
def anvil_money(anvil, tmp_path) -> Money:
    """A fresh Vault + SQLite ledger on anvil (for anvil_reorg)."""
    chain = connect(anvil.rpc_url, dev_keys=tuple(anvil.dev_keys))
    m = make_money(chain, f"sqlite:///{tmp_path / 'money.db'}")
    yield m
    m.engine.dispose()
