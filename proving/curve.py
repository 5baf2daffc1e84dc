"""BN254 G1 and G2 on numba limb arrays: Jacobian arithmetic, batch affine conversion.

Curves (EIP-196/197): G1 ``y^2 = x^3 + 3`` over Fq; G2 the sextic twist
``y^2 = x^3 + 3/(9 + u)`` over Fq2 = Fq[u]/(u^2 + 1). Formulas and array layouts are in
:mod:`proving._kernels.ec`: G1 affine ``(n, 8)`` / Jacobian ``(n, 12)``, G2 affine ``(n, 16)`` /
Jacobian ``(n, 24)``, ``uint64`` limbs in Montgomery form; an affine row of zeros is the point
at infinity, a Jacobian row with ``Z = 0`` too.

Python-facing points (:data:`G1Point`, :data:`G2Point`), the convention every module of
``proving`` shares:

* A G1 point is an affine ``(x, y)`` tuple of Fq ints in standard (non-Montgomery) form,
  ``0 <= x < q``; the point at infinity is ``None``.
* A G2 point is an affine ``((x_c0, x_c1), (y_c0, y_c1))`` tuple: Fq2 element ``c0 + c1*u``
  in py_ecc's coefficient order (also snarkjs JSON's order; the EVM precompiles and the
  Solidity verifier use the reverse, ``(c1, c0)``). Infinity is ``None``.
* Scalars (witness values, randomness) are Fr ints.

Batch affine conversion uses one field inversion for the whole array (Montgomery's trick).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, TypeAlias

import numpy as np
from numba import njit, prange

from proving._kernels import ec
from proving._kernels.fields import FQ_INV, FQ_ONE, FQ_P, FQ_PM2, fq2_mul, fq2_sqr, fq_add, fq_mul
from proving._kernels.limbs import batch_inverse_kernel, eq, is_zero, load, store
from proving.field import FQ, FR, FieldError, from_mont, to_mont

#: An affine G1 point ``(x, y)`` (Fq ints), ``None`` for the point at infinity.
G1Point: TypeAlias = Optional[tuple[int, int]]
#: An affine G2 point ``((x_c0, x_c1), (y_c0, y_c1))`` (Fq2 as ``c0 + c1*u``), ``None`` for infinity.
G2Point: TypeAlias = Optional[tuple[tuple[int, int], tuple[int, int]]]
#: A finite affine G2 point (a :data:`G2Point` that is not ``None``).
G2Affine: TypeAlias = tuple[tuple[int, int], tuple[int, int]]


def g2_affine(p: G2Point | Sequence[Sequence[int]]) -> G2Affine:
    """``((x0, x1), (y0, y1))`` of a finite G2 point as int tuples (points read from JSON may
    hold lists; tuples hash, so the result can key a cache).

    Raises:
        FieldError: ``p`` is the point at infinity, which has no affine coordinates.
    """
    if p is None:
        raise FieldError("p", "the G2 point at infinity has no affine coordinates")
    (x0, x1), (y0, y1) = p
    return ((x0, x1), (y0, y1))


# ---------------------------------------------------------------- curve equations ----

_Q = FQ.modulus
#: G1 curve coefficient: ``y^2 = x^3 + 3`` (EIP-196).
G1_B = 3
#: G2 twist coefficient ``b' = 3 / (9 + u)`` (EIP-197) as ``(c0, c1)``: ``1/(9+u) = (9-u)/82``.
G2_B = (27 * pow(82, -1, _Q) % _Q, -3 * pow(82, -1, _Q) % _Q)


def g1_on_curve(x: int, y: int) -> bool:
    """Whether ``(x, y)`` (Fq ints in ``[0, q)``) satisfies ``y^2 = x^3 + 3``."""
    return (y * y - x * x * x - G1_B) % _Q == 0


def g2_on_curve(x: tuple[int, int], y: tuple[int, int]) -> bool:
    """Whether ``(x, y)`` (Fq2 as ``(c0, c1)``, ``u^2 = -1``) satisfies ``y^2 = x^3 + b'``.

    Checks the curve equation only; subgroup membership is the verifier's check
    (:func:`proving.groth16.points.check_g2`).
    """
    x0, x1 = x
    y0, y1 = y
    xx0, xx1 = x0 * x0 - x1 * x1, 2 * x0 * x1
    x30, x31 = xx0 * x0 - xx1 * x1, xx0 * x1 + xx1 * x0
    return ((y0 * y0 - y1 * y1 - x30 - G2_B[0]) % _Q == 0
            and (2 * y0 * y1 - x31 - G2_B[1]) % _Q == 0)


# ---------------------------------------------------------------- conversions ----

def g1_to_affine_array(points: Sequence[G1Point]) -> np.ndarray:
    """G1 points (``(x, y)`` ints or None) -> ``(n, 8)`` Montgomery affine array (None -> zeros)."""
    flat: list[int] = []
    for p in points:
        flat.extend((0, 0) if p is None else p)
    return to_mont(FQ, flat).reshape(-1, 8) if flat else np.zeros((0, 8), np.uint64)


def g1_from_affine_array(arr: np.ndarray) -> list[G1Point]:
    """Inverse of :func:`g1_to_affine_array`."""
    vals = from_mont(FQ, np.ascontiguousarray(arr).reshape(-1, 4))
    return [None if vals[i] == 0 and vals[i + 1] == 0 else (vals[i], vals[i + 1])
            for i in range(0, len(vals), 2)]


def g2_to_affine_array(points: Sequence[G2Point]) -> np.ndarray:
    """G2 points (``((x0, x1), (y0, y1))`` or None) -> ``(n, 16)`` Montgomery affine array."""
    flat: list[int] = []
    for p in points:
        flat.extend((0, 0, 0, 0) if p is None else (p[0][0], p[0][1], p[1][0], p[1][1]))
    return to_mont(FQ, flat).reshape(-1, 16) if flat else np.zeros((0, 16), np.uint64)


def g2_from_affine_array(arr: np.ndarray) -> list[G2Point]:
    """Inverse of :func:`g2_to_affine_array`."""
    v = from_mont(FQ, np.ascontiguousarray(arr).reshape(-1, 4))
    out: list[G2Point] = []
    for i in range(0, len(v), 4):
        out.append(None if not any(v[i:i + 4]) else ((v[i], v[i + 1]), (v[i + 2], v[i + 3])))
    return out


# ---------------------------------------------------------------- Montgomery point arrays ----

#: ``b`` of each curve in Montgomery form, for the array checks below.
_G1_B_MONT = tuple(np.uint64(int(v)) for v in to_mont(FQ, [G1_B])[0])
_G2_B_MONT = tuple(tuple(np.uint64(int(v)) for v in row) for row in to_mont(FQ, list(G2_B)))


@njit(cache=True)
def _canonical(row, off):
    """Whether the 4 limbs at ``row[off:off+4]`` encode an integer below q."""
    for k in range(3, -1, -1):
        if row[off + k] < FQ_P[k]:
            return True
        if row[off + k] > FQ_P[k]:
            return False
    return False  # equal to q


@njit(cache=True)
def _first_bad_point(arr, g2, b1, b2):
    """(index, reason) of the first invalid row of an ``(n, 8)`` G1 or ``(n, 16)`` G2 Montgomery affine
    array, ``(-1, 0)`` when all are valid. reason 1: a coordinate >= q; 2: off the curve. An all-zero row is
    the point at infinity."""
    width = arr.shape[1]
    for i in range(arr.shape[0]):
        row = arr[i]
        zero = True
        for k in range(width):
            if row[k] != 0:
                zero = False
                break
        if zero:
            continue
        for off in range(0, width, 4):
            if not _canonical(row, off):
                return i, 1
        if not g2:
            x = (row[0], row[1], row[2], row[3])
            y = (row[4], row[5], row[6], row[7])
            lhs = fq_mul(y, y)
            rhs = fq_add(fq_mul(fq_mul(x, x), x), b1)
            if not eq(lhs, rhs):
                return i, 2
        else:
            x2 = ((row[0], row[1], row[2], row[3]), (row[4], row[5], row[6], row[7]))
            y2 = ((row[8], row[9], row[10], row[11]), (row[12], row[13], row[14], row[15]))
            lhs2 = fq2_sqr(y2)
            rhs2 = fq2_mul(fq2_sqr(x2), x2)
            if not (eq(lhs2[0], fq_add(rhs2[0], b2[0])) and eq(lhs2[1], fq_add(rhs2[1], b2[1]))):
                return i, 2
    return -1, 0


def first_invalid_point(arr: np.ndarray, g2: bool) -> tuple[int, str]:
    """Check an ``(n, 8)`` G1 / ``(n, 16)`` G2 Montgomery affine array (the layout of a snarkjs zkey and of
    :func:`g1_to_affine_array`): every coordinate below q and every non-zero row on its curve
    (``y^2 = x^3 + 3``, resp. the twist ``y^2 = x^3 + 3/(9+u)``, EIP-196/197). Subgroup membership is not
    checked (the verifier's job). Returns ``(-1, "")`` when all rows are valid, else the first bad row's index
    and what is wrong; O(n) in one compiled pass."""
    width = 16 if g2 else 8
    if arr.dtype != np.uint64 or arr.ndim != 2 or arr.shape[1] != width:
        raise FieldError("arr", f"expected an (n, {width}) uint64 array, got {arr.dtype} {arr.shape}")
    i, why = _first_bad_point(arr, g2, _G1_B_MONT, _G2_B_MONT)
    return int(i), ("" if i < 0 else "coordinate is not a canonical Montgomery Fq encoding (>= q)" if why == 1
                    else ("G2 point is not on the twist curve" if g2 else "G1 point is not on the curve"))


class MontPoints(Sequence):
    """An immutable sequence of affine points backed by their Montgomery limb array (``(n, 8)`` G1 or
    ``(n, 16)`` G2 uint64, infinity = zeros) — what a zkey stores, byte for byte. Items convert on access
    (``G1Point`` / ``G2Point`` ints), the whole list once on iteration; :attr:`mont` hands the array to the
    numba prover with no conversion at all. Equal to a list of the same points.
    """

    __slots__ = ("mont", "g2", "_list")

    def __init__(self, mont: np.ndarray, g2: bool) -> None:
        self.mont = mont
        self.g2 = g2
        self._list: list | None = None

    def __len__(self) -> int:
        return int(self.mont.shape[0])

    def _decode(self, arr: np.ndarray) -> list:
        return g2_from_affine_array(arr) if self.g2 else g1_from_affine_array(arr)

    def tolist(self) -> list:
        """All points as ints (decoded once, then cached)."""
        if self._list is None:
            self._list = self._decode(self.mont) if len(self) else []
        return self._list

    def __getitem__(self, i):
        if self._list is not None or isinstance(i, slice):
            return self.tolist()[i]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(i)
        i %= n
        return self._decode(self.mont[i:i + 1])[0]

    def __iter__(self):
        return iter(self.tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MontPoints):
            return self.g2 == other.g2 and np.array_equal(self.mont, other.mont)
        if isinstance(other, (list, tuple)):
            return self.tolist() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MontPoints({len(self)} {'G2' if self.g2 else 'G1'} points)"


# ---------------------------------------------------------------- batch affine ----

@njit(cache=True)
def _g1_batch_to_affine(jac, out):
    n = jac.shape[0]
    zs = np.empty((n, 4), dtype=np.uint64)
    for i in range(n):
        store(zs, i, (jac[i, 8], jac[i, 9], jac[i, 10], jac[i, 11]))
    batch_inverse_kernel(zs, zs, FQ_PM2, FQ_ONE, FQ_P, FQ_INV)
    for i in range(n):
        zi = load(zs, i)
        if is_zero(zi):
            for k in range(8):
                out[i, k] = 0
            continue
        p = ec.g1_load_jac(jac, i)
        zi2 = fq_mul(zi, zi)
        x = fq_mul(p[0], zi2)
        y = fq_mul(p[1], fq_mul(zi2, zi))
        for k in range(4):
            out[i, k] = x[k]
            out[i, 4 + k] = y[k]


@njit(cache=True)
def _g2_batch_to_affine(jac, out):
    n = jac.shape[0]
    # Fq2 inverse of z = conj(z) / norm(z): batch-invert the Fq norms.
    norms = np.empty((n, 4), dtype=np.uint64)
    for i in range(n):
        z0 = (jac[i, 16], jac[i, 17], jac[i, 18], jac[i, 19])
        z1 = (jac[i, 20], jac[i, 21], jac[i, 22], jac[i, 23])
        store(norms, i, ec.fq_add(fq_mul(z0, z0), fq_mul(z1, z1)))
    batch_inverse_kernel(norms, norms, FQ_PM2, FQ_ONE, FQ_P, FQ_INV)
    for i in range(n):
        ni = load(norms, i)
        if is_zero(ni):
            for k in range(16):
                out[i, k] = 0
            continue
        p = ec.g2_load_jac(jac, i)
        zi = (fq_mul(p[2][0], ni), ec.fq_neg(fq_mul(p[2][1], ni)))
        zi2 = fq2_sqr(zi)
        x = fq2_mul(p[0], zi2)
        y = fq2_mul(p[1], fq2_mul(zi2, zi))
        for k in range(4):
            out[i, k] = x[0][k]
            out[i, 4 + k] = x[1][k]
            out[i, 8 + k] = y[0][k]
            out[i, 12 + k] = y[1][k]


def _check(arr: np.ndarray, width: int, name: str) -> np.ndarray:
    if arr.dtype != np.uint64 or arr.ndim != 2 or arr.shape[1] != width:
        raise FieldError(name, f"expected an (n, {width}) uint64 array, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr)


def g1_batch_to_affine(jac: np.ndarray) -> np.ndarray:
    """``(n, 12)`` Jacobian -> ``(n, 8)`` affine with one Fq inversion in all."""
    jac = _check(jac, 12, "jac")
    out = np.empty((jac.shape[0], 8), np.uint64)
    _g1_batch_to_affine(jac, out)
    return out


def g2_batch_to_affine(jac: np.ndarray) -> np.ndarray:
    """``(n, 24)`` Jacobian -> ``(n, 16)`` affine with one Fq inversion in all."""
    jac = _check(jac, 24, "jac")
    out = np.empty((jac.shape[0], 16), np.uint64)
    _g2_batch_to_affine(jac, out)
    return out


# ---------------------------------------------------------------- elementwise arrays ----

@njit(cache=True)
def _g1_from_affine_arr(aff, out):
    for i in range(aff.shape[0]):
        x, y = ec.g1_load_affine(aff, i)
        ec.g1_store_jac(out, i, ec.g1_from_affine(x, y))


@njit(cache=True, parallel=True)
def _g1_ops(op, a, b, scal, out):
    for i in prange(a.shape[0]):
        p = ec.g1_load_jac(a, i)
        if op == 0:
            r = ec.g1_add(p, ec.g1_load_jac(b, i))
        elif op == 1:
            x, y = ec.g1_load_affine(b, i)
            r = p if is_zero(x) and is_zero(y) else ec.g1_add_mixed(p, x, y)
        elif op == 2:
            r = ec.g1_double(p)
        elif op == 3:
            r = ec.g1_neg(p)
        else:
            r = ec.g1_mul(p, load(scal, i))
        ec.g1_store_jac(out, i, r)


@njit(cache=True)
def _g2_from_affine_arr(aff, out):
    for i in range(aff.shape[0]):
        x, y = ec.g2_load_affine(aff, i)
        ec.g2_store_jac(out, i, ec.g2_from_affine(x, y))


@njit(cache=True, parallel=True)
def _g2_ops(op, a, b, scal, out):
    for i in prange(a.shape[0]):
        p = ec.g2_load_jac(a, i)
        if op == 0:
            r = ec.g2_add(p, ec.g2_load_jac(b, i))
        elif op == 1:
            x, y = ec.g2_load_affine(b, i)
            r = p if ec.fq2_is_zero(x) and ec.fq2_is_zero(y) else ec.g2_add_mixed(p, x, y)
        elif op == 2:
            r = ec.g2_double(p)
        elif op == 3:
            r = ec.g2_neg(p)
        else:
            r = ec.g2_mul(p, load(scal, i))
        ec.g2_store_jac(out, i, r)


_OPS = {"add": 0, "add_mixed": 1, "double": 2, "neg": 3, "mul": 4}


def g1_to_jacobian(aff: np.ndarray) -> np.ndarray:
    """``(n, 8)`` affine -> ``(n, 12)`` Jacobian (``Z = 1``, or the infinity ``(1, 1, 0)``)."""
    aff = _check(aff, 8, "aff")
    out = np.empty((aff.shape[0], 12), np.uint64)
    _g1_from_affine_arr(aff, out)
    return out


def g2_to_jacobian(aff: np.ndarray) -> np.ndarray:
    """``(n, 16)`` affine -> ``(n, 24)`` Jacobian."""
    aff = _check(aff, 16, "aff")
    out = np.empty((aff.shape[0], 24), np.uint64)
    _g2_from_affine_arr(aff, out)
    return out


def g1_apply(op: str, jac: np.ndarray, other: np.ndarray | None = None) -> np.ndarray:
    """Elementwise G1 operation on Jacobian rows; ``op`` one of:

    ``"add"`` (other: ``(n, 12)`` Jacobian), ``"add_mixed"`` (other: ``(n, 8)`` affine),
    ``"double"``, ``"neg"``, ``"mul"`` (other: ``(n, 4)`` standard-form scalars). Returns ``(n, 12)``.
    Rows are processed in parallel (``numba.prange``).
    """
    jac = _check(jac, 12, "jac")
    other = jac if other is None else np.ascontiguousarray(other)
    scal = other if op == "mul" else np.zeros((1, 4), np.uint64)
    out = np.empty_like(jac)
    _g1_ops(_OPS[op], jac, other if op in ("add", "add_mixed") else jac, scal, out)
    return out


def g2_apply(op: str, jac: np.ndarray, other: np.ndarray | None = None) -> np.ndarray:
    """As :func:`g1_apply` for G2 (Jacobian ``(n, 24)``, affine ``(n, 16)``)."""
    jac = _check(jac, 24, "jac")
    other = jac if other is None else np.ascontiguousarray(other)
    scal = other if op == "mul" else np.zeros((1, 4), np.uint64)
    out = np.empty_like(jac)
    _g2_ops(_OPS[op], jac, other if op in ("add", "add_mixed") else jac, scal, out)
    return out


# ---------------------------------------------------------------- single points ----

def g1_add(p: G1Point, q: G1Point) -> G1Point:
    """``p + q`` on G1 (affine int tuples, None = infinity)."""
    jp, jq = g1_to_jacobian(g1_to_affine_array([p])), g1_to_jacobian(g1_to_affine_array([q]))
    return g1_from_affine_array(g1_batch_to_affine(g1_apply("add", jp, jq)))[0]


def g1_mul(p: G1Point, k: int) -> G1Point:
    """``k * p`` on G1 (``k`` reduced mod r)."""
    jp = g1_to_jacobian(g1_to_affine_array([p]))
    scal = np.array([[(k % FR.modulus >> (64 * i)) & (2**64 - 1) for i in range(4)]], np.uint64)
    return g1_from_affine_array(g1_batch_to_affine(g1_apply("mul", jp, scal)))[0]


def g2_add(p: G2Point, q: G2Point) -> G2Point:
    """``p + q`` on G2."""
    jp, jq = g2_to_jacobian(g2_to_affine_array([p])), g2_to_jacobian(g2_to_affine_array([q]))
    return g2_from_affine_array(g2_batch_to_affine(g2_apply("add", jp, jq)))[0]


def g2_mul(p: G2Point, k: int) -> G2Point:
    """``k * p`` on G2 (``k`` reduced mod r)."""
    jp = g2_to_jacobian(g2_to_affine_array([p]))
    scal = np.array([[(k % FR.modulus >> (64 * i)) & (2**64 - 1) for i in range(4)]], np.uint64)
    return g2_from_affine_array(g2_batch_to_affine(g2_apply("mul", jp, scal)))[0]
