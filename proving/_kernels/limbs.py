"""Multi-precision limb arithmetic for 4 x 64-bit limbs, with 128-bit products from LLVM.

numba has no 128-bit integer type (FIELD-NOTES), so the two primitives that need one are
written as numba intrinsics emitting LLVM ``i128`` arithmetic, which x86-64 lowers to a single
``mul`` (or ``mulx``) and ``add``/``adc`` chains:

* :func:`mac` ``(a, b, c, d) -> (lo, hi)`` with ``hi * 2^64 + lo = a*b + c + d`` (cannot overflow);
* :func:`adc` and :func:`sbb`: add / subtract with carry (borrow) in and out.

Montgomery multiplication is CIOS (Koc, Acar, Kaliski, "Analyzing and Comparing Montgomery
Multiplication Algorithms", IEEE Micro 1996) with gnark's "no-carry" shortcut, valid when the
top limb of the modulus is below ``2^63 - 1`` (true for both BN254 moduli): the running value
then fits in 4 limbs and the output is below ``2p`` before one conditional subtraction
(gnark-crypto, ``field/goff`` templates, "Faster big-integer modular multiplication for most
moduli", ConsenSys 2020).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

U64 = np.uint64
ZERO = np.uint64(0)


@intrinsic
def mac(typingctx, a, b, c, d):
    """``(lo, hi)`` of ``a*b + c + d`` computed in 128 bits (all uint64)."""
    sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64, types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)
        wa, wb, wc, wd = [builder.zext(x, i128) for x in args]
        t = builder.add(builder.add(builder.mul(wa, wb), wc), wd)
        lo = builder.trunc(t, ir.IntType(64))
        hi = builder.trunc(builder.lshr(t, ir.Constant(i128, 64)), ir.IntType(64))
        return context.make_tuple(builder, signature.return_type, (lo, hi))

    return sig, codegen


@intrinsic
def adc(typingctx, a, b, carry):
    """``(sum, carry_out)`` of ``a + b + carry`` (carry in {0, 1})."""
    sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)
        wa, wb, wc = [builder.zext(x, i128) for x in args]
        t = builder.add(builder.add(wa, wb), wc)
        lo = builder.trunc(t, ir.IntType(64))
        hi = builder.trunc(builder.lshr(t, ir.Constant(i128, 64)), ir.IntType(64))
        return context.make_tuple(builder, signature.return_type, (lo, hi))

    return sig, codegen


@intrinsic
def sbb(typingctx, a, b, borrow):
    """``(diff, borrow_out)`` of ``a - b - borrow`` (borrow in {0, 1})."""
    sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)
        wa, wb, wc = [builder.zext(x, i128) for x in args]
        t = builder.sub(builder.sub(wa, wb), wc)
        lo = builder.trunc(t, ir.IntType(64))
        hi = builder.trunc(builder.lshr(t, ir.Constant(i128, 127)), ir.IntType(64))
        return context.make_tuple(builder, signature.return_type, (lo, hi))

    return sig, codegen


@njit(cache=True)
def reduce_once(t0, t1, t2, t3, p):
    """``t - p`` if ``t >= p`` else ``t`` (for ``t < 2p``), as a 4-tuple."""
    s0, b = sbb(t0, p[0], ZERO)
    s1, b = sbb(t1, p[1], b)
    s2, b = sbb(t2, p[2], b)
    s3, b = sbb(t3, p[3], b)
    if b:
        return (t0, t1, t2, t3)
    return (s0, s1, s2, s3)


@njit(cache=True)
def _cios_round(t0, t1, t2, t3, a, bi, p, inv):
    t0, hi_a = mac(a[0], bi, t0, ZERO)
    m = t0 * inv
    c = mac(m, p[0], t0, ZERO)[1]
    t1, hi_a = mac(a[1], bi, t1, hi_a)
    t0, c = mac(m, p[1], t1, c)
    t2, hi_a = mac(a[2], bi, t2, hi_a)
    t1, c = mac(m, p[2], t2, c)
    t3, hi_a = mac(a[3], bi, t3, hi_a)
    t2, c = mac(m, p[3], t3, c)
    t3 = c + hi_a
    return t0, t1, t2, t3


@njit(cache=True)
def mont_mul(a, b, p, inv):
    """Montgomery product ``a * b / 2^256 mod p`` of two reduced 4-limb tuples.

    ``inv = -p^-1 mod 2^64``. Requires ``p[3] < 2^63 - 1`` (see module docstring).
    """
    t0, t1, t2, t3 = _cios_round(ZERO, ZERO, ZERO, ZERO, a, b[0], p, inv)
    t0, t1, t2, t3 = _cios_round(t0, t1, t2, t3, a, b[1], p, inv)
    t0, t1, t2, t3 = _cios_round(t0, t1, t2, t3, a, b[2], p, inv)
    t0, t1, t2, t3 = _cios_round(t0, t1, t2, t3, a, b[3], p, inv)
    return reduce_once(t0, t1, t2, t3, p)


@njit(cache=True)
def add_mod(a, b, p):
    """``a + b mod p`` for reduced inputs and ``p < 2^255`` (no carry out of 256 bits)."""
    s0, c = adc(a[0], b[0], ZERO)
    s1, c = adc(a[1], b[1], c)
    s2, c = adc(a[2], b[2], c)
    s3, c = adc(a[3], b[3], c)
    return reduce_once(s0, s1, s2, s3, p)


@njit(cache=True)
def sub_mod(a, b, p):
    """``a - b mod p`` for reduced inputs."""
    d0, br = sbb(a[0], b[0], ZERO)
    d1, br = sbb(a[1], b[1], br)
    d2, br = sbb(a[2], b[2], br)
    d3, br = sbb(a[3], b[3], br)
    if br:
        d0, c = adc(d0, p[0], ZERO)
        d1, c = adc(d1, p[1], c)
        d2, c = adc(d2, p[2], c)
        d3, c = adc(d3, p[3], c)
    return (d0, d1, d2, d3)


@njit(cache=True)
def neg_mod(a, p):
    """``-a mod p`` (0 stays 0)."""
    if is_zero(a):
        return a
    return sub_mod(p, a, p)


@njit(cache=True)
def is_zero(a):
    """True when all 4 limbs are 0."""
    return (a[0] | a[1] | a[2] | a[3]) == ZERO


@njit(cache=True)
def eq(a, b):
    """Limb-wise equality of two 4-tuples."""
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == ZERO


@njit(cache=True)
def load(x, i):
    """Row ``i`` of an ``(n, 4)`` uint64 array as a 4-tuple."""
    return (x[i, 0], x[i, 1], x[i, 2], x[i, 3])


@njit(cache=True)
def store(x, i, a):
    """Write a 4-tuple into row ``i`` of an ``(n, 4)`` uint64 array."""
    x[i, 0] = a[0]
    x[i, 1] = a[1]
    x[i, 2] = a[2]
    x[i, 3] = a[3]


@njit(cache=True)
def mont_pow(a, e, one, p, inv):
    """``a^e`` in Montgomery form; ``e`` a 4-limb tuple of the plain exponent, ``one`` = R mod p."""
    acc = one
    for li in range(3, -1, -1):
        w = e[li]
        for bit in range(63, -1, -1):
            acc = mont_mul(acc, acc, p, inv)
            if (w >> U64(bit)) & U64(1):
                acc = mont_mul(acc, a, p, inv)
    return acc


@njit(cache=True)
def batch_inverse_kernel(x, out, pm2, one, p, inv):
    """Montgomery's trick: all inverses with one exponentiation and 3(n-1) products; zeros map to 0.

    Source: P. Montgomery, "Speeding the Pollard and elliptic curve methods of factorization",
    Math. Comp. 48 (1987), section 10.3.1. ``out`` may alias ``x``.
    """
    n = x.shape[0]
    prefix = np.empty((n, 4), dtype=np.uint64)
    acc = one
    for i in range(n):
        store(prefix, i, acc)
        a = load(x, i)
        if not is_zero(a):
            acc = mont_mul(acc, a, p, inv)
    acc = mont_pow(acc, pm2, one, p, inv)
    for i in range(n - 1, -1, -1):
        a = load(x, i)
        if is_zero(a):
            store(out, i, a)
            continue
        store(out, i, mont_mul(acc, load(prefix, i), p, inv))
        acc = mont_mul(acc, a, p, inv)
