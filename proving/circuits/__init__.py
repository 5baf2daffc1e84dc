"""Circuits written with :class:`proving.r1cs.Builder`, each with its witness generation in Python."""
