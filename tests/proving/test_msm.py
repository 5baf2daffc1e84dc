"""Pippenger MSM against a naive py_ecc sum of scalar multiplications."""

from __future__ import annotations

import random

import pytest
from py_ecc import optimized_bn128 as bn

from proving import curve as C
from proving import msm as M
from proving.field import to_limbs

R = bn.curve_order
RNG = random.Random(13)


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


def naive(points, scalars, zero):
    acc = zero
    for p, k in zip(points, scalars):
        acc = bn.add(acc, bn.multiply(p, k % R))
    return acc


def _g1_points(n):
    pts = [bn.multiply(bn.G1, RNG.randrange(1, R)) for _ in range(n)]
    pts[1] = pts[0]  # repeated point
    pts[2] = bn.Z1  # infinity
    pts[3] = bn.neg(pts[4])  # P and -P
    return pts


G1_POINTS = _g1_points(24)


def _scalars(n):
    ks = [RNG.randrange(R) for _ in range(n)]
    ks[5], ks[6], ks[7], ks[8], ks[9] = 0, 1, R - 1, 2**253, 2**13
    ks[3] = ks[4]  # k P + k (-P) = 0
    return ks


def test_g1_against_naive_default_window():
    ks = _scalars(len(G1_POINTS))
    assert M.msm_g1([aff1(p) for p in G1_POINTS], ks) == aff1(naive(G1_POINTS, ks, bn.Z1))


@pytest.mark.parametrize("affine", [False, True], ids=["jacobian", "batch_affine"])
@pytest.mark.parametrize("c", [2, 3, 7, 13, 16])
def test_g1_window_sizes(c, affine):
    ks = _scalars(len(G1_POINTS))
    got = M.msm_g1_arrays(C.g1_to_affine_array([aff1(p) for p in G1_POINTS]), to_limbs(ks), c=c, affine=affine)
    assert C.g1_from_affine_array(C.g1_batch_to_affine(got)) == [aff1(naive(G1_POINTS, ks, bn.Z1))]


def test_batch_affine_edge_cases():
    """Doubling and cancellation inside a bucket, bucket conflicts within a batch (Jacobian overflow)."""
    p, q = G1_POINTS[0], G1_POINTS[10]
    pts = [p, p, p, bn.neg(p), q, bn.neg(q), q, q, p, bn.Z1, q] * 3
    ks = [1, 1, 1, 1, 2, 2, 2, R - 2, 5, 7, 1] * 3
    arr, k = C.g1_to_affine_array([aff1(x) for x in pts]), to_limbs(ks)
    expected = [aff1(naive(pts, ks, bn.Z1))]
    for c in (2, 4, 6):
        got = M.msm_g1_arrays(arr, k, c=c, affine=True)
        assert C.g1_from_affine_array(C.g1_batch_to_affine(got)) == expected


def test_g1_same_digit_everywhere_and_all_zero():
    pts = [aff1(p) for p in G1_POINTS]
    assert M.msm_g1(pts, [0] * len(pts)) is None
    ks = [1] * len(pts)  # every point in one bucket: P + P doubling inside the bucket
    assert M.msm_g1(pts, ks) == aff1(naive(G1_POINTS, ks, bn.Z1))
    assert M.msm_g1([pts[0]] * 9, [R - 1] * 9) == aff1(bn.multiply(G1_POINTS[0], 9 * (R - 1) % R))


def test_g2_against_naive():
    pts = [bn.multiply(bn.G2, RNG.randrange(1, R)) for _ in range(5)] + [bn.Z2]
    pts[1] = pts[0]
    ks = [RNG.randrange(R), RNG.randrange(R), 0, 1, R - 1, 5]
    assert M.msm_g2([aff2(p) for p in pts], ks) == aff2(naive(pts, ks, bn.Z2))
    # batch-affine path with doubling, cancellation and bucket conflicts
    pts = [pts[0], pts[0], bn.neg(pts[0]), pts[2], pts[2], pts[3], bn.Z2] * 3
    ks = [1, 1, 1, 2, 2, R - 1, 4] * 3
    arr, k = C.g2_to_affine_array([aff2(p) for p in pts]), to_limbs(ks)
    for c in (2, 5):
        got = M.msm_g2_arrays(arr, k, c=c, affine=True)
        assert C.g2_from_affine_array(C.g2_batch_to_affine(got)) == [aff2(naive(pts, ks, bn.Z2))]


def test_empty_and_mismatch():
    assert M.msm_g1([], []) is None
    with pytest.raises(M.MsmInputError) as err:
        M.msm_g1([aff1(bn.G1)], [1, 2])
    assert err.value.field == "scalars"


def test_window_bits_grows_with_n():
    assert M.window_bits(1) <= M.window_bits(1 << 10) <= M.window_bits(1 << 16) <= 16
