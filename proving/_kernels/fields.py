"""BN254 Fq and Fr kernels in Montgomery form (4 x 64-bit limbs), specialised on their moduli.

Constants are module-level tuples of ``np.uint64``: numba freezes them into the compiled code,
so after inlining LLVM sees the modulus as immediates. Fq2 = Fq[u]/(u^2 + 1) (EIP-197) with
Karatsuba multiplication (3 Fq products).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from proving._kernels.limbs import add_mod, is_zero, mont_mul, mont_pow, neg_mod, sub_mod

#: BN254 base field modulus q and scalar field modulus r (EIP-196); the public names are
#: :data:`proving.field.FQ_MODULUS` and :data:`proving.field.FR_MODULUS`.
FQ_MODULUS = 21888242871839275222246405745257275088696311157297823662689037894645226208583
FR_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617
_MASK = (1 << 64) - 1


def int_to_tuple(x: int) -> tuple:
    """A Python int ``0 <= x < 2^256`` as a 4-tuple of ``np.uint64`` limbs, little-endian."""
    return tuple(np.uint64((x >> (64 * i)) & _MASK) for i in range(4))


def tuple_to_int(t) -> int:
    """Inverse of :func:`int_to_tuple`."""
    return sum(int(t[i]) << (64 * i) for i in range(4))


def _mont_constants(p: int):
    return (int_to_tuple(p), np.uint64((-pow(p, -1, 1 << 64)) % (1 << 64)),
            int_to_tuple((1 << 256) % p), int_to_tuple((1 << 512) % p), int_to_tuple(p - 2))


FQ_P, FQ_INV, FQ_ONE, FQ_R2, FQ_PM2 = _mont_constants(FQ_MODULUS)
FR_P, FR_INV, FR_ONE, FR_R2, FR_PM2 = _mont_constants(FR_MODULUS)
LIMB_ZERO = (np.uint64(0), np.uint64(0), np.uint64(0), np.uint64(0))


@njit(cache=True)
def fq_mul(a, b):
    """Fq Montgomery product."""
    return mont_mul(a, b, FQ_P, FQ_INV)


@njit(cache=True)
def fq_add(a, b):
    """Fq sum."""
    return add_mod(a, b, FQ_P)


@njit(cache=True)
def fq_sub(a, b):
    """Fq difference."""
    return sub_mod(a, b, FQ_P)


@njit(cache=True)
def fq_neg(a):
    """Fq negation."""
    return neg_mod(a, FQ_P)


@njit(cache=True)
def fq_inv(a):
    """Fq inverse by Fermat (``a^(q-2)``); 0 maps to 0."""
    return mont_pow(a, FQ_PM2, FQ_ONE, FQ_P, FQ_INV)


@njit(cache=True)
def fr_mul(a, b):
    """Fr Montgomery product."""
    return mont_mul(a, b, FR_P, FR_INV)


@njit(cache=True)
def fr_add(a, b):
    """Fr sum."""
    return add_mod(a, b, FR_P)


@njit(cache=True)
def fr_sub(a, b):
    """Fr difference."""
    return sub_mod(a, b, FR_P)


@njit(cache=True)
def fr_inv(a):
    """Fr inverse by Fermat (``a^(r-2)``); 0 maps to 0."""
    return mont_pow(a, FR_PM2, FR_ONE, FR_P, FR_INV)


# ---- Fq2 = Fq[u] / (u^2 + 1); elements are pairs (c0, c1) of Fq 4-tuples ----

@njit(cache=True)
def fq2_add(a, b):
    """Fq2 sum."""
    return (fq_add(a[0], b[0]), fq_add(a[1], b[1]))


@njit(cache=True)
def fq2_sub(a, b):
    """Fq2 difference."""
    return (fq_sub(a[0], b[0]), fq_sub(a[1], b[1]))


@njit(cache=True)
def fq2_neg(a):
    """Fq2 negation."""
    return (fq_neg(a[0]), fq_neg(a[1]))


@njit(cache=True)
def fq2_mul(a, b):
    """Fq2 product (Karatsuba): ``(a0 b0 - a1 b1, (a0 + a1)(b0 + b1) - a0 b0 - a1 b1)``."""
    v0 = fq_mul(a[0], b[0])
    v1 = fq_mul(a[1], b[1])
    s = fq_mul(fq_add(a[0], a[1]), fq_add(b[0], b[1]))
    return (fq_sub(v0, v1), fq_sub(fq_sub(s, v0), v1))


@njit(cache=True)
def fq2_sqr(a):
    """Fq2 square: ``((a0 + a1)(a0 - a1), 2 a0 a1)``."""
    t = fq_mul(a[0], a[1])
    return (fq_mul(fq_add(a[0], a[1]), fq_sub(a[0], a[1])), fq_add(t, t))


@njit(cache=True)
def fq2_is_zero(a):
    """True for the zero of Fq2."""
    return is_zero(a[0]) and is_zero(a[1])


@njit(cache=True)
def fq2_inv(a):
    """Fq2 inverse: ``conj(a) / (a0^2 + a1^2)``; 0 maps to 0."""
    n = fq_inv(fq_add(fq_mul(a[0], a[0]), fq_mul(a[1], a[1])))
    return (fq_mul(a[0], n), fq_neg(fq_mul(a[1], n)))
