"""Validation of untrusted Groth16 inputs (proof points, public inputs) and py_ecc conversions.

Checks run in the order a verifier must apply them before any pairing (EIP-196/197,
gnark/arkworks verifiers): shape and length, field range, curve equation, subgroup.
G1 of BN254 has cofactor 1, so on-curve implies in-subgroup; G2 (the sextic twist over Fq2)
has a large cofactor, so membership is checked explicitly with the endomorphism test
``psi(P) = [6x^2] P`` (El Housni, Guillevic, Piellard, "Co-factor clearing and subgroup
membership testing on pairing-friendly curves", AFRICACRYPT 2022; ``6x^2 = q mod r`` on BN
curves), a 127-bit multiplication instead of ``r * P = O`` (kept as the reference).

Also plain-integer Jacobian arithmetic for the verifiers' few scalar multiplications
(``a = 0`` formulas dbl-2009-l and add-2007-bl of the Explicit-Formulas Database,
https://hyperelliptic.org/EFD/g1p/auto-shortw-jacobian-0.html), generic over Fq and Fq2;
py_ecc is the reference it is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from py_ecc import optimized_bn128 as bn

from proving.curve import G1Point, G2Point, g2_affine
from proving.errors import FieldElementOutOfRange, MalformedProof, NotInSubgroup, PointNotOnCurve
from proving.field import FQ_MODULUS, FR_MODULUS
from proving.groth16.keys import Proof, VerifyingKey
from proving.groth16.pairing import psi

Q = FQ_MODULUS
#: G2 twist coefficient ``b' = 3 / (9 + u)`` (EIP-197), as ``(c0, c1)``.
B2 = (int(bn.b2.coeffs[0]), int(bn.b2.coeffs[1]))


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_fq(field: str, x: Any) -> None:
    if not _is_int(x):
        raise MalformedProof(field, f"expected an int coordinate, got {type(x).__name__}")
    if not 0 <= x < Q:
        raise FieldElementOutOfRange(field, x, Q)


def _fq2_mul(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return ((a[0] * b[0] - a[1] * b[1]) % Q, (a[0] * b[1] + a[1] * b[0]) % Q)


def check_g1(field: str, p: Any, *, allow_infinity: bool = False) -> None:
    """Shape, range and curve checks of an affine G1 point ``(x, y)``.

    Raises:
        MalformedProof: not a pair of ints (or infinity when not allowed).
        FieldElementOutOfRange: a coordinate ``>= q``.
        PointNotOnCurve: ``y^2 != x^3 + 3``.
    """
    if p is None:
        if allow_infinity:
            return
        raise MalformedProof(field, "point at infinity is not allowed here")
    if not isinstance(p, (tuple, list)) or len(p) != 2:
        raise MalformedProof(field, "expected a G1 point (x, y)")
    _check_fq(f"{field}.x", p[0])
    _check_fq(f"{field}.y", p[1])
    x, y = p
    if (y * y - x * x * x - 3) % Q:
        raise PointNotOnCurve(field)


def check_g2(field: str, p: Any, *, allow_infinity: bool = False) -> None:
    """Shape, range, twist-curve and subgroup checks of an affine G2 point ``((x0, x1), (y0, y1))``.

    Raises:
        MalformedProof: wrong shape (or infinity when not allowed).
        FieldElementOutOfRange: a coordinate ``>= q``.
        PointNotOnCurve: ``y^2 != x^3 + 3/(9+u)``.
        NotInSubgroup: on the twist but ``r * P != O``.
    """
    if p is None:
        if allow_infinity:
            return
        raise MalformedProof(field, "point at infinity is not allowed here")
    if not (isinstance(p, (tuple, list)) and len(p) == 2
            and all(isinstance(c, (tuple, list)) and len(c) == 2 for c in p)):
        raise MalformedProof(field, "expected a G2 point ((x_c0, x_c1), (y_c0, y_c1))")
    for name, c in (("x", p[0]), ("y", p[1])):
        _check_fq(f"{field}.{name}.c0", c[0])
        _check_fq(f"{field}.{name}.c1", c[1])
    x, y = g2_affine(p)
    lhs, rhs = _fq2_mul(y, y), _fq2_mul(_fq2_mul(x, x), x)
    if (lhs[0] - rhs[0] - B2[0]) % Q or (lhs[1] - rhs[1] - B2[1]) % Q:
        raise PointNotOnCurve(field)
    if not g2_in_subgroup((x, y)):
        raise NotInSubgroup(field)


def check_public_inputs(vk: VerifyingKey, public_inputs: Sequence[int]) -> None:
    """Length (``vk.n_public``) and range (``< r``) of the public inputs.

    Raises:
        MalformedProof: wrong count or a non-int.
        FieldElementOutOfRange: a value outside ``[0, r)``.
    """
    if len(public_inputs) != vk.n_public:
        raise MalformedProof("public_inputs", f"got {len(public_inputs)} values, the key expects {vk.n_public}")
    for i, v in enumerate(public_inputs):
        if not _is_int(v):
            raise MalformedProof(f"public_inputs[{i}]", f"expected an int, got {type(v).__name__}")
        if not 0 <= v < FR_MODULUS:
            raise FieldElementOutOfRange(f"public_inputs[{i}]", v, FR_MODULUS)


def check_verifying_key(vk: Any) -> None:
    """Structural checks of an untrusted verification key (e.g. read from a file): every point on
    its curve, G2 points in the subgroup, ``IC`` non-empty; infinity is allowed only in ``IC``.

    Raises:
        MalformedProof (or a subclass) naming the field ``vk.<name>``.
    """
    if not isinstance(vk, VerifyingKey):
        raise MalformedProof("vk", f"expected a VerifyingKey, got {type(vk).__name__}")
    check_g1("vk.alpha_g1", vk.alpha_g1)
    for name in ("beta_g2", "gamma_g2", "delta_g2"):
        check_g2(f"vk.{name}", getattr(vk, name))
    if not vk.ic:
        raise MalformedProof("vk.ic", "needs n_public + 1 >= 1 points")
    for i, p in enumerate(vk.ic):
        check_g1(f"vk.ic[{i}]", p, allow_infinity=True)


def check_proof(proof: Any) -> None:
    """All structural checks of a proof (see :func:`check_g1`, :func:`check_g2`), A and C before B
    (the G2 subgroup check is the expensive one)."""
    if not isinstance(proof, Proof):
        raise MalformedProof("proof", f"expected a Proof, got {type(proof).__name__}")
    check_g1("proof.a", proof.a)
    check_g1("proof.c", proof.c)
    check_g2("proof.b", proof.b)


def to_pyecc_g1(p: G1Point):
    """Affine int tuple -> py_ecc ``optimized_bn128`` projective point."""
    return bn.Z1 if p is None else (bn.FQ(p[0]), bn.FQ(p[1]), bn.FQ.one())


def to_pyecc_g2(p: G2Point):
    """Affine ``((x0, x1), (y0, y1))`` -> py_ecc ``optimized_bn128`` projective G2 point."""
    if p is None:
        return bn.Z2
    return (bn.FQ2([p[0][0], p[0][1]]), bn.FQ2([p[1][0], p[1][1]]), bn.FQ2.one())


def from_pyecc_g1(p) -> G1Point:
    """py_ecc projective G1 point -> affine int tuple (``None`` at infinity)."""
    if bn.is_inf(p):
        return None
    x, y = bn.normalize(p)
    return (int(x), int(y))


def from_pyecc_g2(p) -> G2Point:
    """py_ecc projective G2 point -> affine ``((x0, x1), (y0, y1))`` (``None`` at infinity)."""
    if bn.is_inf(p):
        return None
    x, y = bn.normalize(p)
    return ((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1])))


# ---------------------------------------------------------------- Jacobian arithmetic
# Specialised, inlined formulas (a = 0): dbl-2009-l and add-2007-bl (EFD). Infinity has Z = 0.
_INF1 = (1, 1, 0)
_INF2 = ((1, 0), (1, 0), (0, 0))


def _g1_double(p):
    x, y, z = p
    if z == 0 or y == 0:
        return _INF1
    a, b = x * x % Q, y * y % Q
    c = b * b % Q
    d = 2 * ((x + b) * (x + b) - a - c) % Q
    e = 3 * a % Q
    x3 = (e * e - 2 * d) % Q
    return (x3, (e * (d - x3) - 8 * c) % Q, 2 * y * z % Q)


def _g1_add(p, q):
    if p[2] == 0:
        return q
    if q[2] == 0:
        return p
    (x1, y1, z1), (x2, y2, z2) = p, q
    z1z1, z2z2 = z1 * z1 % Q, z2 * z2 % Q
    u1, u2 = x1 * z2z2 % Q, x2 * z1z1 % Q
    s1, s2 = y1 * z2 * z2z2 % Q, y2 * z1 * z1z1 % Q
    h, rr = (u2 - u1) % Q, 2 * (s2 - s1) % Q
    if h == 0:
        return _g1_double(p) if rr == 0 else _INF1
    i = 4 * h * h % Q
    j, v = h * i % Q, u1 * i % Q
    x3 = (rr * rr - j - 2 * v) % Q
    return (x3, (rr * (v - x3) - 2 * s1 * j) % Q, ((z1 + z2) * (z1 + z2) - z1z1 - z2z2) * h % Q)


def _m2(a, b):
    t0, t1 = a[0] * b[0], a[1] * b[1]
    return ((t0 - t1) % Q, ((a[0] + a[1]) * (b[0] + b[1]) - t0 - t1) % Q)


def _s2(a):
    return ((a[0] + a[1]) * (a[0] - a[1]) % Q, 2 * a[0] * a[1] % Q)


def _g2_double(p):
    x, y, z = p
    if z == (0, 0) or y == (0, 0):
        return _INF2
    a, b = _s2(x), _s2(y)
    c = _s2(b)
    xb = _s2(((x[0] + b[0]), (x[1] + b[1])))
    d = (2 * (xb[0] - a[0] - c[0]) % Q, 2 * (xb[1] - a[1] - c[1]) % Q)
    e = (3 * a[0] % Q, 3 * a[1] % Q)
    ee = _s2(e)
    x3 = ((ee[0] - 2 * d[0]) % Q, (ee[1] - 2 * d[1]) % Q)
    t = _m2(e, (d[0] - x3[0], d[1] - x3[1]))
    yz = _m2(y, z)
    return (x3, ((t[0] - 8 * c[0]) % Q, (t[1] - 8 * c[1]) % Q), (2 * yz[0] % Q, 2 * yz[1] % Q))


def _g2_add(p, q):
    if p[2] == (0, 0):
        return q
    if q[2] == (0, 0):
        return p
    (x1, y1, z1), (x2, y2, z2) = p, q
    z1z1, z2z2 = _s2(z1), _s2(z2)
    u1, u2 = _m2(x1, z2z2), _m2(x2, z1z1)
    s1, s2 = _m2(_m2(y1, z2), z2z2), _m2(_m2(y2, z1), z1z1)
    h = ((u2[0] - u1[0]) % Q, (u2[1] - u1[1]) % Q)
    rr = (2 * (s2[0] - s1[0]) % Q, 2 * (s2[1] - s1[1]) % Q)
    if h == (0, 0):
        return _g2_double(p) if rr == (0, 0) else _INF2
    hh = _s2(h)
    i = (4 * hh[0] % Q, 4 * hh[1] % Q)
    j, v = _m2(h, i), _m2(u1, i)
    r2 = _s2(rr)
    x3 = ((r2[0] - j[0] - 2 * v[0]) % Q, (r2[1] - j[1] - 2 * v[1]) % Q)
    t, sj = _m2(rr, (v[0] - x3[0], v[1] - x3[1])), _m2(s1, j)
    zz = _s2((z1[0] + z2[0], z1[1] + z2[1]))
    z3 = _m2(((zz[0] - z1z1[0] - z2z2[0]), (zz[1] - z1z1[1] - z2z2[1])), h)
    return (x3, ((t[0] - 2 * sj[0]) % Q, (t[1] - 2 * sj[1]) % Q), z3)


def _mul(double, add, inf, p, k: int):
    acc = inf
    for bit in bin(k)[2:]:
        acc = double(acc)
        if bit == "1":
            acc = add(acc, p)
    return acc


def _g1_affine(p) -> G1Point:
    if p[2] == 0:
        return None
    zi = pow(p[2], -1, Q)
    zi2 = zi * zi % Q
    return (p[0] * zi2 % Q, p[1] * zi2 * zi % Q)


def _g2_affine(p) -> G2Point:
    x, y, z = p
    if z == (0, 0):
        return None
    t = pow(z[0] * z[0] + z[1] * z[1], -1, Q)
    zi = (z[0] * t % Q, -z[1] * t % Q)
    zi2 = _s2(zi)
    return (_m2(x, zi2), _m2(y, _m2(zi2, zi)))


def g1_add(p: G1Point, q: G1Point) -> G1Point:
    """``P + Q`` in G1 (affine in, affine out)."""
    jp = (p[0], p[1], 1) if p is not None else _INF1
    jq = (q[0], q[1], 1) if q is not None else _INF1
    return _g1_affine(_g1_add(jp, jq))


def g1_neg(p: G1Point) -> G1Point:
    """``-P`` in G1."""
    return None if p is None else (p[0], -p[1] % Q)


def g1_mul(p: G1Point, k: int) -> G1Point:
    """``k * P`` in G1 (double-and-add; ``k >= 0``)."""
    if p is None or k == 0:
        return None
    return _g1_affine(_mul(_g1_double, _g1_add, _INF1, (p[0], p[1], 1), k))


def g1_lincomb(points: Sequence[G1Point], scalars: Sequence[int]) -> G1Point:
    """``sum k_i * P_i`` in G1 (one affine conversion at the end)."""
    acc = _INF1
    for p, k in zip(points, scalars):
        if p is not None and k:
            acc = _g1_add(acc, _mul(_g1_double, _g1_add, _INF1, (p[0], p[1], 1), k))
    return _g1_affine(acc)


def g2_mul(p: G2Point, k: int) -> G2Point:
    """``k * P`` on the G2 twist (double-and-add; ``k >= 0``), affine ``((x0, x1), (y0, y1))``."""
    if p is None or k == 0:
        return None
    return _g2_affine(_mul(_g2_double, _g2_add, _INF2, (tuple(p[0]), tuple(p[1]), (1, 0)), k))


#: ``6x^2`` for BN254's x: ``q = 6x^2 (mod r)``, the eigenvalue of psi on G2.
_PSI_EIGENVALUE = 6 * 4965661367192848881**2


def g2_in_subgroup(p: G2Point) -> bool:
    """Whether a twist point (assumed on the curve) is in the order-r subgroup: ``psi(P) = [6x^2] P``."""
    if p is None:
        return True
    q = g2_affine(p)
    return psi(q) == g2_mul(q, _PSI_EIGENVALUE)


def g2_in_subgroup_ref(p: G2Point) -> bool:
    """Reference membership test ``r * P = O`` (slow; for tests)."""
    return g2_mul(p, FR_MODULUS) is None
