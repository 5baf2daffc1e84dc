"""Fixtures of the pipeline tests: a small MiMC circuit (1 round) with its dev key."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest

from market.pipeline.provenance import pk_hash
from market.pipeline.stages import CircuitSpec
from proving.circuits.mimc import preimage_circuit
from proving.groth16.setup import dev_setup
from proving.r1cs import check_witness

#: MiMC rounds of the test circuit: 1 round = 4 constraints, 6 signals (a py_ecc proof ~0.3 s).
TEST_ROUNDS = 1
CIRCUIT_ID = "mimc7-r1"


@dataclass(frozen=True)
class TestCircuit:
    """The registered circuit and a witness maker (preimage ``x`` -> full witness)."""

    spec: object
    rounds: int

    def witness(self, x: int) -> tuple[int, ...]:
        return tuple(preimage_circuit(x, n_rounds=self.rounds).witness)


@pytest.fixture(scope="session")
def mimc_circuit() -> TestCircuit:
    """MiMC-7 preimage circuit, 1 round, dev setup with a fixed seed (NOT FOR PRODUCTION)."""
    r1cs = preimage_circuit(None, n_rounds=TEST_ROUNDS).r1cs
    pk = dev_setup(r1cs, seed=20261121)
    spec = CircuitSpec(CIRCUIT_ID, pk, pk_hash(pk), functools.partial(check_witness, r1cs))
    return TestCircuit(spec, TEST_ROUNDS)
