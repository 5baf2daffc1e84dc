"""Number-theoretic transform over BN254 Fr on numba limb arrays (radix-2, natural order).

Domain: ``{omega^i}`` with ``omega`` the primitive ``n``-th root of unity of ffjavascript,
``omega = w28^(2^28 / n)``, ``w28 = 5^((r - 1) / 2^28)`` (5 = the smallest quadratic
non-residue of Fr; ffjavascript ``Fr.w[k]``), so evaluations match snarkjs zkeys. The odd coset
``{w_{2n}^{2i+1}}`` used by Groth16's quotient is reached by scaling coefficient ``i`` by
``w_{2n}^i`` before a forward transform (snarkjs ``groth16_prove.js``).

Algorithm: iterative Cooley-Tukey decimation in time after a bit-reversal permutation (Cormen
et al., "Introduction to Algorithms", 3rd ed., section 30.3), one thread per transform;
:func:`odd_coset_many` runs several transforms in one parallel region (the prover's A, B, C).
Parallelising every butterfly stage instead cost one barrier per stage, and on this shared
2-core machine a descheduled thread at each barrier made the prover up to 2x slower than on
one thread. Arrays are ``(n, 4)`` uint64 in Montgomery form (see :mod:`proving.field`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from proving._kernels.fields import FR_ONE, fr_add, fr_mul, fr_sub
from proving._kernels.limbs import load, store
from proving.errors import ProvingError
from proving.field import FR, from_mont, to_mont

R = FR.modulus
#: 2-adicity of r - 1 (r - 1 = 2^28 * t, t odd).
FR_TWO_ADICITY = 28
#: Primitive 2^28-th root of unity of Fr: ``5^((r - 1) / 2^28) mod r`` (ffjavascript ``Fr.w[28]``).
FR_ROOT_OF_UNITY_2_28 = 19103219067921713944291392827692070036145651957329286315305642004821462161904


class DomainError(ProvingError, ValueError):
    """A transform size is not a power of two in ``[1, 2^28]``.

    Attributes:
        size: the size given.
    """

    def __init__(self, size: int) -> None:
        super().__init__(f"size: {size} is not a power of two in [1, 2^28]; pad the input")
        self.size = size


def root_of_unity(order: int) -> int:
    """Primitive root of unity of Fr of power-of-two ``order`` (ffjavascript ``Fr.w[log2 order]``).

    Raises:
        DomainError: ``order`` is not a power of two in ``[1, 2^28]``.
    """
    if order < 1 or order & (order - 1) or order > 1 << FR_TWO_ADICITY:
        raise DomainError(order)
    return pow(FR_ROOT_OF_UNITY_2_28, (1 << FR_TWO_ADICITY) // order, R)


@njit(cache=True)
def powers_kernel(base, start, n):
    """``(n, 4)`` Montgomery array ``start * base^i``, ``i = 0..n-1`` (inputs Montgomery)."""
    out = np.empty((n, 4), dtype=np.uint64)
    acc = start
    for i in range(n):
        store(out, i, acc)
        acc = fr_mul(acc, base)
    return out


def _mont_scalar(x: int) -> tuple:
    return tuple(to_mont(FR, [x])[0])


_TWIDDLES: dict[tuple[int, bool], np.ndarray] = {}


def twiddles(n: int, inverse: bool = False) -> np.ndarray:
    """``(n/2, 4)`` Montgomery powers ``omega^i`` (``omega^-i`` when ``inverse``), cached per size."""
    key = (n, inverse)
    if key not in _TWIDDLES:
        w = root_of_unity(n)
        w = pow(w, R - 2, R) if inverse else w
        _TWIDDLES[key] = powers_kernel(_mont_scalar(w), FR_ONE, max(n // 2, 1))
    return _TWIDDLES[key]


@njit(cache=True)
def _bit_reverse(a):
    n = a.shape[0]
    j = 0
    for i in range(1, n):
        bit = n >> 1
        while j & bit:
            j ^= bit
            bit >>= 1
        j |= bit
        if i < j:
            for k in range(4):
                t = a[i, k]
                a[i, k] = a[j, k]
                a[j, k] = t


@njit(cache=True)
def ntt_kernel(a, tw):
    """In-place NTT of ``a`` (``(n, 4)`` Montgomery) with twiddle table ``tw`` (``n/2`` powers), one thread."""
    n = a.shape[0]
    _bit_reverse(a)
    half = 1
    while half < n:
        stride = n // (2 * half)
        for start in range(0, n, 2 * half):
            for j in range(half):
                i0 = start + j
                i1 = i0 + half
                t = fr_mul(load(a, i1), load(tw, j * stride))
                u = load(a, i0)
                store(a, i0, fr_add(u, t))
                store(a, i1, fr_sub(u, t))
        half *= 2


@njit(cache=True)
def scale_kernel(a, scales):
    """In-place ``a[i] *= scales[i]`` (Montgomery)."""
    for i in range(a.shape[0]):
        store(a, i, fr_mul(load(a, i), load(scales, i)))


@njit(cache=True, parallel=True)
def odd_coset_batch_kernel(polys, tw_inv, scales, tw):
    """In place for each ``polys[k]``: iNTT, scale by ``scales`` (``w_2n^i / n``), NTT.

    One parallel region for all the polynomials (one per thread): fewer barriers than
    parallelising each butterfly stage, which matters on a machine shared with other work.
    """
    for k in prange(polys.shape[0]):
        ntt_kernel(polys[k], tw_inv)
        scale_kernel(polys[k], scales)
        ntt_kernel(polys[k], tw)


def _check(a: np.ndarray) -> np.ndarray:
    n = a.shape[0] if a.ndim == 2 else -1
    if a.dtype != np.uint64 or a.ndim != 2 or a.shape[1] != 4:
        raise DomainError(n)
    if n < 1 or n & (n - 1) or n > 1 << FR_TWO_ADICITY:
        raise DomainError(n)
    return a


def ntt(a: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """Evaluations ``out[k] = sum_j a[j] omega_n^(j k)`` of coefficients ``a`` (``(n, 4)`` Montgomery).

    Raises:
        DomainError: ``n`` not a power of two.
    """
    a = _check(a)
    out = a if inplace else a.copy()
    ntt_kernel(out, twiddles(a.shape[0]))
    return out


_INV_SCALES: dict[tuple[int, int, bool], np.ndarray] = {}


def coset_scales(n: int, shift: int, *, inverse_n: bool = False) -> np.ndarray:
    """``(n, 4)`` Montgomery ``shift^i`` (times ``1/n`` when ``inverse_n``), cached per ``(n, shift)``."""
    key = (n, shift, inverse_n)
    if key not in _INV_SCALES:
        start = pow(n, R - 2, R) if inverse_n else 1
        _INV_SCALES[key] = powers_kernel(_mont_scalar(shift), _mont_scalar(start), n)
    return _INV_SCALES[key]


def intt(a: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """Coefficients from evaluations on ``{omega_n^i}``: the inverse of :func:`ntt`."""
    a = _check(a)
    out = a if inplace else a.copy()
    n = a.shape[0]
    ntt_kernel(out, twiddles(n, inverse=True))
    scale_kernel(out, coset_scales(n, 1, inverse_n=True))
    return out


def coset_ntt(a: np.ndarray, shift: int, *, inplace: bool = False) -> np.ndarray:
    """Evaluations on the coset ``{shift * omega_n^i}``: scale coefficient ``i`` by ``shift^i``, then NTT."""
    a = _check(a)
    out = a if inplace else a.copy()
    scale_kernel(out, coset_scales(a.shape[0], shift % R))
    ntt_kernel(out, twiddles(a.shape[0]))
    return out


def odd_coset_from_evaluations(evals: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """snarkjs's step: evaluations on ``{omega_n^i}`` -> evaluations on ``{w_2n^(2i+1)}``.

    iNTT, multiply coefficient ``i`` by ``w_2n^i / n`` (the ``1/n`` folded in), NTT.
    """
    a = _check(evals)
    out = a if inplace else a.copy()
    n = a.shape[0]
    ntt_kernel(out, twiddles(n, inverse=True))
    scale_kernel(out, coset_scales(n, root_of_unity(2 * n), inverse_n=True))
    ntt_kernel(out, twiddles(n))
    return out


def odd_coset_many(stack: np.ndarray) -> np.ndarray:
    """:func:`odd_coset_from_evaluations` in place on each row of a ``(k, n, 4)`` stack, in parallel.

    Raises:
        DomainError: ``n`` not a power of two, or the stack not ``(k, n, 4)`` uint64.
    """
    if stack.dtype != np.uint64 or stack.ndim != 3 or stack.shape[2] != 4 or not stack.flags.c_contiguous:
        raise DomainError(-1)
    n = _check(stack[0]).shape[0]
    odd_coset_batch_kernel(stack, twiddles(n, inverse=True), coset_scales(n, root_of_unity(2 * n), inverse_n=True),
                           twiddles(n))
    return stack


def ntt_ints(values: list[int]) -> list[int]:
    """Convenience: NTT of standard-form ints (for tests and small uses)."""
    return from_mont(FR, ntt(to_mont(FR, values)))


__all__ = [
    "FR_ROOT_OF_UNITY_2_28", "FR_TWO_ADICITY", "DomainError", "root_of_unity", "twiddles", "ntt",
    "intt", "coset_ntt", "odd_coset_from_evaluations", "odd_coset_many", "coset_scales", "ntt_kernel", "scale_kernel",
    "powers_kernel", "ntt_ints",
]
