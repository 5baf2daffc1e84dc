"""The numba multi-pairing and batch-verification kernels against the plain-integer reference
(:mod:`proving.groth16.pairing`, :mod:`proving.groth16.batch_ref`) and py_ecc."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from py_ecc import optimized_bn128 as bn

from proving._kernels import pairing_nb as K
from proving.curve import g1_batch_to_affine, g1_from_affine_array, g1_to_affine_array, g2_to_affine_array
from proving.errors import NotInSubgroup
from proving.field import FQ_MODULUS as Q, FR_MODULUS as R, to_limbs
from proving.groth16 import batch, batch_ref, pairing as ref, pairing_fast as fast
from proving.groth16.points import from_pyecc_g1, from_pyecc_g2, g1_lincomb, g1_mul, g1_neg, g2_in_subgroup, g2_mul
from tests.proving.protocol_fixtures import g2_point_outside_subgroup

RNG = random.Random(77)
G1, G2 = from_pyecc_g1(bn.G1), from_pyecc_g2(bn.G2)


def _g1():
    return g1_mul(G1, RNG.randrange(1, R))


def _g2():
    return g2_mul(G2, RNG.randrange(1, R))


def test_miller_loop_equals_reference_on_random_and_edge_pairs():
    p, q = _g1(), _g2()
    pairs = [(p, q), (G1, G2), (g1_neg(p), q), (p, G2), (G1, q), (_g1(), _g2()), (None, q), (p, None)]
    assert fast.miller_loop(pairs) == ref.miller_loop(pairs)
    for pair in pairs[:3]:
        assert fast.miller_loop([pair]) == ref.miller_loop([pair])
    assert fast.miller_loop([(None, G2), (G1, None)]) == ref.F12_ONE
    # e(P, Q) e(-P, Q) = 1, e(aP, Q) = e(P, aQ), and a non-trivial product is not 1
    a = RNG.randrange(2, R)
    assert fast.pairing_product_is_one([(p, q), (g1_neg(p), q)])
    assert fast.pairing_product_is_one([(g1_mul(G1, a), G2), (g1_neg(G1), g2_mul(G2, a))])
    assert not fast.pairing_product_is_one([(g1_mul(G1, a), G2), (g1_neg(G1), g2_mul(G2, a + 1))])
    assert fast.pairing_product_is_one([])


def test_pairing_equals_py_ecc():
    a, b = RNG.randrange(1, R), RNG.randrange(1, R)
    p, q = bn.multiply(bn.G1, a), bn.multiply(bn.G2, b)
    got = fast.pairing(from_pyecc_g1(p), from_pyecc_g2(q))
    assert ref.to_pyecc_coeffs(got) == [int(c) for c in bn.pairing(q, p).coeffs]
    assert ref.to_pyecc_coeffs(fast.pairing(G1, G2)) == [int(c) for c in bn.pairing(bn.G2, bn.G1).coeffs]


def test_final_exponentiation_and_fq12_ops_equal_reference():
    f = tuple(tuple((RNG.randrange(Q), RNG.randrange(Q)) for _ in range(3)) for _ in range(2))
    g = tuple(tuple((RNG.randrange(Q), RNG.randrange(Q)) for _ in range(3)) for _ in range(2))
    fa, ga = fast.fq12_to_array(f), fast.fq12_to_array(g)
    assert fast.fq12_from_array(fa) == f
    fg = fast.final_exponentiation_of_product(np.stack([fa, ga]))
    assert fast.fq12_from_array(fg) == ref.final_exponentiation(ref.f12_mul(f, g))
    assert fast.fq12_from_array(fast.final_exponentiation(fa)) == ref.final_exponentiation(f)
    assert not fast.final_exponentiation_is_one(fa)
    assert fast.final_exponentiation_is_one(fast.fq12_to_array(ref.F12_ONE))


def test_per_pair_miller_values_and_row_subsets():
    ps, qs = [_g1(), G1, _g1()], [_g2(), _g2(), G2]
    g1 = g1_to_affine_array(ps)
    coeffs = fast.prepare_g2_array(qs).coeffs
    each = fast.miller_each_arrays(g1, coeffs)
    for i in range(3):
        assert fast.fq12_from_array(each[i]) == ref.miller_loop([(ps[i], qs[i])])
    sub = fast.miller_loop_arrays(g1, coeffs, np.array([0, 2]))
    assert fast.fq12_from_array(sub) == ref.miller_loop([(ps[0], qs[0]), (ps[2], qs[2])])
    cached = fast.prepare_g2_cached(qs[1]).coeffs
    assert np.array_equal(cached[0], coeffs[1]) and not cached.flags.writeable


def _twist_points(n: int):
    """Random points on the G2 twist (almost never in the subgroup)."""
    from py_ecc.fields import optimized_bn128_FQ2 as FQ2

    from tests.proving.protocol_fixtures import fq2_sqrt

    rng, out = random.Random(11), []
    while len(out) < n:
        x = FQ2([rng.randrange(Q), rng.randrange(Q)])
        y = fq2_sqrt(x**3 + bn.b2)
        if y is not None:
            out.append(((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1]))))
    return out


def test_subgroup_kernel_agrees_with_reference():
    from proving.groth16.points import g2_in_subgroup_ref, to_pyecc_g2

    outside = g2_point_outside_subgroup()
    twist = _twist_points(3)
    small = g2_mul(twist[0], R)  # order divides the cofactor 2q - r
    pts = [G2, _g2(), outside, g2_mul(outside, 5), *twist, g2_mul(twist[1], 2 * Q - R), small,
           from_pyecc_g2(bn.add(to_pyecc_g2(G2), to_pyecc_g2(small)))]
    got = np.zeros(len(pts), np.bool_)
    K.g2_subgroup_kernel(g2_to_affine_array(pts), got)
    want = [g2_in_subgroup_ref(p) for p in pts]
    assert got.tolist() == [g2_in_subgroup(p) for p in pts] == want
    assert want == [True, True, False, False, False, False, False, True, False, False]


def test_g1_scalar_kernels_equal_reference():
    pts = [_g1(), G1, None, g1_neg(G1), _g1()]
    ks = [RNG.getrandbits(128), 1, 5, R - 1, 0]
    jac = np.empty((len(pts), 12), np.uint64)
    K.g1_mul_kernel(g1_to_affine_array(pts), to_limbs(ks), jac)
    assert g1_from_affine_array(g1_batch_to_affine(jac)) == [g1_mul(p, k) if p else None for p, k in zip(pts, ks)]
    out = np.empty((1, 12), np.uint64)
    K.g1_lincomb_kernel(g1_to_affine_array(pts), to_limbs(ks), out)
    assert g1_from_affine_array(g1_batch_to_affine(out))[0] == g1_lincomb(pts, ks)
    # P + (-P) and an empty sum are the point at infinity
    K.g1_lincomb_kernel(g1_to_affine_array([G1, g1_neg(G1)]), to_limbs([3, 3]), out)
    assert g1_from_affine_array(g1_batch_to_affine(out)) == [None]
    K.g1_lincomb_kernel(np.zeros((0, 8), np.uint64), np.zeros((0, 4), np.uint64), out)
    assert g1_from_affine_array(g1_batch_to_affine(out)) == [None]


def test_walk_of_a_point_outside_the_subgroup_leaves_the_other_rows_intact():
    # the walk assumes subgroup points: this one walks to the end (its lines are garbage, so the
    # subgroup check before pairing must reject it), and the shared inversion spares its neighbours
    outside = g2_point_outside_subgroup()
    alone = fast.prepare_g2_array([G2]).coeffs[0]
    walked = fast.prepare_g2_array([G2, outside, G2], "b").coeffs
    assert np.array_equal(walked[0], alone) and np.array_equal(walked[2], alone)
    assert not np.array_equal(walked[1], alone)
    assert not g2_in_subgroup(outside)


def test_walk_flags_a_degenerate_step_and_names_the_point():
    # y = 0 makes the first doubling divide by 2y = 0 (no subgroup point has y = 0): the kernel
    # flags that row only, zero maps to zero in the shared inversion, and the wrapper names it
    degenerate = (G2[0], (0, 0))
    arr = g2_to_affine_array([G2, degenerate, G2])
    coeffs, status = np.empty((3, fast.STEPS, 16), np.uint64), np.zeros(3, np.int8)
    K.walk_kernel(arr, K.STEP_OPS, coeffs, status)
    assert status.tolist() == [0, 1, 0]
    alone = fast.prepare_g2_array([G2]).coeffs[0]
    assert np.array_equal(coeffs[0], alone) and np.array_equal(coeffs[2], alone)
    with pytest.raises(NotInSubgroup) as raised:
        fast.prepare_g2_array(arr, "b")
    assert raised.value.field == "b[1]"


def test_batch_names_the_same_bad_proofs_as_the_reference():
    from tests.proving.test_batch import batch as proofs_batch
    from tests.proving.protocol_fixtures import mimc_key

    vk = mimc_key().vk
    publics, proofs = proofs_batch()
    publics, proofs = list(publics), list(proofs)
    proofs[0], proofs[1] = proofs[1], proofs[0]
    proofs[2] = dataclasses.replace(proofs[2], b=g2_point_outside_subgroup())
    publics[3] = [(publics[3][0] + 1) % R]
    got, want = batch.find_invalid(vk, publics, proofs, seed=5), batch_ref.find_invalid(vk, publics, proofs, seed=5)
    assert sorted(got) == sorted(want) == [0, 1, 2, 3]
    assert {i: type(e) for i, e in got.items()} == {i: type(e) for i, e in want.items()}
    assert isinstance(got[2], NotInSubgroup) and got[2].field == "proof.b"


@pytest.mark.parametrize("n", [1, 2])
def test_small_batches(n):
    from tests.proving.test_batch import batch as proofs_batch
    from tests.proving.protocol_fixtures import mimc_key

    vk = mimc_key().vk
    publics, proofs = proofs_batch()
    batch.batch_verify(vk, publics[:n], proofs[:n])
    got, want = batch.find_invalid(vk, [[1]] * n, proofs[:n]), batch_ref.find_invalid(vk, [[1]] * n, proofs[:n])
    assert {i: type(e) for i, e in got.items()} == {i: type(e) for i, e in want.items()}
    assert sorted(got) == list(range(n))
