"""Fixtures of the settlement tests: a chain per backend (in-process EVM and the session's anvil)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_account import Account

from contracts.bindings import SettlementContract, deploy
from contracts.chain import Chain, connect
from tests.settlement.helpers import SimulatedCircuit

CIRCUIT_ID = b"\x11" * 32


@dataclass
class Deployment:
    chain: Chain
    settlement: SettlementContract
    owner_key: str
    operator_key: str
    challenger_key: str
    provider_key: str
    circuit: SimulatedCircuit
    verifier_address: str


def make_chain(request: pytest.FixtureRequest, backend: str) -> Chain:
    if backend == "anvil":
        node = request.getfixturevalue("anvil")
        return connect(node.rpc_url, dev_keys=tuple(node.dev_keys))
    return connect(None)


@pytest.fixture(scope="module", params=["in-process", pytest.param("anvil", marks=pytest.mark.anvil)])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """A fresh Settlement (window 8 blocks) + a keyed verifier for a simulated 2-input circuit."""
    chain = make_chain(request, request.param)
    owner, operator, challenger = chain.dev_keys[-1], chain.dev_keys[-2], chain.dev_keys[-3]
    settlement = SettlementContract.deploy(chain, owner, challenge_window_blocks=8)
    settlement.set_operator(owner, Account.from_key(operator).address)
    circuit = SimulatedCircuit.random(n_public=2)
    verifier = deploy(chain, "KeyedGroth16Verifier", owner, *circuit.constructor_args())
    settlement.register_verifier(owner, CIRCUIT_ID, verifier.address)
    provider_key = "0x" + bytes(Account.create().key).hex()  # generated test key
    return Deployment(chain, settlement, owner, operator, challenger, provider_key, circuit, verifier.address)
