"""Reference batched Groth16 verification on plain Python integers (the model of :mod:`proving.groth16.batch`).

Kept for tests: :mod:`proving.groth16.batch` runs the same checks on numba kernels and must
name the same bad proofs.

For proofs ``(A_i, B_i, C_i)`` on public inputs ``x_i`` and random 128-bit ``r_i`` chosen by the
verifier, all proofs are valid (up to probability ~2^-128 of a false accept) iff::

    prod_i e(-r_i A_i, B_i) * e((sum r_i) alpha, beta) * e(sum r_i vk_x_i, gamma)
        * e(sum r_i C_i, delta) = 1

which costs ``n + 3`` Miller loops and ONE final exponentiation instead of ``4n`` and ``n``
(:mod:`proving.groth16.pairing`)
(Bellare, Garay, Rabin, "Fast batch verification for modular exponentiation and digital
signatures", EUROCRYPT 1998; the Groth16 form as in arkworks/gnark batch verifiers and
Zcash's ``bellman::groth16::batch``). ``sum r_i vk_x_i`` is computed with ``n_public + 1``
scalar multiplications by folding the ``r_i`` into the public-input scalars first.

The whole batch is checked in one shared Miller loop (each ``B_i`` walked once, its line
coefficients kept). When it fails, :func:`find_invalid` bisects: the Miller loop of each
proof's own term is computed once from those coefficients and reused, and only the three key
terms are recomputed per subset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from proving.errors import MalformedProof, ProvingError
from proving.field import FR_MODULUS
from proving.groth16 import rlc
from proving.groth16.keys import Proof, VerifyingKey
from proving.groth16.pairing import (
    F12_ONE, Fq12, PreparedG2, f12_mul, final_exponentiation, miller_loop, prepare_g2, walk_g2,
)
from proving.groth16.points import check_proof, check_public_inputs, g1_lincomb, g1_mul, g1_neg

#: Bits of the random combination scalars (soundness error ~2^-128 per batch).
RANDOMIZER_BITS = rlc.RANDOMIZER_BITS


@dataclass
class _Batch:
    """Per-proof data of a batch: randomizers, ``-r_i A_i``, each ``B_i``'s line coefficients,
    and (computed only if the whole batch fails) each proof's own Miller-loop value."""

    vk: VerifyingKey
    publics: list[Sequence[int]]
    proofs: list[Proof]
    r: list[int]
    neg_ra: list
    prepared_b: list[PreparedG2]
    own_miller: list[Fq12] | None = None


def _prepare(vk: VerifyingKey, publics: list[Sequence[int]], proofs: list[Proof], r: list[int]) -> _Batch:
    neg_ra = [g1_neg(g1_mul(p.a, ri)) for p, ri in zip(proofs, r)]
    prepared = [walk_g2(p.b) for p in proofs]
    return _Batch(vk, publics, proofs, r, neg_ra, prepared)


def _key_terms(batch: _Batch, idx: Sequence[int]) -> list:
    """The three key pairs ``((sum r_i) alpha, beta), (sum r_i vk_x_i, gamma), (sum r_i C_i, delta)``."""
    vk, r = batch.vk, batch.r
    r_sum = sum(r[i] for i in idx) % FR_MODULUS
    scalars = [r_sum] + [sum(r[i] * batch.publics[i][j] for i in idx) % FR_MODULUS for j in range(vk.n_public)]
    vk_x = g1_lincomb(vk.ic, scalars)
    c_sum = g1_lincomb([batch.proofs[i].c for i in idx], [r[i] for i in idx])
    return [(g1_mul(vk.alpha_g1, r_sum), prepare_g2(vk.beta_g2)), (vk_x, prepare_g2(vk.gamma_g2)),
            (c_sum, prepare_g2(vk.delta_g2))]


def _all_hold(batch: _Batch) -> bool:
    """The whole batch in ONE shared Miller loop (n + 3 pairs) and one final exponentiation."""
    idx = range(len(batch.proofs))
    pairs = [(batch.neg_ra[i], batch.prepared_b[i]) for i in idx] + _key_terms(batch, idx)
    return final_exponentiation(miller_loop(pairs)) == F12_ONE


def _subset_holds(batch: _Batch, idx: Sequence[int]) -> bool:
    """The combined equation over the proofs at positions ``idx`` (bisection), reusing each
    proof's own Miller-loop value (computed once, on the first failing batch)."""
    if batch.own_miller is None:
        batch.own_miller = [miller_loop([(a, b)]) for a, b in zip(batch.neg_ra, batch.prepared_b)]
    acc = miller_loop(_key_terms(batch, idx))
    for i in idx:
        acc = f12_mul(acc, batch.own_miller[i])
    return final_exponentiation(acc) == F12_ONE




def _screen(vk: VerifyingKey, publics: Sequence[Sequence[int]], proofs: Sequence[Proof]) -> tuple[list[int], dict[int, ProvingError]]:
    """Structural checks of every proof; returns the well-formed positions and the reasons of the others."""
    if len(publics) != len(proofs):
        raise MalformedProof("publics", f"{len(publics)} public-input lists for {len(proofs)} proofs; pass one per proof")
    good, reasons = [], {}
    for i, (x, p) in enumerate(zip(publics, proofs)):
        try:
            check_public_inputs(vk, x)
            check_proof(p)
            good.append(i)
        except ProvingError as e:
            reasons[i] = e
    return good, reasons




#: This verifier's primitives for the shared driver (:mod:`proving.groth16.rlc`).
KERNELS = rlc.Kernels(_screen, _prepare, _all_hold, _subset_holds)


def find_invalid(
    vk: VerifyingKey, publics: Sequence[Sequence[int]], proofs: Sequence[Proof], *, seed: int | None = None
) -> dict[int, ProvingError]:
    """Every invalid proof of a batch, by position, with its reason (empty dict: all valid).

    Malformed proofs are named by their structural error; the rest are checked together and,
    if the combination fails, bisected (``O(k log n)`` subset checks for ``k`` bad proofs).
    ``seed`` fixes the randomizers (tests only: a prover who knows them can cheat).

    Raises:
        MalformedProof: ``len(publics) != len(proofs)``.
    """
    return rlc.find_invalid(KERNELS, vk, publics, proofs, seed)


def batch_verify(
    vk: VerifyingKey, publics: Sequence[Sequence[int]], proofs: Sequence[Proof], *, seed: int | None = None
) -> None:
    """Verify many proofs under one key at once; ``None`` when all are valid.

    Args:
        vk: the verification key shared by all proofs.
        publics: one public-input list per proof.
        proofs: the proofs.
        seed: fixes the random combination (tests only).

    Raises:
        MalformedProof: ``len(publics) != len(proofs)``.
        BatchVerificationFailed: with ``bad_indices`` (found by bisection) and per-index ``reasons``.
    """
    rlc.batch_verify(KERNELS, vk, publics, proofs, seed)
