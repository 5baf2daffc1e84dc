"""The optimal ate pairing on BN254 in plain Python integers, for products of pairings.

``pairing_product_is_one([(P_1, Q_1), ...])`` checks ``prod e(P_i, Q_i) = 1`` with ONE shared
Miller loop (one squaring of the accumulator per step for all pairs) and ONE final
exponentiation: the equation of the EVM precompile 0x08 (EIP-197), of Groth16 verification
and of batched verification. :func:`pairing` returns ``e(P, Q)`` itself, equal to py_ecc's
``optimized_bn128.pairing(Q, P)`` (the reference; a test compares them).

Tower (as in EIP-197 and ffjavascript): ``Fq2 = Fq[u]/(u^2 + 1)``,
``Fq6 = Fq2[v]/(v^3 - xi)`` with ``xi = 9 + u``, ``Fq12 = Fq6[w]/(w^2 - v)``. G2 points live on
the D-type sextic twist ``y^2 = x^3 + 3/xi`` and untwist as ``(x w^2, y w^3)``.

Miller loop (Vercauteren, "Optimal pairings", IEEE TIT 2010; the loop of py_ecc): over
``6x + 2`` in signed binary with affine twist coordinates, then the two Frobenius lines with
``pi(Q)`` and ``-pi^2(Q)``. A line through twist points ``T, T'`` with slope ``lambda``
evaluated at ``P = (xP, yP)`` is ``yP + (-lambda xP + (lambda xT - yT) v) w`` (sparse);
factors in Fq6 are dropped, as the final exponentiation kills them.
Final exponentiation ``f^((q^12 - 1)/r)``: easy part ``(q^6 - 1)(q^2 + 1)`` with conjugation,
one inversion and the q^2-Frobenius; hard part ``(q^4 - q^2 + 1)/r`` by square-and-multiply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from proving.curve import G1Point, G2Point, g2_affine
from proving.field import FQ_MODULUS, FR_MODULUS

Q = FQ_MODULUS
Fq2 = tuple[int, int]
Fq6 = tuple[Fq2, Fq2, Fq2]
Fq12 = tuple[Fq6, Fq6]

#: BN254's curve parameter x; the optimal ate loop runs over 6x + 2 (EIP-197).
BN_X = 4965661367192848881
ATE_LOOP_COUNT = 6 * BN_X + 2


def _signed_digits(n: int) -> list[int]:
    """Non-adjacent form of ``n``, least significant digit first."""
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


# py_ecc's pseudo_binary_encoding of 6x + 2 is this NAF (same length, top digit 1)
_ATE_DIGITS = _signed_digits(ATE_LOOP_COUNT)


# ---------------------------------------------------------------- Fq2
def f2_add(a: Fq2, b: Fq2) -> Fq2:
    return ((a[0] + b[0]) % Q, (a[1] + b[1]) % Q)


def f2_sub(a: Fq2, b: Fq2) -> Fq2:
    return ((a[0] - b[0]) % Q, (a[1] - b[1]) % Q)


def f2_neg(a: Fq2) -> Fq2:
    return (-a[0] % Q, -a[1] % Q)


def f2_mul(a: Fq2, b: Fq2) -> Fq2:
    t0, t1 = a[0] * b[0], a[1] * b[1]
    return ((t0 - t1) % Q, ((a[0] + a[1]) * (b[0] + b[1]) - t0 - t1) % Q)


def f2_sqr(a: Fq2) -> Fq2:
    return ((a[0] + a[1]) * (a[0] - a[1]) % Q, 2 * a[0] * a[1] % Q)


def f2_scale(a: Fq2, k: int) -> Fq2:
    return (a[0] * k % Q, a[1] * k % Q)


def f2_inv(a: Fq2) -> Fq2:
    t = pow(a[0] * a[0] + a[1] * a[1], -1, Q)
    return (a[0] * t % Q, -a[1] * t % Q)


def f2_conj(a: Fq2) -> Fq2:
    return (a[0], -a[1] % Q)


def f2_mul_xi(a: Fq2) -> Fq2:
    """``a * (9 + u)``."""
    return ((9 * a[0] - a[1]) % Q, (a[0] + 9 * a[1]) % Q)


def f2_pow(a: Fq2, e: int) -> Fq2:
    out = (1, 0)
    while e:
        if e & 1:
            out = f2_mul(out, a)
        a = f2_sqr(a)
        e >>= 1
    return out


F2_ZERO: Fq2 = (0, 0)
F2_ONE: Fq2 = (1, 0)
XI: Fq2 = (9, 1)
#: Frobenius constants of the twist: xi^((q-1)/3), xi^((q-1)/2), xi^((q^2-1)/3), xi^((q^2-1)/2).
_PI_X = f2_pow(XI, (Q - 1) // 3)
_PI_Y = f2_pow(XI, (Q - 1) // 2)
_PI2_X = f2_pow(XI, (Q * Q - 1) // 3)
_PI2_Y = f2_pow(XI, (Q * Q - 1) // 2)
#: q^e-Frobenius on Fq12 maps the coefficient c of w^k to c^(q^e) * xi^(k (q^e - 1) / 6).
_GAMMA_POWERS = {e: [f2_pow(XI, k * (Q**e - 1) // 6) for k in range(6)] for e in (1, 2, 3)}
#: Hard part of the final exponentiation.
_HARD_EXPONENT = (Q**4 - Q**2 + 1) // FR_MODULUS


# ---------------------------------------------------------------- Fq6
def f6_add(a: Fq6, b: Fq6) -> Fq6:
    (a0, a1), (a2, a3), (a4, a5) = a
    (b0, b1), (b2, b3), (b4, b5) = b
    return (((a0 + b0) % Q, (a1 + b1) % Q), ((a2 + b2) % Q, (a3 + b3) % Q), ((a4 + b4) % Q, (a5 + b5) % Q))


def f6_sub(a: Fq6, b: Fq6) -> Fq6:
    (a0, a1), (a2, a3), (a4, a5) = a
    (b0, b1), (b2, b3), (b4, b5) = b
    return (((a0 - b0) % Q, (a1 - b1) % Q), ((a2 - b2) % Q, (a3 - b3) % Q), ((a4 - b4) % Q, (a5 - b5) % Q))


def f6_neg(a: Fq6) -> Fq6:
    return (f2_neg(a[0]), f2_neg(a[1]), f2_neg(a[2]))


def f6_mul(a: Fq6, b: Fq6) -> Fq6:
    """Karatsuba over Fq2 (``v^3 = xi``), inlined on integers with one reduction per coefficient."""
    (a00, a01), (a10, a11), (a20, a21) = a
    (b00, b01), (b10, b11), (b20, b21) = b
    # t_i = a_i * b_i (unreduced Fq2 products)
    p0, q0 = a00 * b00, a01 * b01
    t00, t01 = p0 - q0, (a00 + a01) * (b00 + b01) - p0 - q0
    p1, q1 = a10 * b10, a11 * b11
    t10, t11 = p1 - q1, (a10 + a11) * (b10 + b11) - p1 - q1
    p2, q2 = a20 * b20, a21 * b21
    t20, t21 = p2 - q2, (a20 + a21) * (b20 + b21) - p2 - q2
    # (a1 + a2)(b1 + b2) - t1 - t2, times xi
    x0, x1, y0, y1 = a10 + a20, a11 + a21, b10 + b20, b11 + b21
    p, q = x0 * y0, x1 * y1
    s0, s1 = p - q - t10 - t20, (x0 + x1) * (y0 + y1) - p - q - t11 - t21
    c0 = ((t00 + 9 * s0 - s1) % Q, (t01 + s0 + 9 * s1) % Q)
    # (a0 + a1)(b0 + b1) - t0 - t1 + xi t2
    x0, x1, y0, y1 = a00 + a10, a01 + a11, b00 + b10, b01 + b11
    p, q = x0 * y0, x1 * y1
    c1 = ((p - q - t00 - t10 + 9 * t20 - t21) % Q, ((x0 + x1) * (y0 + y1) - p - q - t01 - t11 + t20 + 9 * t21) % Q)
    # (a0 + a2)(b0 + b2) - t0 - t2 + t1
    x0, x1, y0, y1 = a00 + a20, a01 + a21, b00 + b20, b01 + b21
    p, q = x0 * y0, x1 * y1
    c2 = ((p - q - t00 - t20 + t10) % Q, ((x0 + x1) * (y0 + y1) - p - q - t01 - t21 + t11) % Q)
    return (c0, c1, c2)


def f6_mul_v(a: Fq6) -> Fq6:
    """``a * v``."""
    return (f2_mul_xi(a[2]), a[0], a[1])


def f6_mul_01(a: Fq6, b0: Fq2, b1: Fq2) -> Fq6:
    """``a * (b0 + b1 v)`` (sparse), inlined on integers."""
    (a00, a01), (a10, a11), (a20, a21) = a
    (b00, b01), (b10, b11) = b0, b1
    p, q = a00 * b00, a01 * b01
    t00, t01 = p - q, (a00 + a01) * (b00 + b01) - p - q
    p, q = a10 * b10, a11 * b11
    t10, t11 = p - q, (a10 + a11) * (b10 + b11) - p - q
    p, q = a20 * b10, a21 * b11  # a2 * b1, times xi
    u0, u1 = p - q, (a20 + a21) * (b10 + b11) - p - q
    c0 = ((t00 + 9 * u0 - u1) % Q, (t01 + u0 + 9 * u1) % Q)
    x0, x1, y0, y1 = a00 + a10, a01 + a11, b00 + b10, b01 + b11
    p, q = x0 * y0, x1 * y1
    c1 = ((p - q - t00 - t10) % Q, ((x0 + x1) * (y0 + y1) - p - q - t01 - t11) % Q)
    p, q = a20 * b00, a21 * b01  # a2 * b0 + t1
    c2 = ((p - q + t10) % Q, ((a20 + a21) * (b00 + b01) - p - q + t11) % Q)
    return (c0, c1, c2)


def f6_scale(a: Fq6, k: int) -> Fq6:
    return (f2_scale(a[0], k), f2_scale(a[1], k), f2_scale(a[2], k))


def f6_inv(a: Fq6) -> Fq6:
    a0, a1, a2 = a
    c0 = f2_sub(f2_sqr(a0), f2_mul_xi(f2_mul(a1, a2)))
    c1 = f2_sub(f2_mul_xi(f2_sqr(a2)), f2_mul(a0, a1))
    c2 = f2_sub(f2_sqr(a1), f2_mul(a0, a2))
    t = f2_inv(f2_add(f2_mul(a0, c0), f2_mul_xi(f2_add(f2_mul(a2, c1), f2_mul(a1, c2)))))
    return (f2_mul(c0, t), f2_mul(c1, t), f2_mul(c2, t))


F6_ZERO: Fq6 = (F2_ZERO, F2_ZERO, F2_ZERO)
F6_ONE: Fq6 = (F2_ONE, F2_ZERO, F2_ZERO)


# ---------------------------------------------------------------- Fq12
F12_ONE: Fq12 = (F6_ONE, F6_ZERO)


def f12_mul(a: Fq12, b: Fq12) -> Fq12:
    t0, t1 = f6_mul(a[0], b[0]), f6_mul(a[1], b[1])
    c1 = f6_sub(f6_sub(f6_mul(f6_add(a[0], a[1]), f6_add(b[0], b[1])), t0), t1)
    return (f6_add(t0, f6_mul_v(t1)), c1)


def f12_sqr(a: Fq12) -> Fq12:
    ab = f6_mul(a[0], a[1])
    c0 = f6_sub(f6_sub(f6_mul(f6_add(a[0], a[1]), f6_add(a[0], f6_mul_v(a[1]))), ab), f6_mul_v(ab))
    return (c0, f6_add(ab, ab))


def f12_conj(a: Fq12) -> Fq12:
    return (a[0], f6_neg(a[1]))


def f12_inv(a: Fq12) -> Fq12:
    t = f6_inv(f6_sub(f6_mul(a[0], a[0]), f6_mul_v(f6_mul(a[1], a[1]))))
    return (f6_mul(a[0], t), f6_neg(f6_mul(a[1], t)))


def f12_mul_line(f: Fq12, y_p: int, l1: Fq2, l2: Fq2) -> Fq12:
    """``f * (y_p + (l1 + l2 v) w)``: multiplication by a sparse line value."""
    t0 = f6_scale(f[0], y_p)
    t1 = f6_mul_01(f[1], l1, l2)
    c1 = f6_sub(f6_sub(f6_mul_01(f6_add(f[0], f[1]), f2_add((y_p, 0), l1), l2), t0), t1)
    return (f6_add(t0, f6_mul_v(t1)), c1)


def f12_frobenius(a: Fq12, e: int) -> Fq12:
    """``a^(q^e)`` for ``e`` in 1..3: coefficient ``c`` of ``w^k`` (k = 2j + i) becomes
    ``c^(q^e) * xi^(k (q^e - 1) / 6)`` (``c^q`` is the conjugate in Fq2)."""
    gammas = _GAMMA_POWERS[e]
    conj = f2_conj if e % 2 else (lambda c: c)
    return tuple(tuple(f2_mul(conj(a[i][j]), gammas[2 * j + i]) for j in range(3)) for i in range(2))  # type: ignore[return-value]


def f12_pow(a: Fq12, e: int) -> Fq12:
    out = F12_ONE
    for bit in bin(e)[2:]:
        out = f12_sqr(out)
        if bit == "1":
            out = f12_mul(out, a)
    return out


def _easy_part(f: Fq12) -> Fq12:
    """``f^((q^6 - 1)(q^2 + 1))``: lands in the cyclotomic subgroup, where inverse = conjugate."""
    f = f12_mul(f12_conj(f), f12_inv(f))
    return f12_mul(f12_frobenius(f, 2), f)


def _hard_part(f: Fq12) -> Fq12:
    """``f^((q^4 - q^2 + 1) / r)`` for ``f`` in the cyclotomic subgroup, from the base-q digits of
    the exponent as polynomials in ``x`` (Scott, Benger, Charlemagne, Dominguez Perez, Kachisa,
    "On the final exponentiation for calculating pairings on ordinary elliptic curves",
    Pairing 2009): ``l0 + l1 q + l2 q^2 + q^3`` with ``l2 = 6x^2 + 1``,
    ``l1 = -36x^3 - 18x^2 - 12x + 1``, ``l0 = -36x^3 - 30x^2 - 18x - 2``."""
    fx = f12_pow(f, BN_X)
    fx2 = f12_pow(fx, BN_X)
    fx3 = f12_pow(fx2, BN_X)
    fx3_36, fx2_6, fx_6 = f12_pow(fx3, 36), f12_pow(fx2, 6), f12_pow(fx, 6)
    fx2_18, fx_12 = f12_pow(fx2_6, 3), f12_pow(fx_6, 2)
    y0 = f12_conj(f12_mul(f12_mul(f12_mul(fx3_36, f12_mul(fx2_18, f12_pow(fx2_6, 2))), f12_pow(fx_6, 3)), f12_sqr(f)))
    y1 = f12_mul(f12_conj(f12_mul(f12_mul(fx3_36, fx2_18), fx_12)), f)
    y2 = f12_mul(fx2_6, f)
    out = f12_mul(y0, f12_frobenius(y1, 1))
    return f12_mul(f12_mul(out, f12_frobenius(y2, 2)), f12_frobenius(f, 3))


def final_exponentiation(f: Fq12) -> Fq12:
    """``f^((q^12 - 1) / r)`` (exactly py_ecc's ``final_exponentiate``)."""
    return _hard_part(_easy_part(f))


def final_exponentiation_plain(f: Fq12) -> Fq12:
    """The same by plain square-and-multiply of the hard part (the reference for tests)."""
    return f12_pow(_easy_part(f), _HARD_EXPONENT)


def to_pyecc_coeffs(a: Fq12) -> list[int]:
    """Coefficients of ``a`` in py_ecc's basis ``Fq[w]/(w^12 - 18 w^6 + 82)`` (``u = w^6 - 9``)."""
    out = [0] * 12
    for i in range(2):
        for j in range(3):
            c0, c1 = a[i][j]
            out[2 * j + i] = (c0 - 9 * c1) % Q
            out[2 * j + i + 6] = c1
    return out


# ---------------------------------------------------------------- Miller loop
def _double_step(t: tuple[Fq2, Fq2]) -> tuple[tuple[Fq2, Fq2], Fq2, Fq2]:
    """``2T`` and the tangent's ``(lambda, lambda xT - yT)``."""
    x, y = t
    lam = f2_mul(f2_scale(f2_sqr(x), 3), f2_inv(f2_add(y, y)))
    x3 = f2_sub(f2_sqr(lam), f2_add(x, x))
    y3 = f2_sub(f2_mul(lam, f2_sub(x, x3)), y)
    return (x3, y3), lam, f2_sub(f2_mul(lam, x), y)


def _add_step(t: tuple[Fq2, Fq2], q: tuple[Fq2, Fq2]) -> tuple[tuple[Fq2, Fq2], Fq2, Fq2]:
    """``T + Q`` and the chord's ``(lambda, lambda xT - yT)``."""
    (x1, y1), (x2, y2) = t, q
    if x1 == x2:
        if y1 == y2:
            return _double_step(t)
        raise ValueError("Miller loop hit T = -Q; the G2 point is not in the order-r subgroup")
    lam = f2_mul(f2_sub(y2, y1), f2_inv(f2_sub(x2, x1)))
    x3 = f2_sub(f2_sub(f2_sqr(lam), x1), x2)
    y3 = f2_sub(f2_mul(lam, f2_sub(x1, x3)), y1)
    return (x3, y3), lam, f2_sub(f2_mul(lam, x1), y1)


def psi(q: tuple[Fq2, Fq2]) -> tuple[Fq2, Fq2]:
    """The endomorphism ``psi = untwist^-1 . Frobenius . untwist`` of the G2 twist (affine):
    ``(conj(x) xi^((q-1)/3), conj(y) xi^((q-1)/2))``; on G2 it is multiplication by ``q mod r``."""
    x, y = q
    return (f2_mul(f2_conj(x), _PI_X), f2_mul(f2_conj(y), _PI_Y))


@dataclass(frozen=True)
class PreparedG2:
    """The line coefficients ``(lambda, lambda xT - yT)`` of every Miller-loop step for one G2
    point, in loop order (arkworks' ``G2Prepared``): a fixed key point is walked once and each
    pairing with it only evaluates the lines at its G1 point."""

    coeffs: tuple[tuple[Fq2, Fq2], ...]


def _walk(q: tuple[Fq2, Fq2]) -> PreparedG2:
    coeffs, t, neg = [], q, (q[0], f2_neg(q[1]))
    for digit in reversed(_ATE_DIGITS[:-1]):
        t, lam, c = _double_step(t)
        coeffs.append((lam, c))
        if digit:
            t, lam, c = _add_step(t, q if digit == 1 else neg)
            coeffs.append((lam, c))
    x, y = q
    nq2 = (f2_mul(x, _PI2_X), f2_neg(f2_mul(y, _PI2_Y)))
    t, lam, c = _add_step(t, psi(q))
    coeffs.append((lam, c))
    _t, lam, c = _add_step(t, nq2)
    coeffs.append((lam, c))
    return PreparedG2(tuple(coeffs))


def walk_g2(q: G2Point) -> PreparedG2:
    """:class:`PreparedG2` of a valid G2 point (not cached: for proof points)."""
    return _walk(g2_affine(q))


@lru_cache(maxsize=256)
def prepare_g2(q: G2Point) -> PreparedG2:
    """:class:`PreparedG2` of a valid G2 point (cached: meant for verification-key points)."""
    return _walk(g2_affine(q))


def miller_loop(pairs: Sequence[tuple[G1Point, "G2Point | PreparedG2"]]) -> Fq12:
    """``prod_i f_{6x+2, Q_i}(P_i)`` times the Frobenius lines, sharing the squarings.

    Args:
        pairs: affine ``(P in G1, Q in G2)`` (py_ecc coefficient order) or ``(P, PreparedG2)``;
            pairs with a point at infinity contribute 1. Points must be valid (on curve, Q in
            the subgroup).
    """
    live = []
    for p, q in pairs:
        if p is None or q is None:
            continue
        prepared = q if isinstance(q, PreparedG2) else _walk(g2_affine(q))
        live.append((p[0], p[1], prepared.coeffs))
    if not live:
        return F12_ONE
    f, k = F12_ONE, 0
    for digit in reversed(_ATE_DIGITS[:-1]):
        f = f12_sqr(f)
        for _step in (0, 1) if digit else (0,):
            for xp, yp, coeffs in live:
                lam, c = coeffs[k]
                f = f12_mul_line(f, yp, f2_neg(f2_scale(lam, xp)), c)
            k += 1
    for _step in (0, 1):
        for xp, yp, coeffs in live:
            lam, c = coeffs[k]
            f = f12_mul_line(f, yp, f2_neg(f2_scale(lam, xp)), c)
        k += 1
    return f


def pairing(p: G1Point, q: G2Point) -> Fq12:
    """``e(P, Q)`` as an Fq12 tower element (see :func:`to_pyecc_coeffs` for py_ecc's basis)."""
    return final_exponentiation(miller_loop([(p, q)]))


def pairing_product_is_one(pairs: Sequence[tuple[G1Point, G2Point]]) -> bool:
    """``prod_i e(P_i, Q_i) == 1``: one shared Miller loop and one final exponentiation.

    Args:
        pairs: affine, validated ``(G1, G2)`` points (py_ecc coefficient order).
    """
    return final_exponentiation(miller_loop(pairs)) == F12_ONE
