"""The plain-integer pairing and Jacobian arithmetic against the py_ecc reference."""

from __future__ import annotations

import random

import pytest
from py_ecc import optimized_bn128 as bn

from proving.field import FR_MODULUS as R
from proving.groth16.pairing import (
    F12_ONE, f12_inv, f12_mul, miller_loop, pairing, pairing_product_is_one, to_pyecc_coeffs,
)
from proving.groth16.points import (
    from_pyecc_g1, from_pyecc_g2, g1_add, g1_lincomb, g1_mul, g1_neg, g2_mul,
)

RNG = random.Random(2024)
G1, G2 = from_pyecc_g1(bn.G1), from_pyecc_g2(bn.G2)


def test_pairing_equals_py_ecc():
    a, b = RNG.randrange(1, R), RNG.randrange(1, R)
    p, q = bn.multiply(bn.G1, a), bn.multiply(bn.G2, b)
    assert to_pyecc_coeffs(pairing(from_pyecc_g1(p), from_pyecc_g2(q))) == [int(c) for c in bn.pairing(q, p).coeffs]


def test_bilinearity_and_product_check():
    a, b = RNG.randrange(1, R), RNG.randrange(1, R)
    assert pairing(g1_mul(G1, a * b % R), G2) == pairing(g1_mul(G1, a), g2_mul(G2, b))
    assert pairing_product_is_one([(g1_mul(G1, a), G2), (g1_neg(G1), g2_mul(G2, a))])
    assert not pairing_product_is_one([(g1_mul(G1, a), G2), (g1_neg(G1), g2_mul(G2, a + 1))])
    assert pairing(G1, G2) != F12_ONE
    f = miller_loop([(G1, G2)])
    assert f12_mul(f, f12_inv(f)) == F12_ONE


def test_infinity_contributes_one():
    assert miller_loop([(None, G2), (G1, None)]) == F12_ONE
    assert pairing_product_is_one([])


@pytest.mark.parametrize("k", [0, 1, 2, 3, R - 1, R, RNG.randrange(R), RNG.randrange(R)])
def test_scalar_multiplication_equals_py_ecc(k):
    assert g1_mul(G1, k) == from_pyecc_g1(bn.multiply(bn.G1, k))
    assert g2_mul(G2, k) == from_pyecc_g2(bn.multiply(bn.G2, k))


def test_addition_edge_cases():
    p = g1_mul(G1, 5)
    assert g1_add(p, p) == g1_mul(G1, 10)  # doubling inside addition
    assert g1_add(p, g1_neg(p)) is None
    assert g1_add(None, p) == p == g1_add(p, None)
    assert g1_lincomb([G1, p, None], [3, 2, 7]) == g1_mul(G1, 13)


def test_fast_final_exponentiation_equals_plain():
    from proving.groth16.pairing import final_exponentiation, final_exponentiation_plain, f12_frobenius, f12_pow, Q

    f = miller_loop([(g1_mul(G1, 3), g2_mul(G2, 5)), (G1, G2)])
    assert final_exponentiation(f) == final_exponentiation_plain(f)
    for e in (1, 2, 3):
        assert f12_frobenius(f, e) == f12_pow(f, Q**e)


def test_subgroup_test_agrees_with_r_times_p():
    from py_ecc.fields import optimized_bn128_FQ2 as FQ2

    from proving.field import FQ_MODULUS as Q
    from proving.groth16.points import g2_in_subgroup, g2_in_subgroup_ref
    from tests.proving.protocol_fixtures import fq2_sqrt

    rng, checked = random.Random(9), 0
    while checked < 6:
        x = FQ2([rng.randrange(Q), rng.randrange(Q)])
        y = fq2_sqrt(x**3 + bn.b2)
        if y is None:
            continue
        p = ((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1])))
        cleared = g2_mul(p, 2 * Q - R)  # G2's cofactor is 2q - r
        assert g2_in_subgroup(p) is g2_in_subgroup_ref(p) is False
        assert g2_in_subgroup(cleared) is g2_in_subgroup_ref(cleared) is True
        checked += 1
    assert g2_in_subgroup(g2_mul(G2, RNG.randrange(R)))
