"""Products of BN254 pairings with one final exponentiation (py_ecc ``optimized_bn128``).

``pairing_product_is_one([(P_1, Q_1), ...])`` checks ``prod e(P_i, Q_i) = 1`` with one Miller
loop per pair and a single final exponentiation ``f^((q^12 - 1) / r)``: the equation the EVM
precompile 0x08 (EIP-197) checks, and the core of Groth16 verification and of batched
verification. py_ecc's optimal-ate Miller loop is used unchanged (``final_exponentiate=False``).
"""

from __future__ import annotations

from collections.abc import Sequence

from py_ecc import optimized_bn128 as bn
from py_ecc.fields import optimized_bn128_FQ12 as FQ12


def miller_product(pairs: Sequence[tuple[object, object]]) -> FQ12:
    """``prod_i f_{P_i, Q_i}`` (Miller loops, no final exponentiation) of py_ecc projective
    ``(G1, G2)`` pairs; pairs with a point at infinity contribute 1."""
    acc = FQ12.one()
    for p, q in pairs:
        if bn.is_inf(p) or bn.is_inf(q):
            continue
        acc = acc * bn.pairing(q, p, final_exponentiate=False)
    return acc


def pairing_product_is_one(pairs: Sequence[tuple[object, object]]) -> bool:
    """``prod_i e(P_i, Q_i) == 1`` in GT, with ``len(pairs)`` Miller loops and one final exponentiation."""
    return bn.final_exponentiate(miller_product(pairs)) == FQ12.one()
