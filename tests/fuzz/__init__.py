"""Fuzzing: a deterministic engine (:mod:`tests.fuzz.engine`), mutators, and one target per
input format (:mod:`tests.fuzz.proving_targets`); ``benchmarks/fuzz.py`` runs them long."""
