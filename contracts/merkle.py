"""Merkle trees equal to OpenZeppelin ``StandardMerkleTree`` (npm ``@openzeppelin/merkle-tree`` 1.x).

Scheme (``@openzeppelin/merkle-tree`` ``core.ts`` / ``standard.ts``; verified on chain by OpenZeppelin
Contracts 5 ``MerkleProof`` with ``Hashes.commutativeKeccak256``):

* a leaf is ``keccak256(keccak256(abi.encode(values)))`` — double hashing, so that no 64-byte internal node
  can be passed off as a leaf (second-preimage defence); :func:`hash_leaf` takes the abi encoding,
  :func:`leaf_of` the values and their Solidity types;
* the leaf hashes are **sorted** ascending (as big-endian 256-bit numbers) and laid out as a complete binary
  tree in an array of ``2n - 1`` nodes: leaf ``k`` of the sorted list sits at array index ``2n - 2 - k``,
  node ``i`` has children ``2i + 1`` and ``2i + 2``, the root is index 0;
* an internal node is ``keccak256(min(a, b) || max(a, b))`` (sorted pair), so a proof is just the list of
  sibling hashes from the leaf up, without left/right flags.

A tree built from the same leaves in any order has the same root; :meth:`MerkleTree.proof` takes the index of
a leaf in the list given to :func:`build_tree` (what StandardMerkleTree calls the value index), so callers keep
their own leaf order. All hashes are 32-byte ``bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from eth_abi import encode as abi_encode
from eth_hash.auto import keccak


class MerkleError(ValueError):
    """Bad input to a Merkle function (empty leaf list, index out of range, hash not 32 bytes)."""


def hash_leaf(preimage: bytes) -> bytes:
    """Leaf hash of ``preimage`` (the abi-encoded leaf values): ``keccak256(keccak256(preimage))``."""
    return keccak(keccak(preimage))


def leaf_of(types: Sequence[str], values: Sequence[Any]) -> bytes:
    """StandardMerkleTree leaf hash of ``values`` of Solidity ``types``: ``keccak256(keccak256(abi.encode(...)))``.

    Example: ``leaf_of(["address", "uint256"], [account, cumulative_wei])`` (the Vault's claim leaves).
    """
    return hash_leaf(abi_encode(list(types), list(values)))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """Commutative keccak256 of two 32-byte nodes (sorted pair)."""
    return keccak(a + b) if a < b else keccak(b + a)


@dataclass(frozen=True)
class MerkleTree:
    """A built tree.

    Attributes:
        nodes: the ``2n - 1`` node hashes in StandardMerkleTree array order (``nodes[0]`` is the root).
        tree_index: for each input leaf (in :func:`build_tree` order) its index in ``nodes``.
    """

    nodes: tuple[bytes, ...]
    tree_index: tuple[int, ...]

    @property
    def root(self) -> bytes:
        """The 32-byte root (StandardMerkleTree ``root``)."""
        return self.nodes[0]

    @property
    def leaf_count(self) -> int:
        return len(self.tree_index)

    def leaf(self, index: int) -> bytes:
        """The hash of input leaf ``index``."""
        self._check(index)
        return self.nodes[self.tree_index[index]]

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from input leaf ``index`` up to the root (StandardMerkleTree ``getProof(index)``).

        Raises:
            MerkleError: when ``index`` is not in ``[0, leaf_count)``.
        """
        self._check(index)
        i = self.tree_index[index]
        siblings = []
        while i > 0:
            siblings.append(self.nodes[i + 1 if i % 2 else i - 1])
            i = (i - 1) // 2
        return siblings

    def _check(self, index: int) -> None:
        if not 0 <= index < self.leaf_count:
            raise MerkleError(f"leaf index {index} out of range [0, {self.leaf_count})")


def _check_hash(h: bytes, what: str) -> None:
    if not isinstance(h, (bytes, bytearray)) or len(h) != 32:
        raise MerkleError(f"{what} must be 32 bytes, got {h!r:.80}")


def build_tree(leaves: Sequence[bytes]) -> MerkleTree:
    """Build the StandardMerkleTree over leaf hashes (already hashed, e.g. with :func:`leaf_of`).

    Equal leaves are kept (each gets its own position), as in the npm library. Cost: ``n - 1`` keccaks.
    Raises:
        MerkleError: for an empty list or a leaf that is not 32 bytes.
    """
    if not leaves:
        raise MerkleError("a Merkle tree needs at least one leaf")
    for i, leaf in enumerate(leaves):
        _check_hash(leaf, f"leaf {i}")
    n = len(leaves)
    order = sorted(range(n), key=lambda i: bytes(leaves[i]))  # stable, as Array.prototype.sort
    nodes: list[bytes] = [b""] * (2 * n - 1)
    tree_index = [0] * n
    for k, i in enumerate(order):
        tree_index[i] = 2 * n - 2 - k
        nodes[2 * n - 2 - k] = bytes(leaves[i])
    for i in range(n - 2, -1, -1):
        nodes[i] = hash_pair(nodes[2 * i + 1], nodes[2 * i + 2])
    return MerkleTree(tuple(nodes), tuple(tree_index))


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
    """Whether the leaf hash ``leaf`` is in the tree of ``root`` per ``proof`` (``MerkleProof.verify``).

    This takes a leaf *hash*; an internal node with its shorter proof also passes here. On chain,
    ``Settlement.verifyInclusion`` and ``Vault.claim`` take the leaf values and hash them twice themselves,
    which rules that out: verify from values with :func:`verify_values` when the input is untrusted.
    """
    _check_hash(root, "root")
    _check_hash(leaf, "leaf")
    return process_proof(leaf, proof) == root


def verify_values(root: bytes, types: Sequence[str], values: Sequence[Any], proof: Sequence[bytes]) -> bool:
    """Whether the leaf of ``values`` (of Solidity ``types``) is in the tree of ``root`` (StandardMerkleTree.verify)."""
    return verify_inclusion(root, leaf_of(types, values), proof)
