"""Batched Groth16 verification by random linear combination, with bisection to the bad proofs.

For proofs ``(A_i, B_i, C_i)`` on public inputs ``x_i`` and random 128-bit ``r_i`` chosen by the
verifier, all proofs are valid (up to probability ~2^-128 of a false accept) iff::

    prod_i e(-r_i A_i, B_i) * e((sum r_i) alpha, beta) * e(sum r_i vk_x_i, gamma)
        * e(sum r_i C_i, delta) = 1

which costs ``n + 3`` Miller loops and ONE final exponentiation instead of ``4n`` and ``n``
(Bellare, Garay, Rabin, "Fast batch verification for modular exponentiation and digital
signatures", EUROCRYPT 1998; the Groth16 form as in arkworks/gnark batch verifiers and
Zcash's ``bellman::groth16::batch``). ``sum r_i vk_x_i`` is computed with ``n_public + 1``
scalar multiplications by folding the ``r_i`` into the public-input scalars first.

The whole batch is checked in one shared Miller loop (each ``B_i`` walked once, its line
coefficients kept). When it fails, :func:`find_invalid` bisects: the Miller loop of each
proof's own term is computed once from those coefficients and reused, and only the three key
terms are recomputed per subset.

Everything after the structural checks runs on numba kernels (:mod:`proving.groth16.pairing_fast`,
:mod:`proving._kernels.pairing_nb`): the G2 subgroup tests of all ``B_i`` (:func:`proving._kernels.pairing_nb.g2_in_subgroup`),
the ``r_i A_i`` (128-bit double-and-add), the two multi-scalar sums of the key terms
(one shared double-and-add each), the walks of all ``B_i`` sharing one inversion per step,
the multi-Miller loop and the final exponentiation. :mod:`proving.groth16.batch_ref` is the
same algorithm on Python integers (the reference; tests compare the bad proofs they name).
Measured here (2-core AMD EPYC, shared; 91-round MiMC proofs; median wall time,
warm numba cache): batches of 1 / 8 / 32 / 64 proofs take 3.5 / 7.0 / 18.6 / 37 ms
(0.58 ms per proof from n = 32) against 29 / 97 / 308 / 614 ms for ``batch_ref``; naming 1 bad
proof of 64 takes 85 ms against 1.1 s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from proving._kernels import pairing_nb as _k
from proving.curve import g1_batch_to_affine, g1_to_affine_array, g2_to_affine_array
from proving.errors import (
    MalformedProof, NotInSubgroup, PointNotOnCurve, ProvingError,
)
from proving.field import FR_MODULUS, to_limbs
from proving.groth16 import rlc
from proving.groth16.keys import Proof, VerifyingKey
from proving.groth16.pairing_fast import (
    final_exponentiation_is_one, miller_each_arrays, miller_loop_arrays, prepare_g2_array,
    prepare_g2_cached,
)
from proving.groth16.points import B2, _check_fq, _fq2_mul, check_g1, check_public_inputs, g1_neg

#: Bits of the random combination scalars (soundness error ~2^-128 per batch).
RANDOMIZER_BITS = rlc.RANDOMIZER_BITS
Q = _k.Q


@dataclass
class _Batch:
    """Per-proof data of a batch: randomizers, ``-r_i A_i`` (``(n, 8)`` affine Montgomery),
    each ``B_i``'s line coefficients ``(n, STEPS, 16)``, and (computed only if the whole batch
    fails) each proof's own Miller-loop value ``(n, 12, 4)``."""

    vk: VerifyingKey
    publics: list[Sequence[int]]
    proofs: list[Proof]
    r: list[int]
    neg_ra: np.ndarray
    coeffs: np.ndarray
    own_miller: np.ndarray | None = None


def _g1_mul_affine(points: np.ndarray, scalars: Sequence[int]) -> np.ndarray:
    jac = np.empty((points.shape[0], 12), np.uint64)
    _k.g1_mul_kernel(points, to_limbs([k % FR_MODULUS for k in scalars]), jac)
    return g1_batch_to_affine(jac)


def _prepare(vk: VerifyingKey, publics: list[Sequence[int]], proofs: list[Proof], r: list[int]) -> _Batch:
    neg_a = g1_to_affine_array([g1_neg(p.a) for p in proofs])
    coeffs = prepare_g2_array(g2_to_affine_array([p.b for p in proofs]), "proof.b").coeffs
    return _Batch(vk, publics, proofs, r, _g1_mul_affine(neg_a, r), coeffs)


def _key_terms(batch: _Batch, idx: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The three key pairs ``((sum r_i) alpha, beta), (sum r_i vk_x_i, gamma), (sum r_i C_i, delta)``
    as ``(3, 8)`` affine G1 points and ``(3, STEPS, 16)`` line coefficients."""
    vk, r = batch.vk, batch.r
    r_sum = sum(r[i] for i in idx) % FR_MODULUS
    scalars = [r_sum] + [sum(r[i] * batch.publics[i][j] for i in idx) % FR_MODULUS for j in range(vk.n_public)]
    jac = np.empty((3, 12), np.uint64)
    _k.g1_lincomb_kernel(g1_to_affine_array([vk.alpha_g1]), to_limbs([r_sum]), jac[0:1])
    _k.g1_lincomb_kernel(g1_to_affine_array(vk.ic), to_limbs(scalars), jac[1:2])
    _k.g1_lincomb_kernel(g1_to_affine_array([batch.proofs[i].c for i in idx]), to_limbs([r[i] for i in idx]), jac[2:3])
    coeffs = np.concatenate([prepare_g2_cached(q).coeffs for q in (vk.beta_g2, vk.gamma_g2, vk.delta_g2)])
    return g1_batch_to_affine(jac), coeffs


def _live(g1: np.ndarray) -> np.ndarray:
    """Indices of the rows that are not the point at infinity (all-zero rows)."""
    return np.flatnonzero(g1.any(axis=1)).astype(np.int64)


def _all_hold(batch: _Batch) -> bool:
    """The whole batch in ONE shared Miller loop (n + 3 pairs) and one final exponentiation."""
    key_g1, key_coeffs = _key_terms(batch, range(len(batch.proofs)))
    g1 = np.concatenate([batch.neg_ra, key_g1])
    coeffs = np.concatenate([batch.coeffs, key_coeffs])
    return final_exponentiation_is_one(miller_loop_arrays(g1, coeffs, _live(g1)))


def _subset_holds(batch: _Batch, idx: Sequence[int]) -> bool:
    """The combined equation over the proofs at positions ``idx`` (bisection), reusing each
    proof's own Miller-loop value (computed once, on the first failing batch)."""
    if batch.own_miller is None:
        batch.own_miller = miller_each_arrays(batch.neg_ra, batch.coeffs)
    key_g1, key_coeffs = _key_terms(batch, idx)
    key = miller_loop_arrays(key_g1, key_coeffs, _live(key_g1))
    return final_exponentiation_is_one(np.concatenate([key[None], batch.own_miller[list(idx)]]))




def _check_g2_on_curve(field: str, p) -> None:
    """:func:`proving.groth16.points.check_g2` without the subgroup test (done in a batch after)."""
    if p is None:
        raise MalformedProof(field, "point at infinity is not allowed here")
    if not (isinstance(p, (tuple, list)) and len(p) == 2
            and all(isinstance(c, (tuple, list)) and len(c) == 2 for c in p)):
        raise MalformedProof(field, "expected a G2 point ((x_c0, x_c1), (y_c0, y_c1))")
    for name, c in (("x", p[0]), ("y", p[1])):
        _check_fq(f"{field}.{name}.c0", c[0])
        _check_fq(f"{field}.{name}.c1", c[1])
    x, y = tuple(p[0]), tuple(p[1])
    lhs, rhs = _fq2_mul(y, y), _fq2_mul(_fq2_mul(x, x), x)
    if (lhs[0] - rhs[0] - B2[0]) % Q or (lhs[1] - rhs[1] - B2[1]) % Q:
        raise PointNotOnCurve(field)


def _screen(vk: VerifyingKey, publics: Sequence[Sequence[int]], proofs: Sequence[Proof]) -> tuple[list[int], dict[int, ProvingError]]:
    """Structural checks of every proof (those of :func:`proving.groth16.points.check_proof`, in
    its order, the G2 subgroup tests of all ``B_i`` in one kernel call); returns the
    well-formed positions and the reasons of the others."""
    if len(publics) != len(proofs):
        raise MalformedProof("publics", f"{len(publics)} public-input lists for {len(proofs)} proofs; pass one per proof")
    on_curve, reasons = [], {}
    for i, (x, p) in enumerate(zip(publics, proofs)):
        try:
            check_public_inputs(vk, x)
            if not isinstance(p, Proof):
                raise MalformedProof("proof", f"expected a Proof, got {type(p).__name__}")
            check_g1("proof.a", p.a)
            check_g1("proof.c", p.c)
            _check_g2_on_curve("proof.b", p.b)
            on_curve.append(i)
        except ProvingError as e:
            reasons[i] = e
    in_group = np.zeros(len(on_curve), np.bool_)
    if on_curve:
        _k.g2_subgroup_kernel(g2_to_affine_array([proofs[i].b for i in on_curve]), in_group)
    good = []
    for i, ok in zip(on_curve, in_group):
        if ok:
            good.append(i)
        else:
            reasons[i] = NotInSubgroup("proof.b")
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
