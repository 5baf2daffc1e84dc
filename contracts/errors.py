"""Exceptions of the ``contracts`` package (one root, narrow subclasses with typed fields)."""

from __future__ import annotations


class ContractsError(Exception):
    """Root of every error raised by ``contracts`` (chain connection, artifacts, transactions)."""


class ChainUnreachable(ContractsError):
    """The RPC endpoint did not answer; ``rpc_url`` names it."""

    def __init__(self, rpc_url: str, cause: str) -> None:
        super().__init__(f"cannot reach the chain at {rpc_url}: {cause}; start a node (e.g. anvil) "
                         f"or pass a reachable --rpc-url")
        self.rpc_url = rpc_url


class ArtifactMissing(ContractsError):
    """No compiled artifact with that name; run ``python -m contracts.build``."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no artifact contracts/artifacts/{name}.json; run `python -m contracts.build`")
        self.name = name


class ContractReverted(ContractsError):
    """A call or transaction reverted with a decoded reason.

    Attributes:
        error_name: the Solidity custom error's name (``"NotOperator"``), ``"Error"`` for
            ``require(..., "msg")``, ``"Panic"`` for a panic code, ``""`` when undecodable.
        args: the error's arguments, decoded (bytes32 as ``bytes``, addresses checksummed).
        tx_hash: the 0x-hex transaction hash when a mined transaction reverted.
    """

    def __init__(self, error_name: str, args: tuple, tx_hash: str | None = None, raw: bytes = b"") -> None:
        shown = ", ".join("0x" + a.hex() if isinstance(a, bytes) else repr(a) for a in args)
        super().__init__(f"reverted: {error_name or '<no reason>'}({shown})" + (f" in tx {tx_hash}" if tx_hash else ""))
        self.error_name = error_name
        self.args_ = args
        self.tx_hash = tx_hash
        self.raw = raw

    @property
    def error_args(self) -> tuple:
        return self.args_
