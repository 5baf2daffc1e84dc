"""Merkle scheme: roots, proofs and verification equal npm ``@openzeppelin/merkle-tree``'s StandardMerkleTree."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from eth_account import Account
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.merkle import (MerkleError, build_tree, hash_leaf, hash_pair, leaf_of, merkle_root, process_proof,
                              verify_inclusion, verify_values)
from contracts.tools import npm_modules_dir

leaf_lists = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70)
SETTLEMENT_TYPES = ["bytes32", "bytes32", "bytes32"]  # Settlement leaf: (structHash, sigHash, proofCommitment)
VAULT_TYPES = ["address", "uint256"]  # Vault claim leaf: (account, cumulativeWei)

# Reads {"types": [...], "sets": [[value, ...], ...]} on stdin; prints, per set, the npm library's root and the
# proof of every value (in value order).
NODE_SCRIPT = """
const { StandardMerkleTree } = require(process.argv[2]);
let input = "";
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const { types, sets } = JSON.parse(input);
  const out = sets.map((values) => {
    const tree = StandardMerkleTree.of(values, types);
    return { root: tree.root, proofs: values.map((_, i) => tree.getProof(i)) };
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def npm_trees(tmp_path: Path, types: list[str], sets: list[list[list]]) -> list[dict]:
    """Run the npm StandardMerkleTree (node) over ``sets`` of leaf values."""
    node = shutil.which("node")
    library = npm_modules_dir() / "@openzeppelin" / "merkle-tree"
    if node is None or not library.exists():
        pytest.fail("node and npm @openzeppelin/merkle-tree are required: npm ci --prefix .npm-tools")
    script = tmp_path / "oz_tree.js"
    script.write_text(NODE_SCRIPT)
    proc = subprocess.run([node, str(script), str(library)], input=json.dumps({"types": types, "sets": sets}),
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(proc.stdout)


def hx(b: bytes) -> str:
    return "0x" + b.hex()


def assert_same_as_npm(types: list[str], sets: list[list[list]], npm: list[dict], decode) -> None:
    for values, expected in zip(sets, npm):
        tree = build_tree([leaf_of(types, decode(v)) for v in values])
        assert hx(tree.root) == expected["root"], (len(values), values)
        for i in range(len(values)):
            assert [hx(p) for p in tree.proof(i)] == expected["proofs"][i], (len(values), i)
            assert verify_values(tree.root, types, decode(values[i]), tree.proof(i))


def test_settlement_leaves_equal_npm_standard_merkle_tree(tmp_path: Path) -> None:
    rng = random.Random(12)
    sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 127] + [rng.randint(1, 300) for _ in range(8)]
    sets = [[[hx(rng.randbytes(32)) for _ in range(3)] for _ in range(n)] for n in sizes]
    sets.append([[hx(bytes(32))] * 3] * 3 + [[hx(b"\x01" * 32)] * 3])  # equal leaves kept, as in npm
    npm = npm_trees(tmp_path, SETTLEMENT_TYPES, sets)
    assert_same_as_npm(SETTLEMENT_TYPES, sets, npm, lambda v: [bytes.fromhex(x[2:]) for x in v])


def test_vault_claim_leaves_equal_npm_standard_merkle_tree(tmp_path: Path) -> None:
    rng = random.Random(7)
    sizes = [1, 2, 3, 5, 7, 10, 13, 64, 65, 199]
    sets = [[[Account.create().address, str(rng.choice([0, 1, rng.randrange(2**256), rng.randrange(10**21)]))]
             for _ in range(n)] for n in sizes]
    npm = npm_trees(tmp_path, VAULT_TYPES, sets)
    assert_same_as_npm(VAULT_TYPES, sets, npm, lambda v: [v[0], int(v[1])])


def test_hand_computed_vectors() -> None:
    a, b, c = sorted(hash_leaf(bytes([i]) * 32) for i in range(3))
    assert hash_leaf(b"x") == keccak(keccak(b"x"))
    assert hash_pair(a, b) == hash_pair(b, a) == keccak(min(a, b) + max(a, b))
    assert merkle_root([a]) == a and build_tree([a]).proof(0) == []
    # sorted leaves a < b < c sit at array indices 4, 3, 2; node 1 = H(nodes[3], nodes[4]) = H(b, a)
    assert merkle_root([c, a, b]) == hash_pair(hash_pair(b, a), c)  # not the old "promote the odd node" shape
    tree = build_tree([c, a, b])
    assert tree.proof(1) == [b, c] and tree.proof(0) == [hash_pair(a, b)] and tree.leaf(2) == b
    assert merkle_root([a, b, c]) == merkle_root([c, b, a])  # order-independent root


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
