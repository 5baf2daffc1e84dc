"""The service's chain: connect (anvil by URL, else an in-process EVM owned by this process) and find the
Settlement contract: the configured address, else the one remembered in the database, else deploy one and
remember it (``service_meta``).

An RPC node that stops answering (issue 14 finding 9: anvil SIGSTOPped) must not freeze the market: every
request to it times out after :data:`RPC_TIMEOUT_S` seconds (web3's own retries of timed-out requests are
switched off, they would multiply the wait), and :class:`ChainHealth` tracks whether the node answers: the
service's chain thread probes it before its chain steps and skips them while it is down; the stall is logged
once when it starts and once when it ends, and shown in ``/metrics`` (``raymarket_chain_rpc_up``,
``raymarket_chain_seconds_since_ok``, ``raymarket_chain_stalls_total``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

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
#: Seconds one JSON-RPC request may take before it fails (connect and read).
RPC_TIMEOUT_S = 5.0


class ChainHealth:
    """Whether the chain node answers, since when, and how many stalls there were (thread-safe).

    Attributes:
        up: the last chain call or probe succeeded; last_ok_s: unix time of the last success;
        down_since_s: unix time the current stall began (None when up); stalls: stalls seen so far;
        last_error: the error that began the current (or last) stall.
    """

    def __init__(self, now_s: float | None = None) -> None:
        self.up, self.last_ok_s = True, time.time() if now_s is None else now_s
        self.down_since_s: float | None = None
        self.stalls, self.last_error = 0, ""
        self._lock = threading.Lock()

    def ok(self, now_s: float | None = None) -> None:
        """A chain call succeeded: logs the end of a stall (once)."""
        now_s = time.time() if now_s is None else now_s
        with self._lock:
            was_down, since = not self.up, self.down_since_s
            self.up, self.last_ok_s, self.down_since_s = True, now_s, None
        if was_down:
            log.warning("chain RPC answers again after %.1f s; settlement, deposits and epochs resume",
                        now_s - (since or now_s))

    def failed(self, exc: BaseException, now_s: float | None = None) -> None:
        """A chain call or probe failed: logs the start of a stall (once per stall, not per failure)."""
        now_s = time.time() if now_s is None else now_s
        with self._lock:
            starting = self.up
            if starting:
                self.up, self.down_since_s, self.stalls = False, now_s, self.stalls + 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if starting:
            log.warning("chain RPC not answering (%s); settlement, deposits and epochs wait, rounds go on",
                        self.last_error)

    def seconds_since_ok(self, now_s: float | None = None) -> float:
        """Seconds since the last successful chain call."""
        return max(0.0, (time.time() if now_s is None else now_s) - self.last_ok_s)


def probe(chain: Chain, health: ChainHealth) -> bool:
    """One cheap call (``eth_blockNumber``, bounded by the request timeout); records the outcome in ``health``."""
    try:
        _ = chain.w3.eth.block_number
    except Exception as exc:  # noqa: BLE001 -- requests/web3 raise many kinds for a node that does not answer
        health.failed(exc)
        return False
    health.ok()
    return True


@dataclass
class ChainSetup:
    """The connected chain, the Settlement contract, the operator key, the watcher's first block, the node's
    health."""

    chain: Chain
    contract: SettlementContract
    operator_key: str
    from_block: int
    health: ChainHealth = field(default_factory=ChainHealth)


def bounded(chain: Chain) -> Chain:
    """``chain`` with web3's retries of failed requests switched off (each request is bounded by its timeout)."""
    provider = chain.w3.provider
    if hasattr(provider, "exception_retry_configuration"):
        provider.exception_retry_configuration = None
    return chain


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
    chain = bounded(connect(rpc_url, timeout_s=RPC_TIMEOUT_S))
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
