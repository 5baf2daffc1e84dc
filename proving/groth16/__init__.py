"""Groth16 over BN254 (Groth, "On the Size of Pairing-based Non-interactive Arguments", EUROCRYPT 2016).

Split by role as gnark and arkworks do: ``keys`` (data types in snarkjs zkey layout), ``setup``
(dev ceremony, NOT FOR PRODUCTION), ``prover`` (fast, numba MSM/NTT) and ``prover_ref`` (py_ecc
reference), ``points`` (subgroup and curve checks), ``pairing`` (optimal-ate pairing on plain
integers, cross-checked against py_ecc) and ``pairing_fast`` (numba multi-Miller loop), ``verifier``
and ``verifier_ref`` (py_ecc oracle), ``rlc`` (the random-linear-combination batch driver with
bisection) with ``batch`` (numba kernels) and ``batch_ref`` (plain integers), ``solidity``
(verifier export for the BN254 precompiles 0x06-0x08).
"""
