"""Groth16 verification over BN254 with reasons, not booleans.

:func:`verify` checks, in order and before any pairing: the number and range of the public
inputs, then each proof point's shape, coordinate range, curve equation and (G2) subgroup
membership; then the pairing equation (Groth 2016, sec. 3.2, in snarkjs's arrangement)::

    e(-A, B) * e(alpha, beta) * e(vk_x, gamma) * e(C, delta) = 1,
    vk_x = IC[0] + sum_i public_inputs[i] * IC[i + 1]

with 4 Miller loops and one final exponentiation.
"""

from __future__ import annotations

from collections.abc import Sequence

from py_ecc import optimized_bn128 as bn

from proving.errors import PairingCheckFailed
from proving.groth16.keys import Proof, VerifyingKey
from proving.groth16.pairing import pairing_product_is_one
from proving.groth16.points import check_proof, check_public_inputs, to_pyecc_g1, to_pyecc_g2


def public_input_point(vk: VerifyingKey, public_inputs: Sequence[int]):
    """``vk_x = IC[0] + sum x_i IC[i+1]`` as a py_ecc projective G1 point."""
    acc = to_pyecc_g1(vk.ic[0])
    for x, ic in zip(public_inputs, vk.ic[1:]):
        if x and ic is not None:
            acc = bn.add(acc, bn.multiply(to_pyecc_g1(ic), x))
    return acc


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
        (bn.neg(to_pyecc_g1(proof.a)), to_pyecc_g2(proof.b)),
        (to_pyecc_g1(vk.alpha_g1), to_pyecc_g2(vk.beta_g2)),
        (public_input_point(vk, public_inputs), to_pyecc_g2(vk.gamma_g2)),
        (to_pyecc_g1(proof.c), to_pyecc_g2(vk.delta_g2)),
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
