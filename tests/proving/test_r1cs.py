"""R1CS builder and witness checks: a failing witness names the first failing constraint."""

from __future__ import annotations

import pytest

from proving.errors import ConstraintNotSatisfied, FieldElementOutOfRange, WitnessError
from proving.field import FR_MODULUS as R
from proving.r1cs import LC, Builder, check_witness, evaluate, public_inputs


def cubic(x: int | None = 3):
    """x^3 + x + 5 = y with public y (the classic example); returns (r1cs, witness or None)."""
    b = Builder()
    y = b.public("y", None if x is None else x**3 + x + 5)
    xv = b.private("x", x)
    x2 = b.mul(xv, xv, "x^2")
    x3 = b.mul(x2, xv, "x^3")
    b.constrain(x3 + xv + 5, 1, y, "sum")
    return b.build(), (b.witness() if x is not None else None)


def test_builder_layout_and_valid_witness():
    r1cs, w = cubic(3)
    assert (r1cs.n_vars, r1cs.n_public, r1cs.n_constraints) == (5, 1, 3)
    assert w == [1, 35, 3, 9, 27]
    assert public_inputs(r1cs, w) == [35]
    assert r1cs.var_names == ("one", "y", "x", "x^2", "x^3")
    check_witness(r1cs, w)


def test_first_failing_constraint_is_named():
    r1cs, w = cubic(3)
    bad = list(w)
    bad[3] = 10  # x^2 wrong: constraints 0 (x^2) and 1 (x^3) both break; the first is reported
    with pytest.raises(ConstraintNotSatisfied) as e:
        check_witness(r1cs, bad)
    assert e.value.index == 0 and e.value.name == "x^2"
    assert (e.value.a, e.value.b, e.value.c) == (3, 3, 10)
    bad = list(w)
    bad[1] = 36  # wrong public output: only the last constraint breaks
    with pytest.raises(ConstraintNotSatisfied) as e:
        check_witness(r1cs, bad)
    assert e.value.index == 2 and e.value.name == "sum"
    assert "constraint 2 (sum)" in str(e.value)


@pytest.mark.parametrize(
    ("witness", "error"),
    [([1, 35, 3, 9], WitnessError), ([2, 35, 3, 9, 27], WitnessError), ([1, 35, 3, 9, R], FieldElementOutOfRange),
     ([1, -1, 3, 9, 27], FieldElementOutOfRange)],
)
def test_witness_shape_errors(witness, error):
    r1cs, _ = cubic(3)
    with pytest.raises(error):
        check_witness(r1cs, witness)


def test_public_after_private_is_refused():
    b = Builder()
    b.private("x", 1)
    with pytest.raises(ValueError, match="declare publics first"):
        b.public("y", 1)


def test_missing_value_is_reported():
    r1cs, w = cubic(None)
    assert w is None and r1cs.n_constraints == 3
    b = Builder()
    b.private("x")
    with pytest.raises(WitnessError, match="no value"):
        b.witness()


def test_linear_combination_arithmetic_mod_r():
    x = LC({1: 1})
    lc = 3 * x - x + 7 - 2
    assert lc.as_terms() == ((0, 5), (1, 2))
    assert (x - x).as_terms() == ()
    assert (-x).as_terms() == ((1, R - 1),)
    assert evaluate((-x + 1).as_terms(), [1, 5]) == (R - 4)
    assert (x * R).as_terms() == ()
