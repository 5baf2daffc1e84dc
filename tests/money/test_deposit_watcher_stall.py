"""A chain node that times out is not a reorg: the deposit watcher's block-hash check raises (the service's chain
thread logs the stall and retries) instead of reporting "the chain is shorter", which would walk back and undo
applied Vault events while the node is merely paused (found by the RPC-pause work of issue 14)."""

from __future__ import annotations

import pytest
import requests
from web3.exceptions import BlockNotFound

from market.settlement.deposits import VaultWatcher


class _Eth:
    def __init__(self, exc: Exception | None, block: dict | None = None) -> None:
        self.exc, self.block = exc, block

    def get_block(self, number: int) -> dict:
        if self.exc is not None:
            raise self.exc
        return self.block or {}


def _watcher(exc: Exception | None, block: dict | None = None) -> VaultWatcher:
    w = VaultWatcher.__new__(VaultWatcher)  # only the block-hash check is under test
    w.w3 = type("W3", (), {"eth": _Eth(exc, block)})()
    return w


def test_a_missing_block_means_a_shorter_chain():
    assert _watcher(BlockNotFound("no block 9"))._canonical_hash(9) is None


@pytest.mark.parametrize("exc", [requests.exceptions.ReadTimeout("read timed out"), ConnectionError("refused"),
                                 TimeoutError()])
def test_a_timeout_is_raised_not_taken_for_a_reorg(exc):
    with pytest.raises(type(exc)):
        _watcher(exc)._canonical_hash(9)


def test_a_block_gives_its_hash():
    assert _watcher(None, {"hash": b"\x11" * 32})._canonical_hash(9) == "0x" + "11" * 32
