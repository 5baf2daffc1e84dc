"""The service's chain: connect (anvil by URL, else an in-process EVM owned by this process) and find the
Settlement contract: the configured address, else the one remembered in the database, else deploy one and
remember it (``service_meta``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from eth_account import Account
from eth_utils import to_checksum_address
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from contracts.bindings import SettlementContract
from contracts.chain import Chain, connect
from market.db.models import ServiceMeta

log = logging.getLogger("raymarket.exchange")

CONTRACT_KEY = "settlement_contract"
CHAIN_ID_KEY = "chain_id"
DEPLOY_BLOCK_KEY = "deploy_block"


@dataclass
class ChainSetup:
    """The connected chain, the Settlement contract, the operator key and the watcher's first block."""

    chain: Chain
    contract: SettlementContract
    operator_key: str
    from_block: int


def _meta(s: Session, key: str) -> str | None:
    row = s.get(ServiceMeta, key)
    return None if row is None else row.value


def _remember(s: Session, values: dict[str, str]) -> None:
    for key, value in values.items():
        row = s.get(ServiceMeta, key)
        if row is None:
            s.add(ServiceMeta(key=key, value=value))
        else:
            row.value = value


def _has_code(chain: Chain, address: str) -> bool:
    return len(chain.w3.eth.get_code(to_checksum_address(address))) > 0


def setup_chain(engine: Engine, rpc_url: str | None, contract: str | None, operator_key: str | None) -> ChainSetup:
    """Connect and find or deploy the Settlement contract (see the module docstring).

    A remembered contract that has no code on the chain (the in-process EVM does not outlive its process, or
    anvil was restarted) is replaced by a fresh deployment, with a warning; so is a configured one on a fresh
    in-process chain (``dev up`` remembers the address in the config file, but that chain is new each start).

    Raises:
        contracts.errors.ChainUnreachable: the RPC endpoint does not answer.
        ValueError: a configured ``contract`` has no code on the chain.
    """
    chain = connect(rpc_url)
    key = operator_key or chain.dev_keys[0]
    with Session(engine) as s, s.begin():
        remembered, block = _meta(s, CONTRACT_KEY), int(_meta(s, DEPLOY_BLOCK_KEY) or 0)
        if contract and chain.kind == "in-process" and not _has_code(chain, contract):
            log.warning("Settlement %s is not on this new in-process chain (it lives and dies with the service); "
                        "deploying a new one", contract)
            contract = None
        if contract:
            if not _has_code(chain, contract):
                raise ValueError(f"no contract code at {contract} on chain {chain.chain_id}; omit --contract to deploy")
            address, block = contract, 0 if contract != remembered else block
        elif remembered and _has_code(chain, remembered):
            address = remembered
        else:
            if remembered:
                log.warning("remembered Settlement %s has no code on this chain; deploying a new one", remembered)
            block = chain.block_number()
            address = _deploy(chain, key)
        _remember(s, {CONTRACT_KEY: address, CHAIN_ID_KEY: str(chain.chain_id), DEPLOY_BLOCK_KEY: str(block)})
    return ChainSetup(chain, SettlementContract(chain, address), key, block)


def _deploy(chain: Chain, key: str) -> str:
    contract = SettlementContract.deploy(chain, key)
    contract.set_operator(key, Account.from_key(key).address, True)
    log.info("deployed Settlement at %s on chain %s", contract.address, chain.chain_id)
    return contract.address
