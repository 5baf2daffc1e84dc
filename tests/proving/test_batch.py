"""Batched verification: accepts valid batches, rejects a batch with a bad proof and names it."""

from __future__ import annotations

import dataclasses
from functools import cache

import pytest

from proving.errors import BatchVerificationFailed, MalformedProof, PairingCheckFailed, PointNotOnCurve
from proving.field import FR_MODULUS as R
from proving.groth16.batch import batch_verify, find_invalid
from tests.proving.protocol_fixtures import mimc, mimc_key

N_PROOFS = 5


@cache
def batch():
    """N_PROOFS proofs of different preimages (distinct public inputs) under one key."""
    from proving.backends import get_backend

    prover = get_backend("numba")
    pk = mimc_key()
    circuits = [mimc(1000 + i) for i in range(N_PROOFS)]
    return [[c.hash] for c in circuits], [prover.prove(pk, c.witness) for c in circuits]


def test_valid_batch_is_accepted():
    publics, proofs = batch()
    batch_verify(mimc_key().vk, publics, proofs)
    assert find_invalid(mimc_key().vk, publics, proofs) == {}


def test_one_bad_proof_is_named():
    publics, proofs = batch()
    publics = list(publics)
    publics[3] = [(publics[3][0] + 1) % R]
    with pytest.raises(BatchVerificationFailed) as e:
        batch_verify(mimc_key().vk, publics, proofs, seed=1)
    assert e.value.bad_indices == (3,)
    assert isinstance(e.value.reasons[3], PairingCheckFailed)


def test_swapped_proofs_and_a_malformed_one_are_all_named():
    publics, proofs = batch()
    proofs = list(proofs)
    proofs[0], proofs[1] = proofs[1], proofs[0]  # each valid, but for the other public input
    proofs[4] = dataclasses.replace(proofs[4], a=(1, 3))
    bad = find_invalid(mimc_key().vk, publics, proofs, seed=2)
    assert sorted(bad) == [0, 1, 4]
    assert isinstance(bad[4], PointNotOnCurve) and isinstance(bad[0], PairingCheckFailed)


def test_lengths_must_match():
    publics, proofs = batch()
    with pytest.raises(MalformedProof, match="publics"):
        batch_verify(mimc_key().vk, publics[:-1], proofs)
