"""The batch-verification driver shared by the fast (``batch``) and reference (``batch_ref``) verifiers.

Random linear combination (Bellare, Garay, Rabin, "Fast Batch Verification for Modular
Exponentiation and Digital Signatures", EUROCRYPT 1998, the small-exponent test; applied to
Groth16 as in Groth's paper, section 6): each proof's equation is raised to an independent
random 128-bit odd ``r_i`` and the product is checked once; a false batch passes with
probability <= 2^-127. When the product fails, bisection over the proofs names the bad ones
with ``O(k log n)`` subset checks for ``k`` bad proofs.

The two verifiers differ only in their kernels, passed in as :class:`Kernels`.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from proving.errors import BatchVerificationFailed, PairingCheckFailed, ProvingError
from proving.groth16.keys import Proof, VerifyingKey

#: Bits of each random exponent r_i (soundness error 2^-(bits-1)).
RANDOMIZER_BITS = 128


@dataclass(frozen=True)
class Kernels:
    """One verifier's primitives.

    Attributes:
        screen: structural checks -> (well-formed positions, reasons of the others).
        prepare: (vk, publics, proofs, randomizers) -> a prepared batch.
        all_hold: the whole prepared batch's combined equation holds.
        subset_holds: the combined equation over the given positions of the prepared batch holds.
    """

    screen: Callable[[VerifyingKey, Sequence[Sequence[int]], Sequence[Proof]], tuple[list[int], dict[int, ProvingError]]]
    prepare: Callable[[VerifyingKey, list[Sequence[int]], list[Proof], list[int]], Any]
    all_hold: Callable[[Any], bool]
    subset_holds: Callable[[Any, Sequence[int]], bool]


def randomizers(n: int, seed: int | None) -> list[int]:
    """``n`` random odd ``RANDOMIZER_BITS``-bit exponents; ``seed`` fixes them (tests only: a prover who
    knows them can cheat)."""
    if seed is None:
        return [secrets.randbits(RANDOMIZER_BITS) | 1 for _ in range(n)]
    rng = random.Random(seed)
    return [rng.getrandbits(RANDOMIZER_BITS) | 1 for _ in range(n)]


def bisect(subset_holds: Callable[[Sequence[int]], bool], idx: list[int], known_bad: bool) -> list[int]:
    """Positions in ``idx`` whose proofs fail; ``known_bad`` skips re-checking a set known to fail."""
    if not known_bad and subset_holds(idx):
        return []
    if len(idx) == 1:
        return idx
    left, right = idx[: len(idx) // 2], idx[len(idx) // 2 :]
    bad_left = bisect(subset_holds, left, False)
    # if the left half is clean, the right half must hold the failure
    return bad_left + bisect(subset_holds, right, not bad_left)


def find_invalid(kernels: Kernels, vk: VerifyingKey, publics: Sequence[Sequence[int]], proofs: Sequence[Proof],
                 seed: int | None) -> dict[int, ProvingError]:
    """Every invalid proof of a batch, by position, with its reason (empty dict: all valid).

    Raises:
        MalformedProof: ``len(publics) != len(proofs)`` (from ``kernels.screen``).
    """
    good, reasons = kernels.screen(vk, publics, proofs)
    if good:
        r = randomizers(len(proofs), seed)
        batch = kernels.prepare(vk, [publics[i] for i in good], [proofs[i] for i in good], [r[i] for i in good])
        failing = [] if kernels.all_hold(batch) else bisect(lambda idx: kernels.subset_holds(batch, idx),
                                                             list(range(len(good))), True)
        for pos in failing:
            reasons[good[pos]] = PairingCheckFailed()
    return dict(sorted(reasons.items()))


def batch_verify(kernels: Kernels, vk: VerifyingKey, publics: Sequence[Sequence[int]], proofs: Sequence[Proof],
                 seed: int | None) -> None:
    """``None`` when every proof is valid.

    Raises:
        MalformedProof: ``len(publics) != len(proofs)``.
        BatchVerificationFailed: with ``bad_indices`` and per-index ``reasons``.
    """
    bad = find_invalid(kernels, vk, publics, proofs, seed)
    if bad:
        raise BatchVerificationFailed(sorted(bad), bad)
