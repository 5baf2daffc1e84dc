"""BN254 optimal-ate multi-Miller loop and final exponentiation on Montgomery limbs (numba).

The same algorithm, tower and line formulas as the plain-integer reference
:mod:`proving.groth16.pairing` (so the Miller-loop values are EQUAL, not just equal after the
final exponentiation; tests compare them), on the Fq/Fq2 kernels of
:mod:`proving._kernels.fields`:

* Fq2 = Fq[u]/(u^2 + 1), Fq6 = Fq2[v]/(v^3 - xi) with xi = 9 + u, Fq12 = Fq6[w]/(w^2 - v)
  (EIP-197). In registers an Fq6 is a 3-tuple of Fq2, an Fq12 a 2-tuple of Fq6; in memory an
  Fq12 is a ``(12, 4)`` uint64 array, rows ``c0.c0.c0, c0.c0.c1, c0.c1.c0, ..., c1.c2.c1``.
* G2 walk (:func:`walk_kernel`): affine twist coordinates for ``m`` points at once; every step's
  ``m`` slope denominators share ONE Fq inversion (Montgomery's trick), so a step costs ~7 Fq2
  products per point. The output is each point's line coefficients ``(lambda, lambda xT - yT)``
  per step, ``(m, STEPS, 16)`` limbs (arkworks' ``G2Prepared``).
* Miller loop (:func:`miller_kernel`): one Fq12 squaring per doubling step shared by all pairs,
  one sparse line multiplication per pair and step.
* Final exponentiation (:func:`final_exp_product_kernel`, of a product of Miller values): easy
  part with one Fq12 inversion and the q^2-Frobenius, hard part by the base-q digit chain of
  Scott et al. (Pairing 2009).

Step program (:data:`STEP_OPS`): per step 0 = double T, 1 = add Q, 2 = add -Q (the signed
digits of 6x + 2 from the top, the top digit dropped), 3 = add psi(Q), 4 = add -psi^2(Q).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from proving._kernels.fields import (
    FQ_INV, FQ_MODULUS, FQ_ONE, FQ_P, FQ_PM2, LIMB_ZERO, fq2_add, fq2_inv, fq2_mul, fq2_neg, fq2_sqr,
    fq2_sub, fq_add, fq_mul, fq_neg, fq_sub, int_to_tuple,
)
from proving._kernels.ec import G1_INF, G2_INF, g1_add_mixed, g1_double, g1_store_jac, g2_add, g2_add_mixed, g2_double
from proving._kernels.limbs import batch_inverse_kernel, eq, is_zero

Q = FQ_MODULUS
#: BN254's x; the loop runs over the signed digits of 6x + 2 (EIP-197).
BN_X = 4965661367192848881


def _signed_digits(n: int) -> list[int]:
    out = []
    while n:
        if n & 1:
            d = 2 - (n & 3)
            out.append(d)
            n -= d
        else:
            out.append(0)
        n >>= 1
    return out


def _step_ops() -> np.ndarray:
    ops = []
    for digit in reversed(_signed_digits(6 * BN_X + 2)[:-1]):
        ops.append(0)
        if digit:
            ops.append(1 if digit == 1 else 2)
    return np.array(ops + [3, 4], dtype=np.int8)


#: The step program (see the module docstring); ``len(STEP_OPS)`` = 88 line coefficients per G2 point.
STEP_OPS = _step_ops()
STEPS = int(STEP_OPS.shape[0])


def _mont(x: int) -> tuple:
    return int_to_tuple((x << 256) % Q)


def _f2_pow(a: tuple[int, int], e: int) -> tuple[int, int]:
    out = (1, 0)
    while e:
        if e & 1:
            out = ((out[0] * a[0] - out[1] * a[1]) % Q, (out[0] * a[1] + out[1] * a[0]) % Q)
        a = ((a[0] * a[0] - a[1] * a[1]) % Q, 2 * a[0] * a[1] % Q)
        e >>= 1
    return out


def _mont2(a: tuple[int, int]) -> tuple:
    return (_mont(a[0]), _mont(a[1]))


_XI = (9, 1)
PI_X = _mont2(_f2_pow(_XI, (Q - 1) // 3))
PI_Y = _mont2(_f2_pow(_XI, (Q - 1) // 2))
PI2_X = _mont2(_f2_pow(_XI, (Q * Q - 1) // 3))
PI2_Y = _mont2(_f2_pow(_XI, (Q * Q - 1) // 2))
GAMMA1 = tuple(_mont2(_f2_pow(_XI, k * (Q - 1) // 6)) for k in range(6))
GAMMA2 = tuple(_mont2(_f2_pow(_XI, k * (Q**2 - 1) // 6)) for k in range(6))
GAMMA3 = tuple(_mont2(_f2_pow(_XI, k * (Q**3 - 1) // 6)) for k in range(6))
F2_ZERO = (LIMB_ZERO, LIMB_ZERO)
F2_ONE = (FQ_ONE, LIMB_ZERO)
F6_ZERO = (F2_ZERO, F2_ZERO, F2_ZERO)
F6_ONE = (F2_ONE, F2_ZERO, F2_ZERO)
F12_ONE = (F6_ONE, F6_ZERO)
_U64_BN_X = np.uint64(BN_X)


# ---------------------------------------------------------------- Fq2 helpers
@njit(cache=True)
def fq2_mul_xi(a):
    """``a * (9 + u)``."""
    a0, a1 = a
    t = fq_add(a0, a0)
    t = fq_add(t, t)
    t = fq_add(t, t)
    n0 = fq_add(t, a0)  # 9 a0
    t = fq_add(a1, a1)
    t = fq_add(t, t)
    t = fq_add(t, t)
    n1 = fq_add(t, a1)  # 9 a1
    return (fq_sub(n0, a1), fq_add(a0, n1))


@njit(cache=True)
def fq2_scale(a, k):
    """Fq2 times an Fq element."""
    return (fq_mul(a[0], k), fq_mul(a[1], k))


@njit(cache=True)
def fq2_conj(a):
    """``a^q`` (complex conjugate)."""
    return (a[0], fq_neg(a[1]))


@njit(cache=True)
def fq2_eq(a, b):
    """Equality in Fq2."""
    return eq(a[0], b[0]) and eq(a[1], b[1])


# ---------------------------------------------------------------- Fq6
@njit(cache=True)
def f6_add(a, b):
    """Fq6 sum."""
    return (fq2_add(a[0], b[0]), fq2_add(a[1], b[1]), fq2_add(a[2], b[2]))


@njit(cache=True)
def f6_sub(a, b):
    """Fq6 difference."""
    return (fq2_sub(a[0], b[0]), fq2_sub(a[1], b[1]), fq2_sub(a[2], b[2]))


@njit(cache=True)
def f6_neg(a):
    """Fq6 negation."""
    return (fq2_neg(a[0]), fq2_neg(a[1]), fq2_neg(a[2]))


@njit(cache=True)
def f6_mul(a, b):
    """Fq6 product, Karatsuba over Fq2 (6 Fq2 products)."""
    t0 = fq2_mul(a[0], b[0])
    t1 = fq2_mul(a[1], b[1])
    t2 = fq2_mul(a[2], b[2])
    s = fq2_sub(fq2_sub(fq2_mul(fq2_add(a[1], a[2]), fq2_add(b[1], b[2])), t1), t2)
    c0 = fq2_add(t0, fq2_mul_xi(s))
    c1 = fq2_add(fq2_sub(fq2_sub(fq2_mul(fq2_add(a[0], a[1]), fq2_add(b[0], b[1])), t0), t1), fq2_mul_xi(t2))
    c2 = fq2_add(fq2_sub(fq2_sub(fq2_mul(fq2_add(a[0], a[2]), fq2_add(b[0], b[2])), t0), t2), t1)
    return (c0, c1, c2)


@njit(cache=True)
def f6_mul_v(a):
    """``a * v``."""
    return (fq2_mul_xi(a[2]), a[0], a[1])


@njit(cache=True)
def f6_mul_01(a, b0, b1):
    """``a * (b0 + b1 v)`` (sparse, 5 Fq2 products)."""
    t0 = fq2_mul(a[0], b0)
    t1 = fq2_mul(a[1], b1)
    c0 = fq2_add(t0, fq2_mul_xi(fq2_mul(a[2], b1)))
    c1 = fq2_sub(fq2_sub(fq2_mul(fq2_add(a[0], a[1]), fq2_add(b0, b1)), t0), t1)
    c2 = fq2_add(fq2_mul(a[2], b0), t1)
    return (c0, c1, c2)


@njit(cache=True)
def f6_scale(a, k):
    """Fq6 times an Fq element."""
    return (fq2_scale(a[0], k), fq2_scale(a[1], k), fq2_scale(a[2], k))


@njit(cache=True)
def f6_inv(a):
    """Fq6 inverse (0 maps to 0)."""
    a0, a1, a2 = a
    c0 = fq2_sub(fq2_sqr(a0), fq2_mul_xi(fq2_mul(a1, a2)))
    c1 = fq2_sub(fq2_mul_xi(fq2_sqr(a2)), fq2_mul(a0, a1))
    c2 = fq2_sub(fq2_sqr(a1), fq2_mul(a0, a2))
    t = fq2_inv(fq2_add(fq2_mul(a0, c0), fq2_mul_xi(fq2_add(fq2_mul(a2, c1), fq2_mul(a1, c2)))))
    return (fq2_mul(c0, t), fq2_mul(c1, t), fq2_mul(c2, t))


# ---------------------------------------------------------------- Fq12
@njit(cache=True)
def f12_mul(a, b):
    """Fq12 product (Karatsuba over Fq6)."""
    t0 = f6_mul(a[0], b[0])
    t1 = f6_mul(a[1], b[1])
    c1 = f6_sub(f6_sub(f6_mul(f6_add(a[0], a[1]), f6_add(b[0], b[1])), t0), t1)
    return (f6_add(t0, f6_mul_v(t1)), c1)


@njit(cache=True)
def f12_sqr(a):
    """Fq12 square (complex squaring: 2 Fq6 products)."""
    ab = f6_mul(a[0], a[1])
    c0 = f6_sub(f6_sub(f6_mul(f6_add(a[0], a[1]), f6_add(a[0], f6_mul_v(a[1]))), ab), f6_mul_v(ab))
    return (c0, f6_add(ab, ab))


@njit(cache=True)
def f12_conj(a):
    """``a^(q^6)`` (conjugation over Fq6)."""
    return (a[0], f6_neg(a[1]))


@njit(cache=True)
def f12_inv(a):
    """Fq12 inverse."""
    t = f6_inv(f6_sub(f6_mul(a[0], a[0]), f6_mul_v(f6_mul(a[1], a[1]))))
    return (f6_mul(a[0], t), f6_neg(f6_mul(a[1], t)))


@njit(cache=True)
def f12_mul_line(f, y_p, l1, l2):
    """``f * (y_p + (l1 + l2 v) w)``: multiplication by a sparse line value (``y_p`` in Fq)."""
    t0 = f6_scale(f[0], y_p)
    t1 = f6_mul_01(f[1], l1, l2)
    s = f6_mul_01(f6_add(f[0], f[1]), (fq_add(l1[0], y_p), l1[1]), l2)
    return (f6_add(t0, f6_mul_v(t1)), f6_sub(f6_sub(s, t0), t1))


@njit(cache=True)
def f12_frobenius(a, gammas, conj):
    """``a^(q^e)``: coefficient ``c`` of ``w^k`` (``k = 2j + i``) becomes ``c' * gammas[k]``,
    ``c'`` the conjugate when ``conj`` (odd ``e``)."""
    c00 = a[0][0]
    c01 = a[0][1]
    c02 = a[0][2]
    c10 = a[1][0]
    c11 = a[1][1]
    c12 = a[1][2]
    if conj:
        c00, c01, c02 = fq2_conj(c00), fq2_conj(c01), fq2_conj(c02)
        c10, c11, c12 = fq2_conj(c10), fq2_conj(c11), fq2_conj(c12)
    return ((fq2_mul(c00, gammas[0]), fq2_mul(c01, gammas[2]), fq2_mul(c02, gammas[4])),
            (fq2_mul(c10, gammas[1]), fq2_mul(c11, gammas[3]), fq2_mul(c12, gammas[5])))


@njit(cache=True)
def f12_pow(a, e):
    """``a^e`` for a ``uint64`` exponent ``e >= 1`` (square-and-multiply from the top bit)."""
    top = 63
    while (e >> np.uint64(top)) & np.uint64(1) == np.uint64(0):
        top -= 1
    out = a
    for bit in range(top - 1, -1, -1):
        out = f12_sqr(out)
        if (e >> np.uint64(bit)) & np.uint64(1):
            out = f12_mul(out, a)
    return out


@njit(cache=True)
def _row(x, k):
    return (x[k, 0], x[k, 1], x[k, 2], x[k, 3])


@njit(cache=True)
def f12_load(x):
    """A ``(12, 4)`` array as an Fq12 tuple."""
    return (((_row(x, 0), _row(x, 1)), (_row(x, 2), _row(x, 3)), (_row(x, 4), _row(x, 5))),
            ((_row(x, 6), _row(x, 7)), (_row(x, 8), _row(x, 9)), (_row(x, 10), _row(x, 11))))


@njit(cache=True)
def f12_store(x, a):
    """Write an Fq12 tuple into a ``(12, 4)`` array."""
    for i in range(2):
        for j in range(3):
            for h in range(2):
                for k in range(4):
                    x[6 * i + 2 * j + h, k] = a[i][j][h][k]


@njit(cache=True)
def final_exp(f):
    """``f^((q^12 - 1) / r)`` (the reference's ``final_exponentiation``)."""
    f = f12_mul(f12_conj(f), f12_inv(f))
    f = f12_mul(f12_frobenius(f, GAMMA2, False), f)
    fx = f12_pow(f, _U64_BN_X)
    fx2 = f12_pow(fx, _U64_BN_X)
    fx3 = f12_pow(fx2, _U64_BN_X)
    fx3_36 = f12_pow(fx3, np.uint64(36))
    fx2_6 = f12_pow(fx2, np.uint64(6))
    fx_6 = f12_pow(fx, np.uint64(6))
    fx2_18 = f12_pow(fx2_6, np.uint64(3))
    fx_12 = f12_sqr(fx_6)
    y0 = f12_conj(f12_mul(f12_mul(f12_mul(fx3_36, f12_mul(fx2_18, f12_sqr(fx2_6))),
                                  f12_pow(fx_6, np.uint64(3))), f12_sqr(f)))
    y1 = f12_mul(f12_conj(f12_mul(f12_mul(fx3_36, fx2_18), fx_12)), f)
    y2 = f12_mul(fx2_6, f)
    out = f12_mul(y0, f12_frobenius(y1, GAMMA1, True))
    return f12_mul(f12_mul(out, f12_frobenius(y2, GAMMA2, False)), f12_frobenius(f, GAMMA3, True))


@njit(cache=True)
def final_exp_product_kernel(values, out):
    """``out = (prod_i values[i])^((q^12 - 1) / r)``; ``values`` ``(k, 12, 4)`` (``k >= 1``),
    ``out`` ``(12, 4)``."""
    f = f12_load(values[0])
    for i in range(1, values.shape[0]):
        f = f12_mul(f, f12_load(values[i]))
    f12_store(out, final_exp(f))


# ---------------------------------------------------------------- G2 walk
@njit(cache=True)
def _ld2(a, i, o):
    return ((a[i, o], a[i, o + 1], a[i, o + 2], a[i, o + 3]), (a[i, o + 4], a[i, o + 5], a[i, o + 6], a[i, o + 7]))


@njit(cache=True)
def _st2(a, i, o, v):
    for h in range(2):
        for k in range(4):
            a[i, o + 4 * h + k] = v[h][k]


@njit(cache=True)
def walk_kernel(q, ops, coeffs, status):
    """Line coefficients of every Miller-loop step for ``m`` affine G2 points at once.

    Args:
        q: ``(m, 16)`` affine twist points (Montgomery; none at infinity, all in the subgroup).
        ops: the step program (:data:`STEP_OPS`).
        coeffs: ``(m, len(ops), 16)`` output: ``lambda`` (limbs 0..7), ``lambda xT - yT`` (8..15).
        status: ``(m,)`` int8 output: 0 ok, 1 the walk hit ``T = -R`` or ``y = 0`` (the point
            is not in the order-r subgroup; its coefficients are garbage).
    """
    m = q.shape[0]
    t = q.copy()
    num = np.empty((m, 8), np.uint64)
    den = np.empty((m, 8), np.uint64)
    x2s = np.empty((m, 8), np.uint64)
    norms = np.empty((m, 4), np.uint64)
    for i in range(m):
        status[i] = 0
    for s in range(ops.shape[0]):
        op = ops[s]
        for i in range(m):
            x1 = _ld2(t, i, 0)
            y1 = _ld2(t, i, 8)
            dbl = op == 0
            if not dbl:
                qx = _ld2(q, i, 0)
                qy = _ld2(q, i, 8)
                if op == 1:
                    x2, y2 = qx, qy
                elif op == 2:
                    x2, y2 = qx, fq2_neg(qy)
                elif op == 3:
                    x2, y2 = fq2_mul(fq2_conj(qx), PI_X), fq2_mul(fq2_conj(qy), PI_Y)
                else:
                    x2, y2 = fq2_mul(qx, PI2_X), fq2_neg(fq2_mul(qy, PI2_Y))
                if fq2_eq(x1, x2):
                    if fq2_eq(y1, y2):
                        dbl = True
                    else:
                        status[i] = 1
                        x2 = fq2_add(x1, F2_ONE)
                if not dbl:
                    _st2(num, i, 0, fq2_sub(y2, y1))
                    _st2(den, i, 0, fq2_sub(x2, x1))
                    _st2(x2s, i, 0, x2)
            if dbl:
                xx = fq2_sqr(x1)
                _st2(num, i, 0, fq2_add(fq2_add(xx, xx), xx))
                yy = fq2_add(y1, y1)
                if is_zero(yy[0]) and is_zero(yy[1]):
                    status[i] = 1
                _st2(den, i, 0, yy)
                _st2(x2s, i, 0, x1)
            d = _ld2(den, i, 0)
            nrm = fq_add(fq_mul(d[0], d[0]), fq_mul(d[1], d[1]))
            for k in range(4):
                norms[i, k] = nrm[k]
        batch_inverse_kernel(norms, norms, FQ_PM2, FQ_ONE, FQ_P, FQ_INV)
        for i in range(m):
            x1 = _ld2(t, i, 0)
            y1 = _ld2(t, i, 8)
            d = _ld2(den, i, 0)
            ni = (norms[i, 0], norms[i, 1], norms[i, 2], norms[i, 3])
            lam = fq2_mul(_ld2(num, i, 0), (fq_mul(d[0], ni), fq_neg(fq_mul(d[1], ni))))
            x3 = fq2_sub(fq2_sub(fq2_sqr(lam), x1), _ld2(x2s, i, 0))
            y3 = fq2_sub(fq2_mul(lam, fq2_sub(x1, x3)), y1)
            _st2(coeffs[i], s, 0, lam)
            _st2(coeffs[i], s, 8, fq2_sub(fq2_mul(lam, x1), y1))
            _st2(t, i, 0, x3)
            _st2(t, i, 8, y3)


# ---------------------------------------------------------------- Miller loop
@njit(cache=True)
def _miller_rows(p, coeffs, ops, rows):
    f = F12_ONE
    for s in range(ops.shape[0]):
        if ops[s] == 0:
            f = f12_sqr(f)
        for r in range(rows.shape[0]):
            i = rows[r]
            xp = (p[i, 0], p[i, 1], p[i, 2], p[i, 3])
            yp = (p[i, 4], p[i, 5], p[i, 6], p[i, 7])
            lam = _ld2(coeffs[i], s, 0)
            f = f12_mul_line(f, yp, fq2_neg(fq2_scale(lam, xp)), _ld2(coeffs[i], s, 8))
    return f


@njit(cache=True)
def miller_kernel(p, coeffs, ops, rows, out):
    """``out = prod_{i in rows} f_i``: the shared multi-Miller loop of the pairs ``(p[i], coeffs[i])``.

    Args:
        p: ``(n, 8)`` affine G1 points (Montgomery), none at infinity.
        coeffs: ``(n, len(ops), 16)`` line coefficients from :func:`walk_kernel`.
        ops: :data:`STEP_OPS`.
        rows: int64 indices of the pairs to include.
        out: ``(12, 4)`` Fq12 output.
    """
    f12_store(out, _miller_rows(p, coeffs, ops, rows))


# ---------------------------------------------------------------- G2 subgroup membership
@njit(cache=True)
def _g2_psi_jac(p):
    """psi on Jacobian twist coordinates: ``(conj(X) xi^((q-1)/3), conj(Y) xi^((q-1)/2), conj(Z))``."""
    return (fq2_mul(fq2_conj(p[0]), PI_X), fq2_mul(fq2_conj(p[1]), PI_Y), fq2_conj(p[2]))


@njit(cache=True)
def _g2_jac_eq(p, q):
    pz = is_zero(p[2][0]) and is_zero(p[2][1])
    qz = is_zero(q[2][0]) and is_zero(q[2][1])
    if pz or qz:
        return pz and qz
    p2, q2 = fq2_sqr(p[2]), fq2_sqr(q[2])
    if not fq2_eq(fq2_mul(p[0], q2), fq2_mul(q[0], p2)):
        return False
    return fq2_eq(fq2_mul(p[1], fq2_mul(q2, q[2])), fq2_mul(q[1], fq2_mul(p2, p[2])))


@njit(cache=True)
def g2_in_subgroup(x, y):
    """Whether the affine twist point ``(x, y)`` (on the curve, not infinity) is in the order-r
    subgroup: ``[x0+1]Q + psi([x0]Q) + psi^2([x0]Q) = psi^3([2 x0]Q)`` for BN254's ``x0``
    (Dai, Lin, Zhao, Zhou, "Fast subgroup membership testings for G1, G2 and GT on
    pairing-friendly curves", ePrint 2022/348, sec. 3 and 5.1; gnark-crypto ``bn254/g2.go``
    ``IsInSubGroup``): one 63-bit multiplication instead of the 127-bit ``psi(Q) = [6x0^2]Q``
    of :func:`proving.groth16.points.g2_in_subgroup` (the reference; tests compare them)."""
    xq = G2_INF
    for bit in range(62, -1, -1):
        xq = g2_double(xq)
        if (_U64_BN_X >> np.uint64(bit)) & np.uint64(1):
            xq = g2_add_mixed(xq, x, y)
    psi_xq = _g2_psi_jac(xq)
    lhs = g2_add(g2_add(g2_add_mixed(xq, x, y), psi_xq), _g2_psi_jac(psi_xq))
    rhs = _g2_psi_jac(_g2_psi_jac(_g2_psi_jac(g2_double(xq))))
    return _g2_jac_eq(lhs, rhs)


@njit(cache=True)
def g2_subgroup_kernel(q, out):
    """``out[i]`` = :func:`g2_in_subgroup` of row ``i`` of ``q`` (``(m, 16)`` affine Montgomery
    twist points, on the curve, not infinity)."""
    for i in range(q.shape[0]):
        out[i] = g2_in_subgroup(_ld2(q, i, 0), _ld2(q, i, 8))


@njit(cache=True)
def g1_mul_kernel(p, k, out):
    """``out[i] = k[i] * p[i]`` as Jacobian rows ``(n, 12)``; ``p`` ``(n, 8)`` affine Montgomery
    (zeros = infinity), ``k`` ``(n, 4)`` standard-form limbs. Double-and-add with mixed
    additions (madd-2007-bl), starting at the top non-zero limb."""
    for i in range(p.shape[0]):
        x = (p[i, 0], p[i, 1], p[i, 2], p[i, 3])
        y = (p[i, 4], p[i, 5], p[i, 6], p[i, 7])
        acc = G1_INF
        if not (is_zero(x) and is_zero(y)):
            for li in range(3, -1, -1):
                w = k[i, li]
                for bit in range(63, -1, -1):
                    acc = g1_double(acc)
                    if (w >> np.uint64(bit)) & np.uint64(1):
                        acc = g1_add_mixed(acc, x, y)
        g1_store_jac(out, i, acc)


@njit(cache=True)
def g1_lincomb_kernel(p, k, out):
    """``out[0] = sum_i k[i] * p[i]`` (Jacobian ``(1, 12)``) by one shared double-and-add
    (Straus' method without tables): ``b`` doublings and one mixed addition per set bit, ``b``
    the length of the longest scalar. Serial: for the few to ~100 points of a verification,
    where :func:`proving.msm.msm_g1_arrays`' parallel windows cost more to start than they save.
    ``p`` ``(n, 8)`` affine Montgomery (zeros = infinity), ``k`` ``(n, 4)`` standard-form limbs."""
    n = p.shape[0]
    top = -1
    for i in range(n):
        if (p[i, 0] | p[i, 1] | p[i, 2] | p[i, 3] | p[i, 4] | p[i, 5] | p[i, 6] | p[i, 7]) == np.uint64(0):
            continue
        for li in range(3, -1, -1):
            w = k[i, li]
            if w != np.uint64(0):
                b = 63
                while (w >> np.uint64(b)) == np.uint64(0):
                    b -= 1
                if 64 * li + b > top:
                    top = 64 * li + b
                break
    acc = G1_INF
    for bit in range(top, -1, -1):
        acc = g1_double(acc)
        li = bit >> 6
        sh = np.uint64(bit & 63)
        for i in range(n):
            if (k[i, li] >> sh) & np.uint64(1):
                x = (p[i, 0], p[i, 1], p[i, 2], p[i, 3])
                y = (p[i, 4], p[i, 5], p[i, 6], p[i, 7])
                if not (is_zero(x) and is_zero(y)):
                    acc = g1_add_mixed(acc, x, y)
    g1_store_jac(out, 0, acc)
