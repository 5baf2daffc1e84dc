"""Merkle trees of settlement leaves, the same scheme as the ``Settlement`` contract.

Scheme (OpenZeppelin ``StandardMerkleTree`` leaves + ``MerkleProof`` verification, openzeppelin-contracts
v5 ``utils/cryptography/MerkleProof.sol`` and ``Hashes.commutativeKeccak256``):

* a leaf is ``keccak256(keccak256(preimage))`` — double hashing, so that no 64-byte internal node can be
  passed off as a leaf (second-preimage defence);
* an internal node is ``keccak256(min(a, b) || max(a, b))`` (sorted pair), so a proof is just the list of
  siblings from the leaf up, without left/right flags;
* layers are built left to right in leaf order; an odd node at the end of a layer is promoted unchanged.

All hashes are 32-byte ``bytes``. Leaves keep their insertion index (stored with each job).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from eth_hash.auto import keccak


class MerkleError(ValueError):
    """Bad input to a Merkle function (empty leaf list, index out of range, hash not 32 bytes)."""


def hash_leaf(preimage: bytes) -> bytes:
    """Leaf hash of ``preimage`` (abi-encoded leaf values): ``keccak256(keccak256(preimage))``."""
    return keccak(keccak(preimage))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """Commutative keccak256 of two 32-byte nodes (sorted pair)."""
    return keccak(a + b) if a < b else keccak(b + a)


@dataclass(frozen=True)
class MerkleTree:
    """A built tree: ``layers[0]`` are the leaf hashes, ``layers[-1] == (root,)``."""

    layers: tuple[tuple[bytes, ...], ...]

    @property
    def root(self) -> bytes:
        """The 32-byte root."""
        return self.layers[-1][0]

    @property
    def leaf_count(self) -> int:
        return len(self.layers[0])

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from leaf ``index`` to the root (a promoted odd node has no sibling).

        Raises:
            MerkleError: when ``index`` is not in ``[0, leaf_count)``.
        """
        if not 0 <= index < self.leaf_count:
            raise MerkleError(f"leaf index {index} out of range [0, {self.leaf_count})")
        siblings = []
        for layer in self.layers[:-1]:
            sibling = index ^ 1
            if sibling < len(layer):
                siblings.append(layer[sibling])
            index //= 2
        return siblings


def _check_hash(h: bytes, what: str) -> None:
    if not isinstance(h, (bytes, bytearray)) or len(h) != 32:
        raise MerkleError(f"{what} must be 32 bytes, got {h!r:.80}")


def build_tree(leaves: Sequence[bytes]) -> MerkleTree:
    """Build the tree over leaf hashes (already hashed with :func:`hash_leaf`), in the given order.

    Raises:
        MerkleError: for an empty list or a leaf that is not 32 bytes.
    """
    if not leaves:
        raise MerkleError("a Merkle tree needs at least one leaf")
    for i, leaf in enumerate(leaves):
        _check_hash(leaf, f"leaf {i}")
    layers = [tuple(bytes(x) for x in leaves)]
    while len(layers[-1]) > 1:
        prev = layers[-1]
        nxt = [hash_pair(prev[i], prev[i + 1]) for i in range(0, len(prev) - 1, 2)]
        if len(prev) % 2:
            nxt.append(prev[-1])
        layers.append(tuple(nxt))
    return MerkleTree(tuple(layers))


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root of :func:`build_tree` over ``leaves``."""
    return build_tree(leaves).root


def process_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by ``leaf`` and its sibling list (OpenZeppelin ``MerkleProof.processProof``)."""
    computed = bytes(leaf)
    for sibling in proof:
        computed = hash_pair(computed, bytes(sibling))
    return computed


def verify_inclusion(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
    """Whether ``leaf`` is in the tree of ``root`` per ``proof`` (same result as the contract's view)."""
    _check_hash(root, "root")
    _check_hash(leaf, "leaf")
    return process_proof(leaf, proof) == root
