"""Groth16 verification over BN254 with reasons, not booleans.

:func:`verify` checks, in order and before any pairing: the number and range of the public
inputs, then each proof point's shape, coordinate range, curve equation and (G2) subgroup
membership; then the pairing equation (Groth 2016, sec. 3.2, in snarkjs's arrangement)::

    e(-A, B) * e(alpha, beta) * e(vk_x, gamma) * e(C, delta) = 1,
    vk_x = IC[0] + sum_i public_inputs[i] * IC[i + 1]

with one 4-pair Miller loop and one final exponentiation (:mod:`proving.groth16.pairing`).
"""

from __future__ import annotations

from collections.abc import Sequence

from proving.errors import PairingCheckFailed
from proving.groth16.keys import G1Point, Proof, VerifyingKey
from proving.groth16.pairing import pairing_product_is_one
from proving.groth16.points import check_proof, check_public_inputs, g1_lincomb, g1_neg


def public_input_point(vk: VerifyingKey, public_inputs: Sequence[int]) -> G1Point:
    """``vk_x = IC[0] + sum x_i IC[i+1]`` (affine G1)."""
    return g1_lincomb(vk.ic, [1, *public_inputs])


def verify(vk: VerifyingKey, public_inputs: Sequence[int], proof: Proof) -> None:
    """Verify a Groth16 proof; return ``None`` when valid, raise the reason when not.

    Args:
        vk: the verification key (trusted; e.g. from ``read_zkey`` or ``read_verification_key``).
        public_inputs: ``vk.n_public`` Fr ints (snarkjs ``public.json`` order).
        proof: the proof (affine points as in :mod:`proving.groth16.keys`).

    Raises:
        MalformedProof: wrong number of public inputs, wrong shapes, point at infinity.
        FieldElementOutOfRange: a public input ``>= r`` or a coordinate ``>= q``.
        PointNotOnCurve: a proof point off its curve.
        NotInSubgroup: B not in the order-r subgroup of G2.
        PairingCheckFailed: well-formed but invalid proof.
    """
    check_public_inputs(vk, public_inputs)
    check_proof(proof)
    pairs = [
        (g1_neg(proof.a), proof.b),
        (vk.alpha_g1, vk.beta_g2),
        (public_input_point(vk, public_inputs), vk.gamma_g2),
        (proof.c, vk.delta_g2),
    ]
    if not pairing_product_is_one(pairs):
        raise PairingCheckFailed()


def is_valid(vk: VerifyingKey, public_inputs: Sequence[int], proof: Proof) -> bool:
    """``True`` iff :func:`verify` raises nothing of :class:`proving.errors.ProvingError`."""
    from proving.errors import ProvingError

    try:
        verify(vk, public_inputs, proof)
    except ProvingError:
        return False
    return True
