"""Fixtures of the contract tests: Settlement + keyed verifier + Vault on the in-process EVM and on anvil."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_account import Account

from contracts.bindings import SettlementContract, deploy, send_transaction
from contracts.chain import Chain
from contracts.vault import VaultContract
from tests.settlement.conftest import CIRCUIT_ID, make_chain
from tests.settlement.helpers import SimulatedCircuit

UNBONDING_S = 1_000
ETH = 10**18


@dataclass
class Market:
    chain: Chain
    settlement: SettlementContract
    vault: VaultContract
    owner_key: str
    operator_key: str
    challenger_key: str
    circuit: SimulatedCircuit
    verifier_address: str

    def new_key(self, eth: int = 50) -> str:
        """A generated test key funded with ``eth`` ETH from a dev key."""
        key = "0x" + bytes(Account.create().key).hex()
        fund(self.chain, self.owner_key, Account.from_key(key).address, eth * ETH)
        return key


def fund(chain: Chain, from_key: str, to: str, wei: int) -> None:
    send_transaction(chain, chain.account(from_key), {"to": to, "value": wei, "gas": 21_000})


def address(key: str) -> str:
    return Account.from_key(key).address


@pytest.fixture(scope="module", params=["in-process", pytest.param("anvil", marks=pytest.mark.anvil)])
def market(request: pytest.FixtureRequest) -> Market:
    """Settlement (window 8 blocks, a 2-input simulated circuit registered) and a Vault knowing it
    (unbonding 1,000 s), one operator for both."""
    chain = make_chain(request, request.param)
    owner, operator, challenger = chain.dev_keys[-1], chain.dev_keys[-2], chain.dev_keys[-3]
    settlement = SettlementContract.deploy(chain, owner, challenge_window_blocks=8)
    settlement.set_operator(owner, address(operator))
    circuit = SimulatedCircuit.random(n_public=2)
    verifier = deploy(chain, "KeyedGroth16Verifier", owner, *circuit.constructor_args())
    settlement.register_verifier(owner, CIRCUIT_ID, verifier.address)
    vault = VaultContract.deploy(chain, owner, settlement=settlement.address, unbonding_period_s=UNBONDING_S)
    vault.set_operator(owner, address(operator))
    return Market(chain, settlement, vault, owner, operator, challenger, circuit, verifier.address)
