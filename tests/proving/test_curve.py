"""G1/G2 Jacobian kernels against py_ecc: add, mixed add, double, neg, mul, batch affine."""

from __future__ import annotations

import random

import numpy as np
import pytest
from py_ecc import optimized_bn128 as bn

from proving import curve as C
from proving.field import to_limbs

R = bn.curve_order
RNG = random.Random(11)


def aff1(p):
    if bn.is_inf(p):
        return None
    x, y = bn.normalize(p)
    return (int(x), int(y))


def aff2(p):
    if bn.is_inf(p):
        return None
    x, y = bn.normalize(p)
    return ((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1])))


CASES = {
    "g1": (bn.G1, bn.Z1, aff1, C.g1_to_affine_array, C.g1_from_affine_array, C.g1_to_jacobian,
           C.g1_apply, C.g1_batch_to_affine),
    "g2": (bn.G2, bn.Z2, aff2, C.g2_to_affine_array, C.g2_from_affine_array, C.g2_to_jacobian,
           C.g2_apply, C.g2_batch_to_affine),
}


def _pairs(gen, zero):
    """(P, Q) pairs covering the exceptional cases and random points."""
    a = bn.multiply(gen, RNG.randrange(1, R))
    b = bn.multiply(gen, RNG.randrange(1, R))
    c = bn.multiply(gen, RNG.randrange(1, R))
    return [(a, b), (a, a), (a, bn.neg(a)), (zero, a), (a, zero), (zero, zero), (b, c), (gen, bn.double(gen))]


@pytest.mark.parametrize("group", ["g1", "g2"])
def test_add_double_neg_mixed(group):
    gen, zero, aff, to_arr, from_arr, to_jac, apply, to_aff = CASES[group]
    pairs = _pairs(gen, zero)
    ps = to_jac(to_arr([aff(p) for p, _ in pairs]))
    qa = to_arr([aff(q) for _, q in pairs])
    qs = to_jac(qa)
    assert from_arr(to_aff(apply("add", ps, qs))) == [aff(bn.add(p, q)) for p, q in pairs]
    assert from_arr(to_aff(apply("add_mixed", ps, qa))) == [aff(bn.add(p, q)) for p, q in pairs]
    assert from_arr(to_aff(apply("double", ps))) == [aff(bn.double(p)) for p, _ in pairs]
    assert from_arr(to_aff(apply("neg", ps))) == [aff(bn.neg(p)) for p, _ in pairs]


@pytest.mark.parametrize("group", ["g1", "g2"])
def test_non_normalised_jacobian_inputs(group):
    """Z != 1 inputs (sums and doublings) exercise the general formulas, incl. P + P and P + (-P)."""
    gen, zero, aff, to_arr, from_arr, to_jac, apply, to_aff = CASES[group]
    a = bn.multiply(gen, RNG.randrange(1, R))
    ja = apply("double", to_jac(to_arr([aff(a)])))  # 2a with Z != 1
    jb = apply("add", to_jac(to_arr([aff(a)])), to_jac(to_arr([aff(a)])))  # 2a, another Z
    two_a = bn.double(a)
    assert from_arr(to_aff(apply("add", ja, jb))) == [aff(bn.double(two_a))]
    assert from_arr(to_aff(apply("add", ja, apply("neg", jb)))) == [None]
    assert from_arr(to_aff(apply("add_mixed", ja, to_arr([aff(a)])))) == [aff(bn.add(two_a, a))]
    assert from_arr(to_aff(apply("add_mixed", ja, to_arr([aff(two_a)])))) == [aff(bn.double(two_a))]
    assert from_arr(to_aff(apply("add_mixed", ja, to_arr([aff(bn.neg(two_a))])))) == [None]


@pytest.mark.parametrize("group", ["g1", "g2"])
def test_scalar_mul(group):
    gen, zero, aff, to_arr, from_arr, to_jac, apply, to_aff = CASES[group]
    a = bn.multiply(gen, RNG.randrange(1, R))
    ks = [0, 1, 2, R - 1, RNG.randrange(R), 2**253]
    pts = to_jac(to_arr([aff(a)] * len(ks)))
    got = from_arr(to_aff(apply("mul", pts, to_limbs(ks))))
    assert got == [aff(bn.multiply(a, k)) for k in ks]


def test_point_helpers_and_batch_affine_with_infinity():
    a = bn.multiply(bn.G1, 5)
    assert C.g1_add(aff1(a), None) == aff1(a)
    assert C.g1_mul(aff1(a), R + 3) == aff1(bn.multiply(a, 3))
    a2 = bn.multiply(bn.G2, 5)
    assert C.g2_add(aff2(a2), aff2(bn.neg(a2))) is None
    assert C.g2_mul(aff2(a2), 7) == aff2(bn.multiply(a2, 7))
    jac = C.g1_to_jacobian(C.g1_to_affine_array([None, aff1(a), None]))
    assert C.g1_from_affine_array(C.g1_batch_to_affine(jac)) == [None, aff1(a), None]
    assert C.g1_to_affine_array([]).shape == (0, 8)


def test_bad_array_shape():
    from proving.field import FieldError

    with pytest.raises(FieldError):
        C.g1_batch_to_affine(np.zeros((2, 8), np.uint64))
