"""Revert decoding of the bindings and the Vault claim tree (pure: no chain)."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_hash.auto import keccak

from contracts.bindings import decode_revert, load_artifact, revert_data
from contracts.merkle import MerkleError, leaf_of, verify_values
from contracts.vault import ClaimTree


def test_custom_errors_error_string_and_panic_decode_by_name() -> None:
    abi = load_artifact("Settlement").abi
    data = keccak(b"NotOperator(address)")[:4] + abi_encode(["address"], ["0x" + "ab" * 20])
    name, args = decode_revert(abi, data)
    assert name == "NotOperator" and args[0].lower() == "0x" + "ab" * 20
    batch = b"\x07" * 32
    data = keccak(b"ChallengeWindowClosed(bytes32,uint64)")[:4] + abi_encode(["bytes32", "uint64"], [batch, 9])
    assert decode_revert(abi, data) == ("ChallengeWindowClosed", (batch, 9))
    assert decode_revert(abi, bytes.fromhex("08c379a0") + abi_encode(["string"], ["nope"])) == ("Error", ("nope",))
    assert decode_revert(abi, bytes.fromhex("4e487b71") + abi_encode(["uint256"], [0x11])) == ("Panic", (0x11,))
    assert decode_revert(abi, b"\xde\xad\xbe\xef") == ("", ())


def test_revert_data_is_found_in_web3_and_eth_tester_shapes_only() -> None:
    raw = keccak(b"NotOwner(address)")[:4] + bytes(32)

    class Web3Style(Exception):
        data = "0x" + raw.hex()

    assert revert_data(Web3Style("0x" + raw.hex(), "0x" + raw.hex())) == raw
    assert revert_data(Exception(f"execution reverted: {raw!r}")) == raw  # eth-tester TransactionFailed
    assert revert_data(Exception("insufficient funds for gas * price + value: address 0x" + "ab" * 20)) is None


def test_vault_errors_decode_and_claim_tree_is_a_standard_merkle_tree() -> None:
    abi = load_artifact("Vault").abi
    who = Account.create().address
    data = keccak(b"NothingToClaim(address,uint256,uint256)")[:4] + abi_encode(["address", "uint256", "uint256"],
                                                                               [who, 5, 5])
    assert decode_revert(abi, data) == ("NothingToClaim", (who, 5, 5))
    amounts = {Account.create().address: i * 10**18 for i in range(5)}
    tree = ClaimTree(amounts)
    assert tree.total_wei == sum(amounts.values())
    for address, wei in amounts.items():
        assert verify_values(tree.root, ["address", "uint256"], [address, wei], tree.proof(address.lower()))
        assert not verify_values(tree.root, ["address", "uint256"], [address, wei + 1], tree.proof(address))
    assert leaf_of(["address", "uint256"], [who, 1]) != leaf_of(["address", "uint256"], [who, 2])
    with pytest.raises(MerkleError):
        ClaimTree({})
    with pytest.raises(MerkleError):
        ClaimTree({who: -1})
    with pytest.raises(KeyError):
        tree.proof(who)
