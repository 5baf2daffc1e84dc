"""Merkle scheme: roots, proofs and verification (pure Python; the contract agrees in test_contract)."""

from __future__ import annotations

import os

import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.merkle import MerkleError, build_tree, hash_leaf, hash_pair, merkle_root, process_proof, verify_inclusion

leaf_lists = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70)


def test_hand_computed_vectors() -> None:
    a, b, c = (hash_leaf(bytes([i]) * 32) for i in range(3))
    assert hash_leaf(b"x") == keccak(keccak(b"x"))
    assert hash_pair(a, b) == hash_pair(b, a) == keccak(min(a, b) + max(a, b))
    assert merkle_root([a]) == a
    assert merkle_root([a, b, c]) == hash_pair(hash_pair(a, b), c)  # odd node promoted, not duplicated
    tree = build_tree([a, b, c])
    assert tree.proof(2) == [hash_pair(a, b)] and tree.proof(0) == [b, c]


@settings(max_examples=60, deadline=None)
@given(leaf_lists)
def test_every_leaf_proves_and_nothing_else_does(leaves: list[bytes]) -> None:
    tree = build_tree(leaves)
    for i, leaf in enumerate(leaves):
        proof = tree.proof(i)
        assert verify_inclusion(tree.root, leaf, proof)
        assert len(proof) <= max(1, (len(leaves) - 1).bit_length())
    outsider = os.urandom(32)
    assert not verify_inclusion(tree.root, outsider, tree.proof(0))
    if len(set(leaves)) > 1:
        flipped = bytes([leaves[0][0] ^ 1]) + leaves[0][1:]
        assert process_proof(flipped, tree.proof(0)) != tree.root


def test_bad_input_is_named() -> None:
    with pytest.raises(MerkleError, match="at least one leaf"):
        build_tree([])
    with pytest.raises(MerkleError, match="leaf 1 must be 32 bytes"):
        build_tree([bytes(32), b"short"])
    with pytest.raises(MerkleError, match="out of range"):
        build_tree([bytes(32)]).proof(1)
