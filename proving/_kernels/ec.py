"""BN254 G1 (over Fq) and G2 (over Fq2) point formulas in Jacobian coordinates (numba).

A Jacobian point ``(X, Y, Z)`` stands for the affine ``(X/Z^2, Y/Z^3)``; ``Z = 0`` is the point
at infinity. Formulas for ``a = 0`` curves from the Explicit-Formulas Database
(hyperelliptic.org/EFD/g1p/auto-shortw-jacobian-0.html): doubling ``dbl-2009-l``
(2M + 5S), mixed addition ``madd-2007-bl`` (7M + 4S), addition ``add-2007-bl`` (11M + 5S), with
the exceptional cases (infinity, ``P + P``, ``P + (-P)``) handled explicitly.

Memory layouts (all Montgomery form, little-endian 64-bit limbs):
G1 affine ``(n, 8)`` = x, y (infinity = all zeros, not on ``y^2 = x^3 + 3``); G1 Jacobian
``(n, 12)``; G2 affine ``(n, 16)`` = x.c0, x.c1, y.c0, y.c1 (infinity = zeros); G2 Jacobian
``(n, 24)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from proving._kernels.fields import (
    FQ_ONE, LIMB_ZERO, fq2_add, fq2_inv, fq2_is_zero, fq2_mul, fq2_neg, fq2_sqr, fq2_sub,
    fq_add, fq_inv, fq_mul, fq_neg, fq_sub,
)
from proving._kernels.limbs import is_zero

FQ2_ZERO = (LIMB_ZERO, LIMB_ZERO)
FQ2_ONE = (FQ_ONE, LIMB_ZERO)
G1_INF = (FQ_ONE, FQ_ONE, LIMB_ZERO)
G2_INF = (FQ2_ONE, FQ2_ONE, FQ2_ZERO)


# ------------------------------------------------------------------ G1 ----

@njit(cache=True)
def g1_double(p):
    """``2P`` (dbl-2009-l)."""
    x, y, z = p
    if is_zero(z):
        return p
    a = fq_mul(x, x)
    b = fq_mul(y, y)
    c = fq_mul(b, b)
    t = fq_add(x, b)
    d = fq_sub(fq_sub(fq_mul(t, t), a), c)
    d = fq_add(d, d)
    e = fq_add(fq_add(a, a), a)
    f = fq_mul(e, e)
    x3 = fq_sub(f, fq_add(d, d))
    c8 = fq_add(c, c)
    c8 = fq_add(c8, c8)
    c8 = fq_add(c8, c8)
    y3 = fq_sub(fq_mul(e, fq_sub(d, x3)), c8)
    yz = fq_mul(y, z)
    return (x3, y3, fq_add(yz, yz))


@njit(cache=True)
def g1_add_mixed(p, x2, y2):
    """``P + (x2, y2)`` with the second point affine and not infinity (madd-2007-bl)."""
    x1, y1, z1 = p
    if is_zero(z1):
        return (x2, y2, FQ_ONE)
    z1z1 = fq_mul(z1, z1)
    u2 = fq_mul(x2, z1z1)
    s2 = fq_mul(y2, fq_mul(z1, z1z1))
    h = fq_sub(u2, x1)
    r = fq_sub(s2, y1)
    r = fq_add(r, r)
    if is_zero(h):
        if is_zero(r):
            return g1_double(p)
        return G1_INF
    hh = fq_mul(h, h)
    i = fq_add(hh, hh)
    i = fq_add(i, i)
    j = fq_mul(h, i)
    v = fq_mul(x1, i)
    x3 = fq_sub(fq_sub(fq_mul(r, r), j), fq_add(v, v))
    y1j = fq_mul(y1, j)
    y3 = fq_sub(fq_mul(r, fq_sub(v, x3)), fq_add(y1j, y1j))
    t = fq_add(z1, h)
    z3 = fq_sub(fq_sub(fq_mul(t, t), z1z1), hh)
    return (x3, y3, z3)


@njit(cache=True)
def g1_add(p, q):
    """``P + Q`` for Jacobian points (add-2007-bl)."""
    x1, y1, z1 = p
    x2, y2, z2 = q
    if is_zero(z1):
        return q
    if is_zero(z2):
        return p
    z1z1 = fq_mul(z1, z1)
    z2z2 = fq_mul(z2, z2)
    u1 = fq_mul(x1, z2z2)
    u2 = fq_mul(x2, z1z1)
    s1 = fq_mul(y1, fq_mul(z2, z2z2))
    s2 = fq_mul(y2, fq_mul(z1, z1z1))
    h = fq_sub(u2, u1)
    r = fq_sub(s2, s1)
    r = fq_add(r, r)
    if is_zero(h):
        if is_zero(r):
            return g1_double(p)
        return G1_INF
    h2 = fq_add(h, h)
    i = fq_mul(h2, h2)
    j = fq_mul(h, i)
    v = fq_mul(u1, i)
    x3 = fq_sub(fq_sub(fq_mul(r, r), j), fq_add(v, v))
    s1j = fq_mul(s1, j)
    y3 = fq_sub(fq_mul(r, fq_sub(v, x3)), fq_add(s1j, s1j))
    t = fq_add(z1, z2)
    z3 = fq_mul(fq_sub(fq_sub(fq_mul(t, t), z1z1), z2z2), h)
    return (x3, y3, z3)


@njit(cache=True)
def g1_neg(p):
    """``-P``."""
    return (p[0], fq_neg(p[1]), p[2])


@njit(cache=True)
def g1_load_affine(a, i):
    """Row ``i`` of an ``(n, 8)`` affine array as ``(x, y)``."""
    return ((a[i, 0], a[i, 1], a[i, 2], a[i, 3]), (a[i, 4], a[i, 5], a[i, 6], a[i, 7]))


@njit(cache=True)
def g1_load_jac(a, i):
    """Row ``i`` of an ``(n, 12)`` Jacobian array."""
    return ((a[i, 0], a[i, 1], a[i, 2], a[i, 3]), (a[i, 4], a[i, 5], a[i, 6], a[i, 7]),
            (a[i, 8], a[i, 9], a[i, 10], a[i, 11]))


@njit(cache=True)
def g1_store_jac(a, i, p):
    """Write a Jacobian point into row ``i`` of an ``(n, 12)`` array."""
    for c in range(3):
        for k in range(4):
            a[i, 4 * c + k] = p[c][k]


@njit(cache=True)
def g1_from_affine(x, y):
    """Affine (zeros = infinity) to Jacobian."""
    if is_zero(x) and is_zero(y):
        return G1_INF
    return (x, y, FQ_ONE)


@njit(cache=True)
def g1_to_affine(p):
    """Jacobian to affine ``(x, y)``; infinity -> zeros. One Fq inversion."""
    if is_zero(p[2]):
        return (LIMB_ZERO, LIMB_ZERO)
    zi = fq_inv(p[2])
    zi2 = fq_mul(zi, zi)
    return (fq_mul(p[0], zi2), fq_mul(p[1], fq_mul(zi2, zi)))


@njit(cache=True)
def g1_mul(p, k):
    """``k * P`` by double-and-add from the top bit; ``k`` a standard-form 4-limb tuple."""
    acc = G1_INF
    for li in range(3, -1, -1):
        w = k[li]
        for bit in range(63, -1, -1):
            acc = g1_double(acc)
            if (w >> np.uint64(bit)) & np.uint64(1):
                acc = g1_add(acc, p)
    return acc


# ------------------------------------------------------------------ G2 ----

@njit(cache=True)
def g2_double(p):
    """``2P`` on the twist (dbl-2009-l over Fq2)."""
    x, y, z = p
    if fq2_is_zero(z):
        return p
    a = fq2_sqr(x)
    b = fq2_sqr(y)
    c = fq2_sqr(b)
    d = fq2_sub(fq2_sub(fq2_sqr(fq2_add(x, b)), a), c)
    d = fq2_add(d, d)
    e = fq2_add(fq2_add(a, a), a)
    f = fq2_sqr(e)
    x3 = fq2_sub(f, fq2_add(d, d))
    c8 = fq2_add(c, c)
    c8 = fq2_add(c8, c8)
    c8 = fq2_add(c8, c8)
    y3 = fq2_sub(fq2_mul(e, fq2_sub(d, x3)), c8)
    yz = fq2_mul(y, z)
    return (x3, y3, fq2_add(yz, yz))


@njit(cache=True)
def g2_add_mixed(p, x2, y2):
    """``P + (x2, y2)``, second point affine and not infinity (madd-2007-bl over Fq2)."""
    x1, y1, z1 = p
    if fq2_is_zero(z1):
        return (x2, y2, FQ2_ONE)
    z1z1 = fq2_sqr(z1)
    u2 = fq2_mul(x2, z1z1)
    s2 = fq2_mul(y2, fq2_mul(z1, z1z1))
    h = fq2_sub(u2, x1)
    r = fq2_sub(s2, y1)
    r = fq2_add(r, r)
    if fq2_is_zero(h):
        if fq2_is_zero(r):
            return g2_double(p)
        return G2_INF
    hh = fq2_sqr(h)
    i = fq2_add(hh, hh)
    i = fq2_add(i, i)
    j = fq2_mul(h, i)
    v = fq2_mul(x1, i)
    x3 = fq2_sub(fq2_sub(fq2_sqr(r), j), fq2_add(v, v))
    y1j = fq2_mul(y1, j)
    y3 = fq2_sub(fq2_mul(r, fq2_sub(v, x3)), fq2_add(y1j, y1j))
    z3 = fq2_sub(fq2_sub(fq2_sqr(fq2_add(z1, h)), z1z1), hh)
    return (x3, y3, z3)


@njit(cache=True)
def g2_add(p, q):
    """``P + Q`` on the twist (add-2007-bl over Fq2)."""
    x1, y1, z1 = p
    x2, y2, z2 = q
    if fq2_is_zero(z1):
        return q
    if fq2_is_zero(z2):
        return p
    z1z1 = fq2_sqr(z1)
    z2z2 = fq2_sqr(z2)
    u1 = fq2_mul(x1, z2z2)
    u2 = fq2_mul(x2, z1z1)
    s1 = fq2_mul(y1, fq2_mul(z2, z2z2))
    s2 = fq2_mul(y2, fq2_mul(z1, z1z1))
    h = fq2_sub(u2, u1)
    r = fq2_sub(s2, s1)
    r = fq2_add(r, r)
    if fq2_is_zero(h):
        if fq2_is_zero(r):
            return g2_double(p)
        return G2_INF
    h2 = fq2_add(h, h)
    i = fq2_sqr(h2)
    j = fq2_mul(h, i)
    v = fq2_mul(u1, i)
    x3 = fq2_sub(fq2_sub(fq2_sqr(r), j), fq2_add(v, v))
    s1j = fq2_mul(s1, j)
    y3 = fq2_sub(fq2_mul(r, fq2_sub(v, x3)), fq2_add(s1j, s1j))
    z3 = fq2_mul(fq2_sub(fq2_sub(fq2_sqr(fq2_add(z1, z2)), z1z1), z2z2), h)
    return (x3, y3, z3)


@njit(cache=True)
def g2_neg(p):
    """``-P``."""
    return (p[0], fq2_neg(p[1]), p[2])


@njit(cache=True)
def _row4(a, i, o):
    return (a[i, o], a[i, o + 1], a[i, o + 2], a[i, o + 3])


@njit(cache=True)
def g2_load_affine(a, i):
    """Row ``i`` of an ``(n, 16)`` affine array as ``(x, y)`` (Fq2 pairs)."""
    return ((_row4(a, i, 0), _row4(a, i, 4)), (_row4(a, i, 8), _row4(a, i, 12)))


@njit(cache=True)
def g2_load_jac(a, i):
    """Row ``i`` of an ``(n, 24)`` Jacobian array."""
    return ((_row4(a, i, 0), _row4(a, i, 4)), (_row4(a, i, 8), _row4(a, i, 12)),
            (_row4(a, i, 16), _row4(a, i, 20)))


@njit(cache=True)
def g2_store_jac(a, i, p):
    """Write a Jacobian G2 point into row ``i`` of an ``(n, 24)`` array."""
    for c in range(3):
        for h in range(2):
            for k in range(4):
                a[i, 8 * c + 4 * h + k] = p[c][h][k]


@njit(cache=True)
def g2_from_affine(x, y):
    """Affine (zeros = infinity) to Jacobian."""
    if fq2_is_zero(x) and fq2_is_zero(y):
        return G2_INF
    return (x, y, FQ2_ONE)


@njit(cache=True)
def g2_to_affine(p):
    """Jacobian to affine; infinity -> zeros."""
    if fq2_is_zero(p[2]):
        return (FQ2_ZERO, FQ2_ZERO)
    zi = fq2_inv(p[2])
    zi2 = fq2_sqr(zi)
    return (fq2_mul(p[0], zi2), fq2_mul(p[1], fq2_mul(zi2, zi)))


@njit(cache=True)
def g2_mul(p, k):
    """``k * P`` by double-and-add; ``k`` a standard-form 4-limb tuple."""
    acc = G2_INF
    for li in range(3, -1, -1):
        w = k[li]
        for bit in range(63, -1, -1):
            acc = g2_double(acc)
            if (w >> np.uint64(bit)) & np.uint64(1):
                acc = g2_add(acc, p)
    return acc
