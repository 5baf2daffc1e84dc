"""The BN254 optimal-ate multi-pairing on numba limb kernels (:mod:`proving._kernels.pairing_nb`).

Same algorithm and results as the plain-integer reference :mod:`proving.groth16.pairing`
(Miller-loop values are equal element for element; ``tests/proving/test_pairing_fast.py``
compares them, and py_ecc on a few cases), ~50-100x faster: ``e(P, Q)`` products for batched
Groth16 verification.

Data flow: G2 points are walked once into :class:`PreparedG2Array` (line coefficients of all
88 steps; key points cached with :func:`prepare_g2_cached`), G1 points are ``(n, 8)`` Montgomery
affine arrays (:func:`proving.curve.g1_to_affine_array`), the Miller loop returns a ``(12, 4)``
Montgomery Fq12 array, the final exponentiation runs on it in numba too.

Public API: :func:`prepare_g2_array`, :func:`prepare_g2_cached`, :func:`miller_loop_arrays`,
:func:`miller_each_arrays`, :func:`final_exponentiation_is_one`,
:func:`final_exponentiation_of_product`, :func:`miller_loop`,
:func:`pairing_product_is_one`, :func:`fq12_to_array`, :func:`fq12_from_array`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from proving._kernels import pairing_nb as _k
from proving.curve import G1Point, G2Point, g1_to_affine_array, g2_to_affine_array
from proving.errors import NotInSubgroup
from proving.field import FQ, from_mont, to_mont
from proving.groth16.pairing import F12_ONE, Fq12

#: Line coefficients per G2 point (65 doublings, 21 additions of 6x + 2, 2 Frobenius lines).
STEPS = _k.STEPS


@dataclass(frozen=True)
class PreparedG2Array:
    """Line coefficients of ``m`` G2 points: ``coeffs`` is ``(m, STEPS, 16)`` uint64 limbs
    (Montgomery): per step ``lambda`` (Fq2) then ``lambda xT - yT`` (Fq2)."""

    coeffs: np.ndarray


def prepare_g2_array(points: Sequence[G2Point] | np.ndarray, field: str = "q") -> PreparedG2Array:
    """Walk ``m`` G2 points (affine ints, or an ``(m, 16)`` Montgomery array) through the Miller
    loop together, one shared Fq inversion per step.

    Raises:
        NotInSubgroup: the walk met ``T = -R`` (only possible outside the order-r subgroup);
            the field is ``"<field>[i]"``. Points must be on the twist and not at infinity.
    """
    arr = points if isinstance(points, np.ndarray) else g2_to_affine_array(points)
    m = arr.shape[0]
    coeffs = np.empty((m, STEPS, 16), np.uint64)
    status = np.zeros(m, np.int8)
    if m:
        _k.walk_kernel(np.ascontiguousarray(arr), _k.STEP_OPS, coeffs, status)
    bad = np.flatnonzero(status)
    if bad.size:
        raise NotInSubgroup(f"{field}[{int(bad[0])}]")
    return PreparedG2Array(coeffs)


@lru_cache(maxsize=256)
def prepare_g2_cached(q: G2Point) -> PreparedG2Array:
    """:func:`prepare_g2_array` of one fixed point (cached: verification-key points)."""
    out = prepare_g2_array([q])
    out.coeffs.setflags(write=False)
    return out


def _rows(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64)


def miller_loop_arrays(g1: np.ndarray, coeffs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """The shared multi-Miller loop ``prod_i f_{Q_i}(P_i)`` as a ``(12, 4)`` Montgomery array.

    Args:
        g1: ``(n, 8)`` affine Montgomery G1 points, none at infinity (drop those pairs first).
        coeffs: ``(n, STEPS, 16)`` from :func:`prepare_g2_array` (row i pairs with ``g1[i]``).
        rows: the pair indices to include (default all).
    """
    out = np.empty((12, 4), np.uint64)
    rows = _rows(g1.shape[0]) if rows is None else np.asarray(rows, np.int64)
    _k.miller_kernel(np.ascontiguousarray(g1), coeffs, _k.STEP_OPS, rows, out)
    return out


def miller_each_arrays(g1: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Each pair's own Miller-loop value, ``(n, 12, 4)``."""
    out = np.empty((g1.shape[0], 12, 4), np.uint64)
    g1 = np.ascontiguousarray(g1)
    for i in range(g1.shape[0]):
        _k.miller_kernel(g1, coeffs, _k.STEP_OPS, np.array([i], np.int64), out[i])
    return out


def final_exponentiation_of_product(values: np.ndarray) -> np.ndarray:
    """``(prod_i values[i])^((q^12 - 1) / r)`` for ``(k, 12, 4)`` Montgomery Fq12 values (``k >= 1``)."""
    out = np.empty((12, 4), np.uint64)
    _k.final_exp_product_kernel(np.ascontiguousarray(values), out)
    return out


#: 1 of Fq12 as a ``(12, 4)`` Montgomery array.
F12_ONE_ARRAY = np.zeros((12, 4), np.uint64)
F12_ONE_ARRAY[0] = _k.FQ_ONE


def final_exponentiation_is_one(f: np.ndarray) -> bool:
    """Whether ``f^((q^12 - 1) / r) = 1`` for a ``(12, 4)`` value, or for the product of a
    ``(k, 12, 4)`` stack of values."""
    values = f.reshape(-1, 12, 4)
    return bool(np.array_equal(final_exponentiation_of_product(values), F12_ONE_ARRAY))


def final_exponentiation(f: np.ndarray) -> np.ndarray:
    """``f^((q^12 - 1) / r)`` on ``(12, 4)`` arrays."""
    return final_exponentiation_of_product(f.reshape(1, 12, 4))


def fq12_to_array(a: Fq12) -> np.ndarray:
    """Reference tower tuple -> ``(12, 4)`` Montgomery array."""
    return to_mont(FQ, [c for f6 in a for f2 in f6 for c in f2])


def fq12_from_array(x: np.ndarray) -> Fq12:
    """``(12, 4)`` Montgomery array -> reference tower tuple."""
    v = from_mont(FQ, np.ascontiguousarray(x))
    return tuple(tuple((v[6 * i + 2 * j], v[6 * i + 2 * j + 1]) for j in range(3)) for i in range(2))  # type: ignore[return-value]


def miller_loop(pairs: Sequence[tuple[G1Point, G2Point]]) -> Fq12:
    """The reference's :func:`proving.groth16.pairing.miller_loop` (same value) on the kernels.

    Args:
        pairs: affine, valid ``(P in G1, Q in G2)`` (py_ecc coefficient order); pairs with a
            point at infinity contribute 1.
    """
    live = [(p, q) for p, q in pairs if p is not None and q is not None]
    if not live:
        return F12_ONE
    prepared = prepare_g2_array([q for _, q in live])
    return fq12_from_array(miller_loop_arrays(g1_to_affine_array([p for p, _ in live]), prepared.coeffs))


def pairing(p: G1Point, q: G2Point) -> Fq12:
    """``e(P, Q)`` (equal to the reference's :func:`proving.groth16.pairing.pairing`)."""
    f = miller_loop([(p, q)])
    return fq12_from_array(final_exponentiation(fq12_to_array(f)))


def pairing_product_is_one(pairs: Sequence[tuple[G1Point, G2Point]]) -> bool:
    """``prod_i e(P_i, Q_i) == 1``: one shared Miller loop, one final exponentiation."""
    return final_exponentiation_is_one(fq12_to_array(miller_loop(pairs)))
