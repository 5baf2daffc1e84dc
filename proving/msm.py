"""Multi-scalar multiplication on BN254 G1 and G2: Pippenger's bucket method with signed digits.

``sum_i k_i P_i`` for affine points ``P_i`` and Fr scalars ``k_i``:

1. Recode each scalar into ``W = ceil(255 / c)`` signed base-``2^c`` digits in
   ``[-(2^(c-1) - 1), 2^(c-1)]`` (carry recoding; ``W c >= 255`` leaves room for the last carry
   since ``r < 2^254``), halving the buckets per window to ``2^(c-1)`` (a negative digit adds
   ``-P``, which costs one field negation).
2. Per window, add each point into bucket ``|d|`` with mixed Jacobian-affine additions, then
   sum the buckets with the running-sum trick: ``sum_b b * B_b`` in ``2 * 2^(c-1)`` additions.
3. Combine windows by Horner: ``c`` doublings and one addition per window.

Windows are independent and run in parallel (``numba.prange`` over windows; ~20 windows for
``c = 13``, enough to keep 2 to 16 cores busy). ``c`` minimises
``W * (n + 1.5 * 2^c)``. Sources: N. Pippenger, "On the evaluation of powers and
related problems", FOCS 1976; D. J. Bernstein et al., "Faster batch forgery identification",
INDOCRYPT 2012 (bucket method); signed digits as in gnark-crypto ``ecc/bn254/multiexp.go``.

From ``c >= 11`` (G1) or ``c >= 9`` (G2) the buckets are kept in affine coordinates and
filled by batches of up to 256 pending additions sharing one inversion (Montgomery's trick):
~6 products per addition instead of 11 (see :func:`_g1_windows_affine`).

Measured here (2-core AMD EPYC, shared): 2^16 random G1 points, c = 13, 0.44 s CPU on one
thread (0.62 s with mixed Jacobian buckets), 0.25-0.7 s wall on two threads depending on the
load from other processes; py_ecc's naive sum of scalar multiplications ~1,400-1,900 s
(extrapolated from 64 points, ``benchmarks/proving.py``).

Public API: :func:`msm_g1`, :func:`msm_g2` on Python points/ints, and the array-level
:func:`msm_g1_arrays`, :func:`msm_g2_arrays` used by the prover.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import njit, prange

from proving._kernels import ec
from proving._kernels.fields import FQ_ONE, fq2_is_zero, fq_add, fq_inv, fq_mul, fq_sub
from proving._kernels.limbs import eq, is_zero, load, store
from proving.curve import (
    G1Point, G2Point, g1_batch_to_affine, g1_from_affine_array, g1_to_affine_array, g2_batch_to_affine,
    g2_from_affine_array, g2_to_affine_array,
)
from proving.errors import ProvingError
from proving.field import FR, to_limbs


class MsmInputError(ProvingError, ValueError):
    """Points and scalars do not match (length, array shape).

    Attributes:
        field: the offending argument.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


#: Window size from which MSMs (G1 and G2) accumulate buckets in affine coordinates with
#: batched inversions. Below it the buckets are too few for batches large enough to amortise
#: the inversion (~380 products) without many conflicts. Measured here (CPU time, one thread):
#: 3.6k points, c = 9: 31 ms batch-affine vs 26 ms Jacobian; 32k points of a circom key with
#: random scalars, c = 10 / 11 / 12: 0.37 / 0.29 / 0.27 s vs 0.36 / 0.35 / 0.33 s;
#: 2^16 points, c = 13: 0.44 s vs 0.62 s.
AFFINE_MIN_WINDOW_BITS = 11
#: The same threshold for G2, lower because a G2 mixed Jacobian addition costs ~29 Fq products
#: while the batch inversion is still one Fq inversion (measured: 1.1k points of a circom
#: b_g2_query, c = 9: 55 ms batch-affine vs 63 ms Jacobian, CPU time, one thread).
AFFINE_MIN_WINDOW_BITS_G2 = 9
#: Pending affine additions per batched inversion (capped at ``2^(c-1) / 8`` buckets so that
#: conflicts, which fall back to Jacobian overflow buckets, stay near 6%).
AFFINE_BATCH = 256


def window_bits(n: int) -> int:
    """Pippenger window size ``c`` for ``n`` points, minimising ``ceil(255/c) * (n + 1.5 * 2^c)``."""
    return min(range(2, 17), key=lambda c: math.ceil(255 / c) * (max(n, 1) + 1.5 * 2 ** c))


@njit(cache=True, parallel=True)
def signed_digits(scalars, c, n_windows):
    """``(n_windows, n)`` int32 signed base-``2^c`` digits of standard-form ``(n, 4)`` scalars."""
    n = scalars.shape[0]
    out = np.empty((n_windows, n), dtype=np.int32)
    full = np.int64(1) << c
    half = full >> 1
    mask = np.uint64(full - 1)
    for i in prange(n):
        carry = np.int64(0)
        for w in range(n_windows):
            bit = w * c
            limb = bit >> 6
            off = bit & 63
            v = np.uint64(0)
            if limb < 4:
                v = scalars[i, limb] >> np.uint64(off)
                if off + c > 64 and limb + 1 < 4:
                    v |= scalars[i, limb + 1] << np.uint64(64 - off)
            d = np.int64(v & mask) + carry
            if d > half:
                d -= full
                carry = np.int64(1)
            else:
                carry = np.int64(0)
            out[w, i] = d
    return out


@njit(cache=True, parallel=True)
def _g1_windows(points, digits, c):
    n_windows, n = digits.shape
    n_buckets = 1 << (c - 1)
    res = np.empty((n_windows, 12), dtype=np.uint64)
    for w in prange(n_windows):
        buckets = np.empty((n_buckets, 12), dtype=np.uint64)
        for b in range(n_buckets):
            ec.g1_store_jac(buckets, b, ec.G1_INF)
        for i in range(n):
            d = digits[w, i]
            if d == 0:
                continue
            x, y = ec.g1_load_affine(points, i)
            if is_zero(x) and is_zero(y):
                continue
            if d < 0:
                y = ec.fq_neg(y)
                d = -d
            ec.g1_store_jac(buckets, d - 1, ec.g1_add_mixed(ec.g1_load_jac(buckets, d - 1), x, y))
        running = ec.G1_INF
        total = ec.G1_INF
        for b in range(n_buckets - 1, -1, -1):
            running = ec.g1_add(running, ec.g1_load_jac(buckets, b))
            total = ec.g1_add(total, running)
        ec.g1_store_jac(res, w, total)
    return res


@njit(cache=True)
def _flush_affine(k, bidx, px, py, den, pre, bx, by):
    """Apply ``k`` pending affine additions ``bucket[bidx[j]] += (px[j], py[j])`` with one inversion.

    ``den[j]`` is ``px - bx`` (addition) or ``2 py`` (doubling, when ``px == bx``); Montgomery's
    trick inverts all denominators at once.
    """
    acc = FQ_ONE
    for j in range(k):
        store(pre, j, acc)
        acc = fq_mul(acc, load(den, j))
    inv = fq_inv(acc)
    for j in range(k - 1, -1, -1):
        d_inv = fq_mul(inv, load(pre, j))
        inv = fq_mul(inv, load(den, j))
        b = bidx[j]
        x1 = load(bx, b)
        y1 = load(by, b)
        x2 = load(px, j)
        y2 = load(py, j)
        if eq(x1, x2):
            xx = fq_mul(x1, x1)
            num = fq_add(fq_add(xx, xx), xx)
        else:
            num = fq_sub(y2, y1)
        lam = fq_mul(num, d_inv)
        x3 = fq_sub(fq_sub(fq_mul(lam, lam), x1), x2)
        y3 = fq_sub(fq_mul(lam, fq_sub(x1, x3)), y1)
        store(bx, b, x3)
        store(by, b, y3)


@njit(cache=True, parallel=True)
def _g1_windows_affine(points, digits, c, batch):
    """Bucket accumulation in affine coordinates with batched inversions (~6 products per addition
    instead of 11 for mixed Jacobian), Jacobian overflow buckets for points whose bucket is already
    pending in the current batch. Source: the "batch affine" method of gnark-crypto
    (``multiexp_affine.go``) and Aztec barretenberg (``pippenger``)."""
    n_windows, n = digits.shape
    n_buckets = 1 << (c - 1)
    res = np.empty((n_windows, 12), dtype=np.uint64)
    for w in prange(n_windows):
        bx = np.empty((n_buckets, 4), dtype=np.uint64)
        by = np.empty((n_buckets, 4), dtype=np.uint64)
        full = np.zeros(n_buckets, dtype=np.bool_)
        stamp = np.full(n_buckets, -1, dtype=np.int64)
        over = np.empty((n_buckets, 12), dtype=np.uint64)
        has_over = np.zeros(n_buckets, dtype=np.bool_)
        bidx = np.empty(batch, dtype=np.int64)
        px = np.empty((batch, 4), dtype=np.uint64)
        py = np.empty((batch, 4), dtype=np.uint64)
        den = np.empty((batch, 4), dtype=np.uint64)
        pre = np.empty((batch, 4), dtype=np.uint64)
        k = 0
        batch_no = 0
        for i in range(n):
            d = digits[w, i]
            if d == 0:
                continue
            x, y = ec.g1_load_affine(points, i)
            if is_zero(x) and is_zero(y):
                continue
            if d < 0:
                y = ec.fq_neg(y)
                d = -d
            b = d - 1
            if stamp[b] == batch_no:
                if has_over[b]:
                    ec.g1_store_jac(over, b, ec.g1_add_mixed(ec.g1_load_jac(over, b), x, y))
                else:
                    ec.g1_store_jac(over, b, (x, y, FQ_ONE))
                    has_over[b] = True
                continue
            if not full[b]:
                store(bx, b, x)
                store(by, b, y)
                full[b] = True
                continue
            x1 = load(bx, b)
            if eq(x1, x):
                if not eq(load(by, b), y):
                    full[b] = False  # P + (-P)
                    continue
                dd = fq_add(y, y)  # doubling: lambda = 3 x^2 / 2 y
            else:
                dd = fq_sub(x, x1)
            stamp[b] = batch_no
            bidx[k] = b
            store(px, k, x)
            store(py, k, y)
            store(den, k, dd)
            k += 1
            if k == batch:
                _flush_affine(k, bidx, px, py, den, pre, bx, by)
                k = 0
                batch_no += 1
        _flush_affine(k, bidx, px, py, den, pre, bx, by)
        running = ec.G1_INF
        total = ec.G1_INF
        for b in range(n_buckets - 1, -1, -1):
            if has_over[b]:
                running = ec.g1_add(running, ec.g1_load_jac(over, b))
            if full[b]:
                running = ec.g1_add_mixed(running, load(bx, b), load(by, b))
            total = ec.g1_add(total, running)
        ec.g1_store_jac(res, w, total)
    return res


@njit(cache=True)
def _g1_combine(res, c):
    acc = ec.g1_load_jac(res, res.shape[0] - 1)
    for w in range(res.shape[0] - 2, -1, -1):
        for _ in range(c):
            acc = ec.g1_double(acc)
        acc = ec.g1_add(acc, ec.g1_load_jac(res, w))
    out = np.empty((1, 12), dtype=np.uint64)
    ec.g1_store_jac(out, 0, acc)
    return out


@njit(cache=True, parallel=True)
def _g2_windows(points, digits, c):
    n_windows, n = digits.shape
    n_buckets = 1 << (c - 1)
    res = np.empty((n_windows, 24), dtype=np.uint64)
    for w in prange(n_windows):
        buckets = np.empty((n_buckets, 24), dtype=np.uint64)
        for b in range(n_buckets):
            ec.g2_store_jac(buckets, b, ec.G2_INF)
        for i in range(n):
            d = digits[w, i]
            if d == 0:
                continue
            x, y = ec.g2_load_affine(points, i)
            if fq2_is_zero(x) and fq2_is_zero(y):
                continue
            if d < 0:
                y = ec.fq2_neg(y)
                d = -d
            ec.g2_store_jac(buckets, d - 1, ec.g2_add_mixed(ec.g2_load_jac(buckets, d - 1), x, y))
        running = ec.G2_INF
        total = ec.G2_INF
        for b in range(n_buckets - 1, -1, -1):
            running = ec.g2_add(running, ec.g2_load_jac(buckets, b))
            total = ec.g2_add(total, running)
        ec.g2_store_jac(res, w, total)
    return res


@njit(cache=True)
def _ld2(a, i):
    return ((a[i, 0], a[i, 1], a[i, 2], a[i, 3]), (a[i, 4], a[i, 5], a[i, 6], a[i, 7]))


@njit(cache=True)
def _st2(a, i, v):
    for k in range(4):
        a[i, k] = v[0][k]
        a[i, 4 + k] = v[1][k]


@njit(cache=True)
def _fq2_eq(a, b):
    return eq(a[0], b[0]) and eq(a[1], b[1])


@njit(cache=True)
def _flush_affine_g2(k, bidx, px, py, den, pre, bx, by):
    """G2 twin of :func:`_flush_affine` over Fq2 (one Fq2 inversion per batch)."""
    acc = ec.FQ2_ONE
    for j in range(k):
        _st2(pre, j, acc)
        acc = ec.fq2_mul(acc, _ld2(den, j))
    inv = ec.fq2_inv(acc)
    for j in range(k - 1, -1, -1):
        d_inv = ec.fq2_mul(inv, _ld2(pre, j))
        inv = ec.fq2_mul(inv, _ld2(den, j))
        b = bidx[j]
        x1 = _ld2(bx, b)
        y1 = _ld2(by, b)
        x2 = _ld2(px, j)
        y2 = _ld2(py, j)
        if _fq2_eq(x1, x2):
            xx = ec.fq2_sqr(x1)
            num = ec.fq2_add(ec.fq2_add(xx, xx), xx)
        else:
            num = ec.fq2_sub(y2, y1)
        lam = ec.fq2_mul(num, d_inv)
        x3 = ec.fq2_sub(ec.fq2_sub(ec.fq2_sqr(lam), x1), x2)
        y3 = ec.fq2_sub(ec.fq2_mul(lam, ec.fq2_sub(x1, x3)), y1)
        _st2(bx, b, x3)
        _st2(by, b, y3)


@njit(cache=True, parallel=True)
def _g2_windows_affine(points, digits, c, batch):
    """G2 twin of :func:`_g1_windows_affine`."""
    n_windows, n = digits.shape
    n_buckets = 1 << (c - 1)
    res = np.empty((n_windows, 24), dtype=np.uint64)
    for w in prange(n_windows):
        bx = np.empty((n_buckets, 8), dtype=np.uint64)
        by = np.empty((n_buckets, 8), dtype=np.uint64)
        full = np.zeros(n_buckets, dtype=np.bool_)
        stamp = np.full(n_buckets, -1, dtype=np.int64)
        over = np.empty((n_buckets, 24), dtype=np.uint64)
        has_over = np.zeros(n_buckets, dtype=np.bool_)
        bidx = np.empty(batch, dtype=np.int64)
        px = np.empty((batch, 8), dtype=np.uint64)
        py = np.empty((batch, 8), dtype=np.uint64)
        den = np.empty((batch, 8), dtype=np.uint64)
        pre = np.empty((batch, 8), dtype=np.uint64)
        k = 0
        batch_no = 0
        for i in range(n):
            d = digits[w, i]
            if d == 0:
                continue
            x, y = ec.g2_load_affine(points, i)
            if fq2_is_zero(x) and fq2_is_zero(y):
                continue
            if d < 0:
                y = ec.fq2_neg(y)
                d = -d
            b = d - 1
            if stamp[b] == batch_no:
                if has_over[b]:
                    ec.g2_store_jac(over, b, ec.g2_add_mixed(ec.g2_load_jac(over, b), x, y))
                else:
                    ec.g2_store_jac(over, b, (x, y, ec.FQ2_ONE))
                    has_over[b] = True
                continue
            if not full[b]:
                _st2(bx, b, x)
                _st2(by, b, y)
                full[b] = True
                continue
            x1 = _ld2(bx, b)
            if _fq2_eq(x1, x):
                if not _fq2_eq(_ld2(by, b), y):
                    full[b] = False  # P + (-P)
                    continue
                dd = ec.fq2_add(y, y)
            else:
                dd = ec.fq2_sub(x, x1)
            stamp[b] = batch_no
            bidx[k] = b
            _st2(px, k, x)
            _st2(py, k, y)
            _st2(den, k, dd)
            k += 1
            if k == batch:
                _flush_affine_g2(k, bidx, px, py, den, pre, bx, by)
                k = 0
                batch_no += 1
        _flush_affine_g2(k, bidx, px, py, den, pre, bx, by)
        running = ec.G2_INF
        total = ec.G2_INF
        for b in range(n_buckets - 1, -1, -1):
            if has_over[b]:
                running = ec.g2_add(running, ec.g2_load_jac(over, b))
            if full[b]:
                running = ec.g2_add_mixed(running, _ld2(bx, b), _ld2(by, b))
            total = ec.g2_add(total, running)
        ec.g2_store_jac(res, w, total)
    return res


@njit(cache=True)
def _g2_combine(res, c):
    acc = ec.g2_load_jac(res, res.shape[0] - 1)
    for w in range(res.shape[0] - 2, -1, -1):
        for _ in range(c):
            acc = ec.g2_double(acc)
        acc = ec.g2_add(acc, ec.g2_load_jac(res, w))
    out = np.empty((1, 24), dtype=np.uint64)
    ec.g2_store_jac(out, 0, acc)
    return out


def _check(points: np.ndarray, scalars: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    if points.dtype != np.uint64 or points.ndim != 2 or points.shape[1] != width:
        raise MsmInputError("points", f"expected an (n, {width}) uint64 affine array, got {points.dtype} {points.shape}")
    if scalars.dtype != np.uint64 or scalars.shape != (points.shape[0], 4):
        raise MsmInputError("scalars", f"expected ({points.shape[0]}, 4) uint64 standard-form limbs, got {scalars.shape}")
    return np.ascontiguousarray(points), np.ascontiguousarray(scalars)


def msm_g1_arrays(points: np.ndarray, scalars: np.ndarray, *, c: int | None = None,
                  affine: bool | None = None) -> np.ndarray:
    """``sum k_i P_i`` in G1 as a ``(1, 12)`` Jacobian row.

    Args:
        points: ``(n, 8)`` affine Montgomery rows (zeros = infinity), see :mod:`proving.curve`.
        scalars: ``(n, 4)`` standard-form (not Montgomery) limbs, each ``< 2^254`` (reduced Fr).
        c: window bits (default :func:`window_bits`).
        affine: batch-affine bucket accumulation (default: when ``c >= AFFINE_MIN_WINDOW_BITS``);
            False forces mixed Jacobian additions.

    Raises:
        MsmInputError: shapes disagree.
    """
    points, scalars = _check(points, scalars, 8)
    if points.shape[0] == 0:
        return np.array([[*ec.G1_INF[0], *ec.G1_INF[1], *ec.G1_INF[2]]], dtype=np.uint64)
    c = c or window_bits(points.shape[0])
    digits = signed_digits(scalars, c, math.ceil(255 / c))
    if affine is None:
        affine = c >= AFFINE_MIN_WINDOW_BITS
    if affine:
        batch = max(16, min(AFFINE_BATCH, (1 << c) >> 4))
        return _g1_combine(_g1_windows_affine(points, digits, c, batch), c)
    return _g1_combine(_g1_windows(points, digits, c), c)


def msm_g2_arrays(points: np.ndarray, scalars: np.ndarray, *, c: int | None = None,
                  affine: bool | None = None) -> np.ndarray:
    """``sum k_i P_i`` in G2 as a ``(1, 24)`` Jacobian row; ``points`` ``(n, 16)`` affine. See :func:`msm_g1_arrays`."""
    points, scalars = _check(points, scalars, 16)
    if points.shape[0] == 0:
        inf = ec.G2_INF
        return np.array([[*inf[0][0], *inf[0][1], *inf[1][0], *inf[1][1], *inf[2][0], *inf[2][1]]], dtype=np.uint64)
    c = c or window_bits(points.shape[0])
    digits = signed_digits(scalars, c, math.ceil(255 / c))
    if affine is None:
        affine = c >= AFFINE_MIN_WINDOW_BITS_G2
    if affine:
        batch = max(16, min(AFFINE_BATCH, (1 << c) >> 4))
        return _g2_combine(_g2_windows_affine(points, digits, c, batch), c)
    return _g2_combine(_g2_windows(points, digits, c), c)


def _scalar_limbs(scalars: Sequence[int], n: int) -> np.ndarray:
    if len(scalars) != n:
        raise MsmInputError("scalars", f"{len(scalars)} scalars for {n} points")
    return to_limbs([k % FR.modulus for k in scalars])


def msm_g1(points: Sequence[G1Point], scalars: Sequence[int]) -> G1Point:
    """``sum k_i P_i`` in G1 for affine int points (None = infinity) and int scalars (reduced mod r).

    Raises:
        MsmInputError: ``len(points) != len(scalars)``.
    """
    k = _scalar_limbs(scalars, len(points))
    if not points:
        return None
    return g1_from_affine_array(g1_batch_to_affine(msm_g1_arrays(g1_to_affine_array(points), k)))[0]


def msm_g2(points: Sequence[G2Point], scalars: Sequence[int]) -> G2Point:
    """``sum k_i P_i`` in G2; see :func:`msm_g1`."""
    k = _scalar_limbs(scalars, len(points))
    if not points:
        return None
    return g2_from_affine_array(g2_batch_to_affine(msm_g2_arrays(g2_to_affine_array(points), k)))[0]
