"""Errors of the ``proving`` package: one root, narrow subclasses carrying typed fields.

:class:`ProvingError` is the package root; it derives from :class:`RaymarketError`, the
project-wide root, which lives here too (see its docstring).

Every verifier and parser in ``proving`` fails with one of these (never a bare ``False``), in
the order checks are made: shapes and lengths (:class:`MalformedProof`), field ranges
(:class:`FieldElementOutOfRange`), curve membership (:class:`PointNotOnCurve`), subgroup
membership (:class:`NotInSubgroup`), and only then the pairing (:class:`PairingCheckFailed`).
"""

from __future__ import annotations

from collections.abc import Sequence


class RaymarketError(Exception):
    """The root of every raymarket error; market/, contracts/, providers/ roots derive from it.

    Defined here because ``proving`` is the lowest package and imports nothing else of the
    project; importing this module loads only the standard library.
    """


class ProvingError(RaymarketError):
    """Root of every error raised by ``proving``."""


class MalformedProof(ProvingError):
    """A proof, key or public-input list has the wrong shape or length.

    Attributes:
        field: the offending field (``"public_inputs"``, ``"proof.a"``, ...).
        reason: what is wrong with it and how to fix it.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class FieldElementOutOfRange(MalformedProof):
    """An integer is not a canonical element of its field (``0 <= value < modulus``).

    Attributes:
        value: the integer found; modulus: the field modulus (Fq for coordinates, Fr for
        public inputs and scalars).
    """

    def __init__(self, field: str, value: int, modulus: int) -> None:
        self.value = value
        self.modulus = modulus
        super().__init__(field, f"value {value} is not in [0, {modulus}); reduce it modulo the field")


class PointNotOnCurve(MalformedProof):
    """A point's coordinates do not satisfy the curve equation (``y^2 = x^3 + 3`` on G1,
    ``y^2 = x^3 + 3/(9+u)`` on G2, EIP-196/197)."""

    def __init__(self, field: str) -> None:
        super().__init__(field, "point is not on the curve")


class NotInSubgroup(MalformedProof):
    """A G2 point is on the twist but not in the order-r subgroup (``r * P != O``)."""

    def __init__(self, field: str) -> None:
        super().__init__(field, "point is on the curve but not in the order-r subgroup")


class PairingCheckFailed(ProvingError):
    """Every check passed but the Groth16 pairing equation does not hold: the proof is invalid
    for this verification key and these public inputs."""

    def __init__(self, detail: str = "pairing check failed: proof invalid for this key and public inputs") -> None:
        super().__init__(detail)


class BatchVerificationFailed(ProvingError):
    """A batch of proofs did not verify.

    Attributes:
        bad_indices: positions (0-based, in the order given) of the proofs found invalid.
        reasons: for each bad index, the error found for that proof alone.
    """

    def __init__(self, bad_indices: Sequence[int], reasons: dict[int, ProvingError] | None = None) -> None:
        self.bad_indices = tuple(bad_indices)
        self.reasons = dict(reasons or {})
        detail = ", ".join(f"#{i}: {self.reasons[i]}" if i in self.reasons else f"#{i}" for i in self.bad_indices)
        super().__init__(f"{len(self.bad_indices)} invalid proof(s) in batch: {detail}")


class ConstraintNotSatisfied(ProvingError):
    """A witness does not satisfy an R1CS constraint ``<A,w> * <B,w> = <C,w>``.

    Attributes:
        index: 0-based index of the first failing constraint.
        name: the constraint's label, if the builder gave it one.
        a, b, c: the evaluated linear combinations (Fr ints).
    """

    def __init__(self, index: int, a: int, b: int, c: int, name: str | None = None) -> None:
        self.index = index
        self.name = name
        self.a, self.b, self.c = a, b, c
        label = f" ({name})" if name else ""
        super().__init__(f"constraint {index}{label} not satisfied: A*B = {a}*{b} != C = {c} (mod r)")


class WitnessError(ProvingError):
    """A witness has the wrong length, a non-field value, or ``w[0] != 1``.

    Attributes:
        reason: what is wrong and how to fix it.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class FormatError(ProvingError):
    """A file (iden3 binary container, snarkjs JSON) is malformed.

    Parsers raise it before allocating anything sized by the file or running any kernel on it:
    every count, index and size is checked against the header and the bytes actually present.

    Attributes:
        path: the file (or ``"<bytes>"``, or a JSON location such as ``"proof.pi_a[0]"``);
        reason: what is wrong; section: the container section (id, or a name such as
        ``"header"``), ``None`` when not applicable; field: the offending field of that section
        (``"n_vars"``, ``"coef[3].constraint"``), ``None`` when not applicable.
    """

    def __init__(self, path: str, reason: str, *, section: int | str | None = None,
                 field: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.section = section
        self.field = field
        where = path
        if section is not None:
            where += f": section {section}"
        if field is not None:
            where += f" {field}" if section is not None else f": {field}"
        super().__init__(f"{where}: {reason}")


class BackendUnavailable(ProvingError):
    """A prover backend was requested that is not installed here.

    Attributes:
        name: the backend name; hint: how to install it.
    """

    def __init__(self, name: str, hint: str) -> None:
        self.name = name
        self.hint = hint
        super().__init__(f"prover backend {name!r} is not available: {hint}")
