"""Reference Groth16 verifier on py_ecc's pairing: the oracle for :mod:`proving.groth16.verifier`.

Same checks and errors as :func:`proving.groth16.verifier.verify` (shared input validation),
but the pairing equation ``e(-A, B) e(alpha, beta) e(vk_x, gamma) e(C, delta) = 1`` is computed
with py_ecc ``optimized_bn128`` (four Miller loops, one final exponentiation) and ``vk_x``
with py_ecc scalar multiplication. Slow (~1 s a proof); the baseline of the verification
benchmarks ("one by one with py_ecc").
"""

from __future__ import annotations

from collections.abc import Sequence

from py_ecc import optimized_bn128 as bn
from py_ecc.fields import optimized_bn128_FQ12 as FQ12

from proving.errors import PairingCheckFailed
from proving.groth16.keys import Proof, VerifyingKey
from proving.groth16.points import check_proof, check_public_inputs, to_pyecc_g1, to_pyecc_g2


def verify(vk: VerifyingKey, public_inputs: Sequence[int], proof: Proof) -> None:
    """Verify with py_ecc; raises exactly what :func:`proving.groth16.verifier.verify` raises."""
    check_public_inputs(vk, public_inputs)
    check_proof(proof)
    vk_x = to_pyecc_g1(vk.ic[0])
    for x, ic in zip(public_inputs, vk.ic[1:]):
        if x and ic is not None:
            vk_x = bn.add(vk_x, bn.multiply(to_pyecc_g1(ic), x))
    pairs = [(bn.neg(to_pyecc_g1(proof.a)), to_pyecc_g2(proof.b)), (to_pyecc_g1(vk.alpha_g1), to_pyecc_g2(vk.beta_g2)),
             (vk_x, to_pyecc_g2(vk.gamma_g2)), (to_pyecc_g1(proof.c), to_pyecc_g2(vk.delta_g2))]
    acc = FQ12.one()
    for p, q in pairs:
        if not (bn.is_inf(p) or bn.is_inf(q)):
            acc = acc * bn.pairing(q, p, final_exponentiate=False)
    if bn.final_exponentiate(acc) != FQ12.one():
        raise PairingCheckFailed()
