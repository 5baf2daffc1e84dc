"""Groth16 over BN254 (Groth, "On the Size of Pairing-based Non-interactive Arguments", EUROCRYPT 2016).

Split by role as gnark and arkworks do: ``keys`` (data types), ``setup`` (dev ceremony),
``prover`` (fast, numba), ``prover_ref`` (py_ecc reference), ``verifier``, ``batch``
(random-linear-combination batch verification), ``solidity`` (verifier export).
"""
