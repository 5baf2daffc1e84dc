"""Groth16 key and proof types, laid out like a snarkjs ``.zkey`` (iden3 binary container).

Points follow the conventions of :mod:`proving.curve` (:data:`~proving.curve.G1Point`,
:data:`~proving.curve.G2Point`: affine int tuples in standard form, ``None`` = infinity, Fq2 as
``(c0, c1)``); the moduli are :data:`proving.field.FQ_MODULUS` and :data:`proving.field.FR_MODULUS`.

The proving key follows the snarkjs zkey sections (snarkjs ``src/zkey_new.js``,
``src/groth16_prove.js``): the R1CS is extended with ``n_public + 1`` extra constraints
``A[n_constraints + i] += 1 * w[i]`` for ``i = 0..n_public`` (so the public inputs are bound
to the A polynomial), the domain is the smallest power of two ``>= n_constraints + n_public + 1``,
and ``h_query`` holds the points that, multiplied by the evaluations of ``A*B - C`` on the
odd coset ``{ w_{2n}^{2i+1} }`` (``w_{2n}`` a primitive 2n-th root of unity), give
``h(tau) * Z(tau) / delta`` in G1, i.e. ``h_query[i] = -1/2 * L'_i(tau) * Z(tau) / delta * G1`` with
``L'_i`` the Lagrange basis on that coset and ``Z(X) = X^n - 1`` (``Z = -2`` on the coset).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from proving.curve import G1Point, G2Point
from proving.errors import MalformedProof


@dataclass(frozen=True)
class VerifyingKey:
    """A Groth16 verification key (snarkjs ``verification_key.json`` content).

    Attributes:
        alpha_g1, beta_g2, gamma_g2, delta_g2: the key's fixed points.
        ic: ``n_public + 1`` G1 points; ``ic[0]`` is the constant term.
    """

    alpha_g1: G1Point
    beta_g2: G2Point
    gamma_g2: G2Point
    delta_g2: G2Point
    ic: tuple[G1Point, ...]

    @property
    def n_public(self) -> int:
        """Number of public inputs (outputs first, then public inputs, as circom orders them)."""
        return len(self.ic) - 1


@dataclass
class ProvingKey:
    """A Groth16 proving key in snarkjs zkey layout (sections 2-9 of the zkey file).

    Attributes:
        n_vars: number of witness signals including the constant ``w[0] = 1``.
        n_public: number of public signals (``w[1..n_public]``).
        domain_size: power of two ``n >= n_constraints + n_public + 1``.
        alpha_g1, beta_g1, beta_g2, delta_g1, delta_g2: toxic-waste images.
        vk: the matching :class:`VerifyingKey`.
        coef_matrix, coef_constraint, coef_signal, coef_value: the A and B matrices of the
            extended R1CS as parallel sequences (zkey section 4): matrix 0 = A, 1 = B; row
            (constraint) index; column (signal) index; the Fr coefficient in standard form.
        a_query: ``n_vars`` G1 points ``A_i(tau)`` (zkey section 5).
        b_g1_query: ``n_vars`` G1 points ``B_i(tau)`` (section 6).
        b_g2_query: ``n_vars`` G2 points ``B_i(tau)`` (section 7).
        c_query: ``n_vars - n_public - 1`` G1 points for the private signals (section 8):
            ``(beta*A_i(tau) + alpha*B_i(tau) + C_i(tau)) / delta``.
        h_query: ``domain_size`` G1 points (section 9), see the module docstring.
        cache: backend-private precomputations (e.g. numba limb arrays); not serialised.

    The point and coefficient sequences are lists for keys built in memory, and
    :class:`proving.curve.MontPoints` / :class:`proving.field.MontInts` (read-only sequences over the
    zkey's Montgomery arrays, equal to the lists) for keys read from a zkey.
    """

    n_vars: int
    n_public: int
    domain_size: int
    alpha_g1: G1Point
    beta_g1: G1Point
    beta_g2: G2Point
    delta_g1: G1Point
    delta_g2: G2Point
    vk: VerifyingKey
    coef_matrix: list[int]
    coef_constraint: list[int]
    coef_signal: list[int]
    coef_value: Sequence[int]
    a_query: Sequence[G1Point]
    b_g1_query: Sequence[G1Point]
    b_g2_query: Sequence[G2Point]
    c_query: Sequence[G1Point]
    h_query: Sequence[G1Point]
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def check_proving_key_shape(pk: ProvingKey) -> None:
    """Check that every size and index of ``pk`` is consistent, so that no prover kernel
    (which does no bounds checks) can read or write out of bounds.

    Checks ``n_vars > n_public``, ``domain_size`` a power of two above ``n_public``, the query
    lengths (``n_vars``, ``n_vars - n_public - 1``, ``domain_size``), equal coefficient list
    lengths, and every coefficient's matrix in ``{0, 1}``, constraint in ``[0, domain_size)``
    and signal in ``[0, n_vars)``. Keys read with :func:`proving.formats.zkey.parse_zkey`
    already satisfy this; it guards keys built in memory. O(number of coefficients).

    Raises:
        MalformedProof: naming the field ``pk.<name>``.
    """
    n, n_vars, n_pub = pk.domain_size, pk.n_vars, pk.n_public
    if not 0 <= n_pub < n_vars:
        raise MalformedProof("pk.n_vars", f"n_vars = {n_vars} must exceed n_public = {n_pub} >= 0")
    if n < 2 or n & (n - 1) or n <= n_pub:
        raise MalformedProof("pk.domain_size", f"{n} is not a power of two >= 2 above n_public = {n_pub}")
    for name, want in (("a_query", n_vars), ("b_g1_query", n_vars), ("b_g2_query", n_vars),
                       ("c_query", n_vars - n_pub - 1), ("h_query", n)):
        if len(getattr(pk, name)) != want:
            raise MalformedProof(f"pk.{name}", f"has {len(getattr(pk, name))} points, expected {want}")
    n_coef = len(pk.coef_value)
    for name, bound in (("coef_matrix", 2), ("coef_constraint", n), ("coef_signal", n_vars)):
        values = getattr(pk, name)
        if len(values) != n_coef:
            raise MalformedProof(f"pk.{name}", f"has {len(values)} entries, coef_value has {n_coef}")
        if n_coef and not (0 <= min(values) and max(values) < bound):
            raise MalformedProof(f"pk.{name}", f"an index is outside [0, {bound})")


@dataclass(frozen=True)
class Proof:
    """A Groth16 proof ``(A in G1, B in G2, C in G1)`` (snarkjs ``proof.json``: pi_a, pi_b, pi_c)."""

    a: G1Point
    b: G2Point
    c: G1Point
