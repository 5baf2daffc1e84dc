"""Groth16 verification over BN254 with reasons, not booleans.

:func:`verify` checks, in order and before any pairing: the number and range of the public
inputs, then each proof point's shape, coordinate range, curve equation and (G2) subgroup
membership; then the pairing equation (Groth 2016, sec. 3.2, in snarkjs's arrangement)::

    e(-A, B) * e(alpha, beta) * e(vk_x, gamma) * e(C, delta) = 1,
    vk_x = IC[0] + sum_i public_inputs[i] * IC[i + 1]

with one Miller loop and one final exponentiation (:mod:`proving.groth16.pairing`); the key's
G2 points are prepared once (their line coefficients cached) and ``e(alpha, beta)``'s Miller
value is cached per key, as arkworks' ``PreparedVerifyingKey`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from proving.curve import G1Point, G2Point
from proving.errors import PairingCheckFailed, ProvingError
from proving.groth16.keys import Proof, VerifyingKey
from proving.groth16.pairing import F12_ONE, Fq12, f12_mul, final_exponentiation, miller_loop, prepare_g2
from proving.groth16.points import check_proof, check_public_inputs, g1_lincomb, g1_neg


def public_input_point(vk: VerifyingKey, public_inputs: Sequence[int]) -> G1Point:
    """``vk_x = IC[0] + sum x_i IC[i+1]`` (affine G1)."""
    return g1_lincomb(vk.ic, [1, *public_inputs])


@lru_cache(maxsize=64)
def alpha_beta_miller(alpha_g1: G1Point, beta_g2: G2Point) -> Fq12:
    """The Miller-loop value of ``e(alpha, beta)``, fixed per key (cached)."""
    return miller_loop([(alpha_g1, prepare_g2(beta_g2))])


def pairing_product_is_one(vk: VerifyingKey, proof: Proof, vk_x: G1Point) -> bool:
    """The Groth16 equation with the key's G2 points prepared and ``e(alpha, beta)``'s Miller
    value cached: one Miller loop over 3 pairs, times the cached value, one final exponentiation."""
    f = miller_loop([(g1_neg(proof.a), proof.b), (vk_x, prepare_g2(vk.gamma_g2)), (proof.c, prepare_g2(vk.delta_g2))])
    return final_exponentiation(f12_mul(f, alpha_beta_miller(vk.alpha_g1, vk.beta_g2))) == F12_ONE


def verify(vk: VerifyingKey, public_inputs: Sequence[int], proof: Proof) -> None:
    """Verify a Groth16 proof; return ``None`` when valid, raise the reason when not.

    Args:
        vk: the verification key (trusted; e.g. from ``read_zkey`` or ``read_verification_key``).
        public_inputs: ``vk.n_public`` Fr ints (snarkjs ``public.json`` order).
        proof: the proof (affine points as in :mod:`proving.curve`).

    Raises:
        MalformedProof: wrong number of public inputs, wrong shapes, point at infinity.
        FieldElementOutOfRange: a public input ``>= r`` or a coordinate ``>= q``.
        PointNotOnCurve: a proof point off its curve.
        NotInSubgroup: B not in the order-r subgroup of G2.
        PairingCheckFailed: well-formed but invalid proof.
    """
    check_public_inputs(vk, public_inputs)
    check_proof(proof)
    if not pairing_product_is_one(vk, proof, public_input_point(vk, public_inputs)):
        raise PairingCheckFailed()


def is_valid(vk: VerifyingKey, public_inputs: Sequence[int], proof: Proof) -> bool:
    """``True`` iff :func:`verify` raises nothing of :class:`proving.errors.ProvingError`."""
    try:
        verify(vk, public_inputs, proof)
    except ProvingError:
        return False
    return True
