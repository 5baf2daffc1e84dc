"""A Groth16 DEVELOPMENT setup from an R1CS: NOT FOR PRODUCTION.

:func:`dev_setup` samples the toxic waste ``tau, alpha, beta, gamma, delta`` itself (from a
seed, if given), so whoever ran it can forge proofs. Use it for tests, benchmarks and local
circuits; real deployments use a multi-party ceremony (``snarkjs powersoftau`` +
``zkey contribute``) and :func:`proving.formats.zkey.read_zkey`.

The key is laid out exactly like a snarkjs zkey (``snarkjs/src/zkey_new.js``), so every prover
that reads snarkjs zkeys proves with it and ``snarkjs groth16 prove`` accepts it once written
with :func:`proving.formats.zkey.write_zkey`:

* the R1CS is extended with ``A[m + i] += w[i]`` for ``i = 0..n_public`` (m = n_constraints);
* ``domain_size`` is the least power of two ``>= m + n_public + 1``;
* the QAP polynomials are Lagrange interpolations on ``{w_n^j}`` with ffjavascript's roots of
  unity (``w_{2^28} = nqr^t``, ``nqr`` the least quadratic non-residue, ``r - 1 = 2^28 t``);
* ``h_query[i] = L^{(2n)}_{2i+1}(tau) / delta * G1``, the Lagrange basis of the 2n-th roots at
  odd indices (``proving.groth16.keys`` explains why this is the snarkjs convention).

Formulas: Groth, "On the Size of Pairing-based Non-interactive Arguments", EUROCRYPT 2016, sec. 3.2.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from py_ecc.optimized_bn128 import G1 as _G1, G2 as _G2, add as _add, normalize as _normalize
from py_ecc.optimized_bn128 import Z1 as _Z1, Z2 as _Z2

from proving import curve
from proving.curve import G1Point, G2Point
from proving.field import FR_MODULUS
from proving.groth16.keys import ProvingKey, VerifyingKey
from proving.r1cs import R1CS

R = FR_MODULUS
#: 2-adicity of r - 1 for BN254's Fr.
FR_TWO_ADICITY = 28


def _least_non_residue() -> int:
    """ffjavascript's ``nqr``: the least ``x >= 2`` with ``x^((r-1)/2) != 1``."""
    x = 2
    while pow(x, (R - 1) // 2, R) == 1:
        x += 1
    return x


def root_of_unity(n: int) -> int:
    """Primitive ``n``-th root of unity in Fr as ffjavascript picks it (``Fr.w[log2 n]``).

    Raises:
        ValueError: ``n`` not a power of two in ``[1, 2^28]``.
    """
    if n < 1 or n & (n - 1) or n > 1 << FR_TWO_ADICITY:
        raise ValueError(f"domain size must be a power of two <= 2^28, got {n}")
    t = (R - 1) >> FR_TWO_ADICITY
    w = pow(_least_non_residue(), t, R)
    return pow(w, (1 << FR_TWO_ADICITY) // n, R)


def domain_size_for(r1cs: R1CS) -> int:
    """snarkjs's Groth16 domain size: least power of two ``>= n_constraints + n_public + 1``."""
    need, n = r1cs.n_constraints + r1cs.n_public + 1, 1
    while n < need:
        n <<= 1
    return n


def lagrange_at(tau: int, n: int) -> list[int]:
    """``[L_j(tau) for j < n]``, the Lagrange basis of the ``n``-th roots of unity at ``tau``.

    ``L_j(X) = (X^n - 1) / n * w^j / (X - w^j)``; ``tau`` must not be a root of unity.
    """
    w, z = root_of_unity(n), (pow(tau, n, R) - 1) % R
    if z == 0:
        raise ValueError("tau is an n-th root of unity; sample another")
    factor, out, wj = z * pow(n, -1, R) % R, [], 1
    denominators = []
    for _ in range(n):
        denominators.append((tau - wj) % R)
        wj = wj * w % R
    inverses = _batch_inverse(denominators)
    wj = 1
    for inv in inverses:
        out.append(factor * wj % R * inv % R)
        wj = wj * w % R
    return out


def _batch_inverse(values: Sequence[int]) -> list[int]:
    """Montgomery's trick: all inverses mod r with one exponentiation."""
    prefix, acc = [], 1
    for v in values:
        prefix.append(acc)
        acc = acc * v % R
    inv, out = pow(acc, -1, R), [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = prefix[i] * inv % R
        inv = inv * values[i] % R
    return out


@dataclass(frozen=True)
class ToxicWaste:
    """The secret scalars of a dev setup (Fr ints); anyone holding them can forge proofs."""

    tau: int
    alpha: int
    beta: int
    gamma: int
    delta: int


def sample_toxic_waste(seed: int | None = None) -> ToxicWaste:
    """Five non-zero Fr scalars: from ``random.Random(seed)`` if a seed is given (reproducible,
    for tests), else from :mod:`secrets`."""
    draw = random.Random(seed).randrange if seed is not None else (lambda a, b: a + secrets.randbelow(b - a))
    return ToxicWaste(*(draw(1, R) for _ in range(5)))


class FixedBase:
    """Fixed-base scalar multiplication with a table of ``j * 2^(8i) * P`` (8-bit windows).

    32 point additions per multiplication instead of ~380 for double-and-add; built once per
    base point (py_ecc ``optimized_bn128`` projective arithmetic underneath).
    """

    WINDOW_BITS = 8

    def __init__(self, base, zero) -> None:
        self._zero = zero
        self._table = []
        for _ in range(256 // self.WINDOW_BITS):
            row, acc = [zero], zero
            for _ in range(1, 1 << self.WINDOW_BITS):
                acc = _add(acc, base)
                row.append(acc)
            self._table.append(row)
            base = _add(acc, base)

    def mul(self, k: int):
        """``k * P`` in projective coordinates (``k`` reduced mod r)."""
        k %= R
        acc, i, mask = self._zero, 0, (1 << self.WINDOW_BITS) - 1
        while k:
            digit = k & mask
            if digit:
                acc = _add(acc, self._table[i][digit])
            k >>= self.WINDOW_BITS
            i += 1
        return acc


_G1_AFFINE = (1, 2)
_G2_AFFINE = (
    (10857046999023057135944570762232829481370756359578518086990519993285655852781,
     11559732032986387107991004021392285783925812861821192530917403151452391805634),
    (8495653923123431417604973247489272438418190587263600148770280649306958101930,
     4082367875863433681332203403145435568316851327593401208105741076214120093531),
)


@lru_cache(maxsize=1)
def generator_tables() -> tuple[FixedBase, FixedBase]:
    """The :class:`FixedBase` tables of the G1 and G2 generators, built once per process."""
    return FixedBase(_G1, _Z1), FixedBase(_G2, _Z2)


def _scalar_limbs(scalars: Sequence[int]) -> np.ndarray:
    mask = (1 << 64) - 1
    return np.array([[(k % R >> (64 * i)) & mask for i in range(4)] for k in scalars], np.uint64).reshape(-1, 4)


def generator_multiples(scalars: Sequence[int], group: int, *, use_kernels: bool = True) -> list:
    """``[k * G for k in scalars]`` (affine; ``group`` 1 or 2), with the numba curve kernels of
    :mod:`proving.curve` (``use_kernels``, the default), else the pure-Python
    :class:`FixedBase` tables (the reference)."""
    if not scalars:
        return []
    if not use_kernels:
        table = generator_tables()[group - 1]
        affine = to_affine_g1 if group == 1 else to_affine_g2
        return [affine(table.mul(k)) for k in scalars]
    if group == 1:
        jac = curve.g1_to_jacobian(curve.g1_to_affine_array([_G1_AFFINE] * len(scalars)))
        return curve.g1_from_affine_array(curve.g1_batch_to_affine(curve.g1_apply("mul", jac, _scalar_limbs(scalars))))
    jac = curve.g2_to_jacobian(curve.g2_to_affine_array([_G2_AFFINE] * len(scalars)))
    return curve.g2_from_affine_array(curve.g2_batch_to_affine(curve.g2_apply("mul", jac, _scalar_limbs(scalars))))


def to_affine_g1(p) -> G1Point:
    """py_ecc projective G1 point -> affine int tuple (``None`` at infinity)."""
    if p[2] == 0:
        return None
    x, y = _normalize(p)
    return (int(x), int(y))


def to_affine_g2(p) -> G2Point:
    """py_ecc projective G2 point -> affine ``((x_c0, x_c1), (y_c0, y_c1))`` (``None`` at infinity)."""
    if p[2] == p[2].zero():
        return None
    x, y = _normalize(p)
    return ((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1])))


def qap_at_tau(r1cs: R1CS, lagrange: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    """``(A_i(tau), B_i(tau), C_i(tau))`` for every signal ``i`` of the extended R1CS."""
    a, b, c = ([0] * r1cs.n_vars for _ in range(3))
    for j, row in enumerate(r1cs.constraints):
        for terms, acc in ((row.a, a), (row.b, b), (row.c, c)):
            for signal, coeff in terms:
                acc[signal] = (acc[signal] + coeff * lagrange[j]) % R
    for i in range(r1cs.n_public + 1):
        a[i] = (a[i] + lagrange[r1cs.n_constraints + i]) % R
    return a, b, c


def extended_coefficients(r1cs: R1CS) -> tuple[list[int], list[int], list[int], list[int]]:
    """zkey section 4 in snarkjs's order: per constraint its A then B terms, then the
    ``n_public + 1`` public-binding A terms. Returns ``(matrix, constraint, signal, value)``."""
    out: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])
    for j, row in enumerate(r1cs.constraints):
        for matrix, terms in ((0, row.a), (1, row.b)):
            for signal, coeff in terms:
                for column, v in zip(out, (matrix, j, signal, coeff % R)):
                    column.append(v)
    for i in range(r1cs.n_public + 1):
        for column, v in zip(out, (0, r1cs.n_constraints + i, i, 1)):
            column.append(v)
    return out


def dev_setup(r1cs: R1CS, *, seed: int | None = None, waste: ToxicWaste | None = None) -> ProvingKey:
    """Run a single-party Groth16 setup for ``r1cs``: NOT FOR PRODUCTION (the caller could keep
    the toxic waste and forge proofs).

    Args:
        r1cs: the circuit.
        seed: makes the setup reproducible (tests); ``None`` draws from :mod:`secrets`.
        waste: explicit toxic waste (overrides ``seed``; tests of the verifier use it).

    Returns:
        A :class:`ProvingKey` in snarkjs zkey layout (see the module docstring).

    Raises:
        ValueError: the circuit is too large for Fr's 2-adic domain.
    """
    tw = waste or sample_toxic_waste(seed)
    n = domain_size_for(r1cs)
    a, b, c = qap_at_tau(r1cs, lagrange_at(tw.tau, n))
    inv_gamma, inv_delta = pow(tw.gamma, -1, R), pow(tw.delta, -1, R)
    lin = [(tw.beta * a[i] + tw.alpha * b[i] + c[i]) % R for i in range(r1cs.n_vars)]
    n_pub, n_vars = r1cs.n_public, r1cs.n_vars
    lagrange_2n = lagrange_at(tw.tau, 2 * n)
    g1_scalars = ([tw.alpha, tw.beta, tw.delta] + [lin[i] * inv_gamma for i in range(n_pub + 1)] + a + b
                  + [lin[i] * inv_delta for i in range(n_pub + 1, n_vars)]
                  + [lagrange_2n[2 * i + 1] * inv_delta for i in range(n)])
    g1 = generator_multiples(g1_scalars, 1)
    g2 = generator_multiples([tw.beta, tw.gamma, tw.delta] + b, 2)
    cut = [3, 3 + n_pub + 1, 3 + n_pub + 1 + n_vars, 3 + n_pub + 1 + 2 * n_vars, 3 + 2 * n_vars + n_vars]
    alpha_g1, beta_g1, delta_g1 = g1[0], g1[1], g1[2]
    ic, a_query, b_g1_query = g1[cut[0]:cut[1]], g1[cut[1]:cut[2]], g1[cut[2]:cut[3]]
    c_query, h_query = g1[cut[3]:cut[4]], g1[cut[4]:]
    vk = VerifyingKey(alpha_g1=alpha_g1, beta_g2=g2[0], gamma_g2=g2[1], delta_g2=g2[2], ic=tuple(ic))
    matrix, constraint, signal, value = extended_coefficients(r1cs)
    return ProvingKey(
        n_vars=n_vars, n_public=n_pub, domain_size=n,
        alpha_g1=alpha_g1, beta_g1=beta_g1, beta_g2=vk.beta_g2, delta_g1=delta_g1, delta_g2=vk.delta_g2, vk=vk,
        coef_matrix=matrix, coef_constraint=constraint, coef_signal=signal, coef_value=value,
        a_query=a_query, b_g1_query=b_g1_query, b_g2_query=g2[3:], c_query=c_query, h_query=h_query,
    )
