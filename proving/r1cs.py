"""Rank-1 constraint systems over the BN254 scalar field Fr, and a small builder.

An R1CS over witness ``w`` (``w[0] = 1``, then the ``n_public`` public signals, then the
private ones, as circom orders them: outputs, public inputs, private inputs, internals) is a
list of constraints ``<A_j, w> * <B_j, w> = <C_j, w>  (mod r)`` with sparse linear
combinations ``A_j, B_j, C_j`` (Groth 2016, section 2.2; circom's ``.r1cs`` format,
https://github.com/iden3/r1csfile/blob/master/doc/r1cs_bin_format.md).

:class:`Builder` writes a circuit and computes its witness in the same code: each variable
may carry a value, and :meth:`Builder.mul` allocates the product of two linear combinations
together with its constraint, so the witness cannot drift from the constraints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Union

from proving.errors import ConstraintNotSatisfied, FieldElementOutOfRange, WitnessError
from proving.field import FR_MODULUS

#: A sparse linear combination as ``(signal index, Fr coefficient)`` pairs.
Terms = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Constraint:
    """One R1CS row ``<a, w> * <b, w> = <c, w>``; ``name`` labels it in error messages."""

    a: Terms
    b: Terms
    c: Terms
    name: str | None = None


@dataclass(frozen=True)
class R1CS:
    """A constraint system over Fr (BN254 scalar field, EIP-196).

    Attributes:
        n_vars: witness length including the constant ``w[0] = 1``.
        n_public: number of public signals ``w[1..n_public]`` (circom: outputs + public inputs).
        constraints: the rows, in order.
        var_names: optional labels of the signals (``var_names[0] == "one"``).
    """

    n_vars: int
    n_public: int
    constraints: tuple[Constraint, ...]
    var_names: tuple[str, ...] = field(default=(), compare=False)

    @property
    def n_constraints(self) -> int:
        """Number of constraints (rows)."""
        return len(self.constraints)


def evaluate(terms: Terms, witness: Sequence[int]) -> int:
    """``sum(coeff * witness[signal]) mod r`` of a sparse linear combination."""
    return sum(coeff * witness[signal] for signal, coeff in terms) % FR_MODULUS


def check_witness_shape(r1cs: R1CS, witness: Sequence[int]) -> None:
    """Check the length, the field range and ``w[0] = 1`` of a witness.

    Raises:
        WitnessError: wrong length or ``w[0] != 1``.
        FieldElementOutOfRange: a value outside ``[0, r)``.
    """
    if len(witness) != r1cs.n_vars:
        raise WitnessError(f"witness has {len(witness)} values, the R1CS has {r1cs.n_vars} signals")
    if witness[0] != 1:
        raise WitnessError(f"witness[0] must be the constant 1, got {witness[0]}")
    for i, value in enumerate(witness):
        if not 0 <= value < FR_MODULUS:
            raise FieldElementOutOfRange(f"witness[{i}]", value, FR_MODULUS)


def check_witness(r1cs: R1CS, witness: Sequence[int]) -> None:
    """Check that ``witness`` satisfies every constraint of ``r1cs``.

    Raises:
        WitnessError, FieldElementOutOfRange: see :func:`check_witness_shape`.
        ConstraintNotSatisfied: naming the FIRST failing constraint (index, label, values).
    """
    check_witness_shape(r1cs, witness)
    for index, row in enumerate(r1cs.constraints):
        a, b, c = evaluate(row.a, witness), evaluate(row.b, witness), evaluate(row.c, witness)
        if a * b % FR_MODULUS != c:
            raise ConstraintNotSatisfied(index, a, b, c, name=row.name)


@dataclass(frozen=True)
class LC:
    """A linear combination of builder variables, ``sum(coeff_i * var_i)`` over Fr.

    Supports ``+``, ``-``, unary ``-`` and multiplication by an ``int`` constant; an ``int``
    operand of ``+``/``-`` is read as ``constant * one``.
    """

    terms: Mapping[int, int]

    @staticmethod
    def of(value: "LCLike") -> "LC":
        """Coerce an ``LC`` or an ``int`` constant into an ``LC``."""
        if isinstance(value, LC):
            return value
        if isinstance(value, int):
            return LC({0: value % FR_MODULUS} if value % FR_MODULUS else {})
        raise TypeError(f"expected LC or int, got {type(value).__name__}")

    def _combine(self, other: "LCLike", sign: int) -> "LC":
        out = dict(self.terms)
        for var, coeff in LC.of(other).terms.items():
            out[var] = (out.get(var, 0) + sign * coeff) % FR_MODULUS
        return LC({v: c for v, c in out.items() if c})

    def __add__(self, other: "LCLike") -> "LC":
        return self._combine(other, 1)

    __radd__ = __add__

    def __sub__(self, other: "LCLike") -> "LC":
        return self._combine(other, -1)

    def __rsub__(self, other: "LCLike") -> "LC":
        return LC.of(other)._combine(self, -1)

    def __neg__(self) -> "LC":
        return LC({}) - self

    def __mul__(self, k: int) -> "LC":
        if not isinstance(k, int):
            return NotImplemented
        k %= FR_MODULUS
        return LC({v: c * k % FR_MODULUS for v, c in self.terms.items()} if k else {})

    __rmul__ = __mul__

    def as_terms(self) -> Terms:
        """The sparse terms sorted by variable index."""
        return tuple(sorted(self.terms.items()))


LCLike = Union[LC, int]


class Builder:
    """Write an R1CS and (optionally) compute its witness at the same time.

    Declare all public signals (:meth:`public`) before any private one (:meth:`private`,
    :meth:`mul`): the witness layout is ``[1, publics..., privates...]`` as in circom.
    Variables given ``value=None`` make a constraint-only build (no witness).

    Example::

        b = Builder()
        y = b.public("y", 35)
        x = b.private("x", 3)
        x2 = b.mul(x, x, "x^2")
        b.constrain(x2, 1, y - 26)   # x^2 = y - 26
        r1cs, witness = b.build(), b.witness()
    """

    def __init__(self) -> None:
        self._names: list[str] = ["one"]
        self._values: list[int | None] = [1]
        self._n_public = 0
        self._constraints: list[Constraint] = []

    @property
    def one(self) -> LC:
        """The constant signal ``w[0] = 1``."""
        return LC({0: 1})

    def _new_var(self, name: str, value: int | None) -> LC:
        if value is not None:
            if not isinstance(value, int):
                raise TypeError(f"value of {name!r} must be an int, got {type(value).__name__}")
            value %= FR_MODULUS
        self._names.append(name)
        self._values.append(value)
        return LC({len(self._names) - 1: 1})

    def public(self, name: str, value: int | None = None) -> LC:
        """Allocate a public signal (must come before every private one).

        Raises:
            ValueError: a private signal was already allocated.
        """
        if len(self._names) != self._n_public + 1:
            raise ValueError(f"public signal {name!r} declared after a private one; declare publics first")
        self._n_public += 1
        return self._new_var(name, value)

    def private(self, name: str, value: int | None = None) -> LC:
        """Allocate a private signal with an optional value."""
        return self._new_var(name, value)

    def value(self, lc: LCLike) -> int | None:
        """The value of a linear combination, or ``None`` when a variable in it has none."""
        total = 0
        for var, coeff in LC.of(lc).terms.items():
            v = self._values[var]
            if v is None:
                return None
            total += coeff * v
        return total % FR_MODULUS

    def constrain(self, a: LCLike, b: LCLike, c: LCLike, name: str | None = None) -> None:
        """Add the constraint ``a * b = c``."""
        self._constraints.append(Constraint(LC.of(a).as_terms(), LC.of(b).as_terms(), LC.of(c).as_terms(), name))

    def mul(self, a: LCLike, b: LCLike, name: str) -> LC:
        """Allocate the private signal ``out = a * b``, constrain it, and return it."""
        va, vb = self.value(a), self.value(b)
        out = self.private(name, None if va is None or vb is None else va * vb % FR_MODULUS)
        self.constrain(a, b, out, name)
        return out

    def build(self) -> R1CS:
        """The R1CS written so far."""
        return R1CS(len(self._names), self._n_public, tuple(self._constraints), tuple(self._names))

    def witness(self) -> list[int]:
        """The full witness ``[1, publics..., privates...]``.

        Raises:
            WitnessError: a variable was allocated without a value.
        """
        missing = [n for n, v in zip(self._names, self._values) if v is None]
        if missing:
            raise WitnessError(f"no value for signal(s) {missing[:5]}; pass value= when allocating them")
        return [int(v) for v in self._values]  # type: ignore[arg-type]


def public_inputs(r1cs: R1CS, witness: Sequence[int]) -> list[int]:
    """The public signals ``witness[1 : 1 + n_public]`` (what a verifier receives)."""
    return list(witness[1 : 1 + r1cs.n_public])


def r1cs_from_rows(n_vars: int, n_public: int, rows: Iterable[tuple[Terms, Terms, Terms]]) -> R1CS:
    """Build an :class:`R1CS` from ``(a, b, c)`` term tuples (used by file readers)."""
    return R1CS(n_vars, n_public, tuple(Constraint(a, b, c) for a, b, c in rows))
