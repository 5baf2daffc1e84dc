"""NTT over Fr: against a naive O(n^2) DFT and the reference radix-2 NTT; round trips; cosets."""

from __future__ import annotations

import random

import pytest

from proving import field as F
from proving import ntt as N
from proving.groth16 import prover_ref

R = F.FR.modulus
RNG = random.Random(7)


def naive_dft(values, omega):
    n = len(values)
    return [sum(v * pow(omega, j * k, R) for j, v in enumerate(values)) % R for k in range(n)]


def test_root_of_unity_orders_and_snarkjs_constant():
    assert N.FR_ROOT_OF_UNITY_2_28 == pow(5, (R - 1) >> 28, R)
    for k in (0, 1, 5, 17, 28):
        w = N.root_of_unity(1 << k)
        assert pow(w, 1 << k, R) == 1
        assert k == 0 or pow(w, 1 << (k - 1), R) == R - 1
    with pytest.raises(N.DomainError):
        N.root_of_unity(3)
    with pytest.raises(N.DomainError):
        N.root_of_unity(1 << 29)


def test_matches_protocol_setup_domain():
    setup = pytest.importorskip("proving.groth16.setup")
    for n in (1, 2, 1024, 1 << 17):
        assert setup.root_of_unity(n) == N.root_of_unity(n)


@pytest.mark.parametrize("n", [1, 2, 4, 8, 32])
def test_ntt_against_naive_dft(n):
    xs = [RNG.randrange(R) for _ in range(n)]
    xs[0] = R - 1
    assert N.ntt_ints(xs) == naive_dft(xs, N.root_of_unity(n))


@pytest.mark.parametrize("n", [2, 256, 1 << 12])
def test_round_trip_and_reference(n):
    xs = [RNG.randrange(R) for _ in range(n)]
    a = F.to_mont(F.FR, xs)
    evals = N.ntt(a)
    assert F.from_mont(F.FR, evals) == prover_ref.ntt_naive(xs, N.root_of_unity(n))
    assert F.from_mont(F.FR, N.intt(evals)) == xs
    assert F.from_mont(F.FR, a) == xs  # not in place by default


def test_largest_size_2_17():
    """2^17 (the largest domain the prover meets here): round trip, spot-checked against Horner."""
    n = 1 << 17
    xs = [RNG.randrange(R) for _ in range(n)]
    a = F.to_mont(F.FR, xs)
    evals = N.ntt(a)
    w = N.root_of_unity(n)
    got = F.from_mont(F.FR, evals[[0, 1, 12345, n - 1]])
    for k, value in zip([0, 1, 12345, n - 1], got):
        x, acc = pow(w, k, R), 0
        for c in reversed(xs):
            acc = (acc * x + c) % R
        assert value == acc
    assert (N.intt(evals) == a).all()


def test_coset_and_odd_coset():
    n = 64
    xs = [RNG.randrange(R) for _ in range(n)]
    shift = RNG.randrange(1, R)
    coset = F.from_mont(F.FR, N.coset_ntt(F.to_mont(F.FR, xs), shift))
    assert coset == [sum(c * pow(shift * pow(N.root_of_unity(n), k, R), j, R) for j, c in enumerate(xs)) % R
                     for k in range(n)]
    odd = F.from_mont(F.FR, N.odd_coset_from_evaluations(F.to_mont(F.FR, xs)))
    coeffs = prover_ref.intt_naive(xs, N.root_of_unity(n))
    w2n = N.root_of_unity(2 * n)
    assert odd == [sum(c * pow(w2n, (2 * k + 1) * j, R) for j, c in enumerate(coeffs)) % R for k in range(n)]


def test_odd_coset_many_equals_one_by_one():
    import numpy as np

    rows = [F.to_mont(F.FR, [RNG.randrange(R) for _ in range(256)]) for _ in range(3)]
    stack = np.stack(rows)
    N.odd_coset_many(stack)
    for k in range(3):
        assert (stack[k] == N.odd_coset_from_evaluations(rows[k])).all()
    with pytest.raises(N.DomainError):
        N.odd_coset_many(np.zeros((2, 3, 4), np.uint64))


def test_bad_size():
    with pytest.raises(N.DomainError):
        N.ntt(F.to_mont(F.FR, [1, 2, 3]))
