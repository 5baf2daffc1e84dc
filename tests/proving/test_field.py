"""Fq/Fr limb kernels against Python big-int arithmetic (random inputs and edge cases)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proving import field as F

FIELDS = [F.FQ, F.FR]


def _edge(p: int) -> list[int]:
    return [0, 1, 2, p - 1, p - 2, (p - 1) // 2, (p + 1) // 2, 2**64 - 1, 2**64, 2**192, 2**253 % p]


def _values(p: int):
    return st.lists(st.one_of(st.integers(0, p - 1), st.sampled_from(_edge(p))), min_size=1, max_size=40)


@pytest.mark.parametrize("fld", FIELDS, ids=lambda f: f.name)
def test_edge_cases_all_pairs(fld):
    p = fld.modulus
    xs = [a for a in _edge(p) for _ in _edge(p)]
    ys = [b for _ in _edge(p) for b in _edge(p)]
    x, y = F.to_mont(fld, xs), F.to_mont(fld, ys)
    assert F.from_mont(fld, F.mul(fld, x, y)) == [a * b % p for a, b in zip(xs, ys)]
    assert F.from_mont(fld, F.add(fld, x, y)) == [(a + b) % p for a, b in zip(xs, ys)]
    assert F.from_mont(fld, F.sub(fld, x, y)) == [(a - b) % p for a, b in zip(xs, ys)]


@pytest.mark.parametrize("fld", FIELDS, ids=lambda f: f.name)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_random_against_python(fld, data):
    p = fld.modulus
    xs = data.draw(_values(p))
    ys = data.draw(st.lists(st.integers(0, p - 1), min_size=len(xs), max_size=len(xs)))
    x, y = F.to_mont(fld, xs), F.to_mont(fld, ys)
    assert F.from_mont(fld, x) == xs
    assert F.from_mont(fld, F.mul(fld, x, y)) == [a * b % p for a, b in zip(xs, ys)]
    assert F.from_mont(fld, F.add(fld, x, y)) == [(a + b) % p for a, b in zip(xs, ys)]
    assert F.from_mont(fld, F.sub(fld, x, y)) == [(a - b) % p for a, b in zip(xs, ys)]
    assert F.from_mont(fld, F.neg(fld, x)) == [(-a) % p for a in xs]


@pytest.mark.parametrize("fld", FIELDS, ids=lambda f: f.name)
def test_inverse_and_batch_inverse(fld):
    p = fld.modulus
    rng = np.random.default_rng(5)
    xs = _edge(p) + [int.from_bytes(rng.bytes(32), "little") % p for _ in range(50)]
    expected = [pow(a, -1, p) if a else 0 for a in xs]
    x = F.to_mont(fld, xs)
    assert F.from_mont(fld, F.inverse(fld, x)) == expected
    assert F.from_mont(fld, F.batch_inverse(fld, x)) == expected
    assert F.from_mont(fld, F.batch_inverse(fld, F.to_mont(fld, [0, 0]))) == [0, 0]


def test_limb_round_trip_and_layout():
    vals = [0, 1, 2**64 - 1, 2**64, 2**256 - 1]
    arr = F.to_limbs(vals)
    assert arr.dtype == np.uint64 and arr.shape == (5, 4)
    assert arr[3].tolist() == [0, 1, 0, 0]
    assert F.from_limbs(arr) == vals
    assert F.to_mont(F.FR, [F.FR.modulus + 5]).tolist() == F.to_mont(F.FR, [5]).tolist()


def test_bad_inputs_name_the_field():
    with pytest.raises(F.FieldError) as err:
        F.to_limbs([2**256])
    assert err.value.field == "values"
    with pytest.raises(F.FieldError) as err:
        F.mul(F.FQ, np.zeros((3, 3), np.uint64), np.zeros((3, 4), np.uint64))
    assert err.value.field == "x"
