"""A connection to an EVM chain: the in-process EVM (eth-tester / py-evm) or an HTTP JSON-RPC node (anvil).

Transactions are built locally (nonce tracked here, fee and chain id cached), signed locally and sent raw,
so one transaction costs 2 RPC calls (send + receipt) when the gas limit is given (FIELD-NOTES: ``transact()``
costs ~9).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from contracts.errors import ChainUnreachable, ContractsError

#: The funded dev key of eth-tester's in-process chain (its first account; private key 1). Well known, not secret.
IN_PROCESS_DEV_KEY = "0x" + "00" * 31 + "01"
#: anvil's first well-known dev key (mnemonic "test test ... junk"). Well known, not secret.
ANVIL_DEV_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEFAULT_PRIORITY_FEE_WEI = 1_000_000_000


@dataclass
class Chain:
    """A connected chain.

    Attributes:
        w3: the web3 instance.
        kind: ``"in-process"`` (eth-tester) or ``"rpc"``.
        chain_id: the chain id (cached).
        dev_keys: funded well-known development keys (hex) usable for tests and demos (in-process: eth-tester's
            10 funded accounts, the first being :data:`IN_PROCESS_DEV_KEY`).
        rpc_url: the endpoint, ``None`` for the in-process chain.
    """

    w3: Web3
    kind: Literal["in-process", "rpc"]
    chain_id: int
    dev_keys: tuple[str, ...]
    rpc_url: str | None = None
    _nonces: dict[str, int] = field(default_factory=dict, repr=False)
    _fee: dict[str, int] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -------------------------------------------------------------- blocks
    def block_number(self) -> int:
        return self.w3.eth.block_number

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks (anvil ``anvil_mine``; eth-tester ``mine_blocks``)."""
        if self.kind == "rpc":
            self.w3.provider.make_request("anvil_mine", [hex(blocks)])
        else:
            self.w3.provider.ethereum_tester.mine_blocks(blocks)

    def timestamp(self) -> int:
        """The latest block's timestamp (seconds)."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance_time(self, seconds: int) -> None:
        """Mine one block at least ``seconds`` later than the latest (anvil ``evm_increaseTime`` + ``evm_mine``;
        eth-tester ``time_travel``). For tests of on-chain time (unbonding)."""
        if self.kind == "rpc":
            self.w3.provider.make_request("evm_increaseTime", [int(seconds)])
            self.w3.provider.make_request("evm_mine", [])
        else:
            self.w3.provider.ethereum_tester.time_travel(self.timestamp() + int(seconds))

    # -------------------------------------------------------------- transactions
    def account(self, private_key: str | bytes) -> LocalAccount:
        return Account.from_key(private_key)

    def fees(self, refresh: bool = False) -> dict[str, int]:
        """EIP-1559 fee fields (cached; ``maxFeePerGas`` = 2 x base fee + tip)."""
        if self._fee is None or refresh:
            base = self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
            tip = DEFAULT_PRIORITY_FEE_WEI
            self._fee = {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}
        return self._fee

    def next_nonce(self, address: str) -> int:
        with self._lock:
            if address not in self._nonces:
                self._nonces[address] = self.w3.eth.get_transaction_count(address, "pending")
            nonce = self._nonces[address]
            self._nonces[address] = nonce + 1
            return nonce

    def forget_nonce(self, address: str) -> None:
        """Drop the cached nonce (after a failed send or a reorg); the next send re-reads it."""
        with self._lock:
            self._nonces.pop(address, None)

    def sign_tx(self, account: LocalAccount, tx: dict[str, Any]) -> tuple[bytes, str]:
        """Fill nonce, chain id and fees; sign. Returns ``(raw transaction, 0x tx hash)``."""
        full = {"chainId": self.chain_id, "nonce": self.next_nonce(account.address), "value": 0, **self.fees(), **tx}
        signed = account.sign_transaction(full)
        return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()

    def send_raw(self, raw: bytes) -> str:
        return "0x" + bytes(self.w3.eth.send_raw_transaction(raw)).hex()

    def wait(self, tx_hash: str, timeout_s: float = 60.0) -> Any:
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s, poll_latency=0.005)

    # -------------------------------------------------------------- snapshots (tests)
    def snapshot(self) -> Any:
        if self.kind == "rpc":
            return self.w3.provider.make_request("evm_snapshot", [])["result"]
        return self.w3.provider.ethereum_tester.take_snapshot()

    def revert(self, snapshot_id: Any) -> None:
        if self.kind == "rpc":
            self.w3.provider.make_request("evm_revert", [snapshot_id])
        else:
            self.w3.provider.ethereum_tester.revert_to_snapshot(snapshot_id)
        self._nonces.clear()


def connect(rpc_url: str | None = None, dev_keys: tuple[str, ...] | None = None, timeout_s: float = 10.0) -> Chain:
    """Connect to ``rpc_url`` (HTTP JSON-RPC, e.g. anvil) or, when ``None``, start the in-process EVM.

    Args:
        rpc_url: ``http://host:port`` or ``None`` for web3's ``EthereumTesterProvider`` (py-evm, Prague).
        dev_keys: funded keys to expose as ``Chain.dev_keys`` for an RPC node (default: anvil's first dev key).
        timeout_s: HTTP request timeout.
    Raises:
        ChainUnreachable: when the endpoint does not answer ``eth_chainId``.
    """
    if rpc_url is None:
        from eth_tester import EthereumTester  # noqa: PLC0415 (py-evm is heavy: loaded only for the in-process chain)
        from web3 import EthereumTesterProvider  # noqa: PLC0415 (same)

        tester = EthereumTester()
        w3 = Web3(EthereumTesterProvider(tester))
        keys = tuple(k.to_hex() for k in tester.backend.account_keys)  # funded; keys[0] == IN_PROCESS_DEV_KEY
        return Chain(w3, "in-process", w3.eth.chain_id, keys)
    if not rpc_url.startswith(("http://", "https://")):
        raise ContractsError(f"rpc_url must be http(s)://host:port, got {rpc_url!r}")
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:  # requests/aiohttp connection errors differ by version
        raise ChainUnreachable(rpc_url, f"{type(exc).__name__}: {exc}") from None
    return Chain(w3, "rpc", chain_id, tuple(dev_keys or (ANVIL_DEV_KEY_0,)), rpc_url)
