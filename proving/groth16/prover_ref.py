"""Reference Groth16 prover on py_ecc: the snarkjs algorithm, in plain Python, slow and obvious.

This is the oracle the fast prover (:mod:`proving.groth16.prover`) is tested against, and the
prover the protocol tests use to exercise setup and verification on small circuits. It follows
snarkjs ``src/groth16_prove.js`` step by step:

1. ``A_T[c] = sum coef * w[s]`` over the zkey's A entries (matrix 0) and likewise ``B_T``
   (matrix 1): evaluations of A and B on the domain ``{w_n^i}``; ``C_T = A_T * B_T`` pointwise.
2. For each of A, B, C: inverse NTT to coefficients, multiply coefficient ``i`` by ``w_{2n}^i``
   (ffjavascript ``Fr.w[power + 1]``), forward NTT: evaluations on the odd coset
   ``{w_{2n}^{2i+1}}``.
3. ``p_i = A_odd[i] * B_odd[i] - C_odd[i]``; ``pi_H = sum p_i * h_query[i]``.
4. ``pi_A = alpha1 + sum w_i a_query[i] + r delta1``;
   ``pi_B = beta2 + sum w_i b_g2_query[i] + s delta2``;
   ``B1 = beta1 + sum w_i b_g1_query[i] + s delta1``;
   ``pi_C = sum_{i > n_public} w_i c_query[i - n_public - 1] + pi_H + s pi_A + r B1 - r s delta1``.

Roots of unity are ffjavascript's (``Fr.w[k] = 5^((r - 1) / 2^k)``, 5 the smallest quadratic
non-residue of Fr), so the domain and coset match snarkjs zkeys.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from py_ecc import optimized_bn128 as bn

from proving.curve import G1Point, G2Point
from proving.errors import WitnessError
from proving.field import FR_MODULUS
from proving.groth16.keys import Proof, ProvingKey
from proving.ntt import root_of_unity

R = FR_MODULUS


def ntt_naive(values: Sequence[int], omega: int) -> list[int]:
    """Plain-Python radix-2 NTT over Fr: ``out[k] = sum_j values[j] * omega^(j k)`` (natural order).

    ``len(values)`` must be a power of two and ``omega`` a root of unity of that order.
    """
    n = len(values)
    if n == 1:
        return [values[0] % R]
    even = ntt_naive(values[0::2], omega * omega % R)
    odd = ntt_naive(values[1::2], omega * omega % R)
    out = [0] * n
    w = 1
    for k in range(n // 2):
        t = w * odd[k] % R
        out[k] = (even[k] + t) % R
        out[k + n // 2] = (even[k] - t) % R
        w = w * omega % R
    return out


def intt_naive(values: Sequence[int], omega: int) -> list[int]:
    """Inverse of :func:`ntt_naive`: NTT with ``omega^-1``, scaled by ``1/n``."""
    n = len(values)
    n_inv = pow(n, R - 2, R)
    return [v * n_inv % R for v in ntt_naive(values, pow(omega, R - 2, R))]


def qap_evaluations(pk: ProvingKey, witness: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    """Evaluations of A, B and C = A*B on the domain ``{w_n^i}`` (snarkjs ``buildABC1``)."""
    n = pk.domain_size
    ab = ([0] * n, [0] * n)
    for m, c, s, v in zip(pk.coef_matrix, pk.coef_constraint, pk.coef_signal, pk.coef_value):
        ab[m][c] = (ab[m][c] + v * witness[s]) % R
    a, b = ab
    return a, b, [x * y % R for x, y in zip(a, b)]


def h_evaluations(pk: ProvingKey, witness: Sequence[int]) -> list[int]:
    """``A*B - C`` on the odd coset ``{w_{2n}^{2i+1}}``: the scalars of the h_query MSM (snarkjs ``joinABC``)."""
    n = pk.domain_size
    omega = root_of_unity(n)
    shift = root_of_unity(2 * n)
    odd = []
    for evals in qap_evaluations(pk, witness):
        coeffs = intt_naive(evals, omega)
        k = 1
        for i in range(n):
            coeffs[i] = coeffs[i] * k % R
            k = k * shift % R
        odd.append(ntt_naive(coeffs, omega))
    a, b, c = odd
    return [(x * y - z) % R for x, y, z in zip(a, b, c)]


def _g1(p: G1Point):
    return bn.Z1 if p is None else (bn.FQ(p[0]), bn.FQ(p[1]), bn.FQ.one())


def _g2(p: G2Point):
    if p is None:
        return bn.Z2
    return (bn.FQ2(list(p[0])), bn.FQ2(list(p[1])), bn.FQ2.one())


def _g1_affine(p) -> G1Point:
    if bn.is_inf(p):
        return None
    x, y = bn.normalize(p)
    return (int(x), int(y))


def _g2_affine(p) -> G2Point:
    if bn.is_inf(p):
        return None
    x, y = bn.normalize(p)
    return ((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1])))


def _msm(points, scalars: Sequence[int], zero):
    acc = zero
    for p, k in zip(points, scalars):
        k %= R
        if k and not bn.is_inf(p):
            acc = bn.add(acc, bn.multiply(p, k))
    return acc


def check_witness(pk: ProvingKey, witness: Sequence[int]) -> None:
    """Check the witness length and range against the key.

    Raises:
        WitnessError: ``len(witness) != pk.n_vars``, a value outside ``[0, r)`` or ``w[0] != 1``.
    """
    if len(witness) != pk.n_vars:
        raise WitnessError(f"witness has {len(witness)} values, the key expects n_vars={pk.n_vars}")
    for i, w in enumerate(witness):
        if not 0 <= w < R:
            raise WitnessError(f"witness[{i}] is not a reduced Fr element (0 <= w < r); reduce it mod r")
    if witness[0] != 1:
        raise WitnessError("witness[0] must be 1 (the constant signal)")


def _random_fr() -> int:
    return secrets.randbelow(R - 1) + 1


def prove(pk: ProvingKey, witness: Sequence[int], *, r: int | None = None, s: int | None = None) -> Proof:
    """Groth16 proof of ``witness`` under ``pk``, exactly as snarkjs ``groth16 prove`` computes it.

    Args:
        pk: proving key (snarkjs zkey layout, standard-form ints).
        witness: ``pk.n_vars`` Fr ints, ``witness[0] == 1``, public signals at ``1..n_public``.
        r, s: the blinding scalars; random non-zero Fr from :mod:`secrets` when None.

    Returns:
        The proof with affine points (G1 as ``(x, y)``, G2 as ``((x0, x1), (y0, y1))``).

    Raises:
        WitnessError: bad witness length or values.
    """
    check_witness(pk, witness)
    r = _random_fr() if r is None else r % R
    s = _random_fr() if s is None else s % R
    h = h_evaluations(pk, witness)
    delta1 = _g1(pk.delta_g1)
    pi_a = _msm([_g1(p) for p in pk.a_query], witness, bn.Z1)
    pi_a = bn.add(bn.add(pi_a, _g1(pk.alpha_g1)), bn.multiply(delta1, r))
    pi_b = _msm([_g2(p) for p in pk.b_g2_query], witness, bn.Z2)
    pi_b = bn.add(bn.add(pi_b, _g2(pk.beta_g2)), bn.multiply(_g2(pk.delta_g2), s))
    b1 = _msm([_g1(p) for p in pk.b_g1_query], witness, bn.Z1)
    b1 = bn.add(bn.add(b1, _g1(pk.beta_g1)), bn.multiply(delta1, s))
    pi_c = _msm([_g1(p) for p in pk.c_query], witness[pk.n_public + 1:], bn.Z1)
    pi_c = bn.add(pi_c, _msm([_g1(p) for p in pk.h_query], h, bn.Z1))
    pi_c = bn.add(pi_c, bn.multiply(pi_a, s))
    pi_c = bn.add(pi_c, bn.multiply(b1, r))
    pi_c = bn.add(pi_c, bn.multiply(delta1, (-r * s) % R))
    return Proof(a=_g1_affine(pi_a), b=_g2_affine(pi_b), c=_g1_affine(pi_c))
