"""Dev setup + prove + verify on the MiMC circuit; every rejection comes with its reason,
and malformed inputs are rejected before any pairing is computed."""

from __future__ import annotations

import dataclasses

import pytest
from py_ecc import optimized_bn128 as bn
from py_ecc.fields import optimized_bn128_FQ2 as FQ2

from proving.errors import (
    FieldElementOutOfRange, MalformedProof, NotInSubgroup, PairingCheckFailed, PointNotOnCurve,
)
from proving.field import FQ_MODULUS as Q, FR_MODULUS as R
from proving.groth16 import verifier
from proving.groth16.keys import Proof
from proving.groth16.points import from_pyecc_g1, to_pyecc_g1
from proving.groth16.setup import dev_setup, domain_size_for, lagrange_at, root_of_unity
from proving.groth16.verifier import is_valid, verify
from tests.proving.protocol_fixtures import TEST_ROUNDS, g2_point_outside_subgroup, mimc, mimc_key, mimc_proof


def test_dev_setup_layout_matches_snarkjs_conventions():
    c, pk = mimc(), mimc_key()
    n = domain_size_for(c.r1cs)
    assert n == 32 == pk.domain_size  # 16 constraints + 1 public + 1 -> 32
    assert (pk.n_vars, pk.n_public) == (c.r1cs.n_vars, 1)
    assert len(pk.a_query) == len(pk.b_g1_query) == len(pk.b_g2_query) == pk.n_vars
    assert len(pk.c_query) == pk.n_vars - 2 and len(pk.h_query) == n and len(pk.vk.ic) == 2
    # public-binding A entries: (matrix 0, constraint m + i, signal i, value 1) at the end
    tail = list(zip(pk.coef_matrix, pk.coef_constraint, pk.coef_signal, pk.coef_value))[-2:]
    assert tail == [(0, 16, 0, 1), (0, 17, 1, 1)]
    assert set(pk.coef_matrix) == {0, 1}


def test_dev_setup_is_reproducible_from_a_seed():
    r1cs = mimc(n_rounds=1).r1cs
    a, b, c = dev_setup(r1cs, seed=1), dev_setup(r1cs, seed=1), dev_setup(r1cs, seed=2)
    assert a.vk == b.vk and a.h_query == b.h_query
    assert a.vk != c.vk


def test_roots_and_lagrange_basis():
    w = root_of_unity(8)
    assert pow(w, 8, R) == 1 and pow(w, 4, R) != 1
    tau = 123456789
    basis = lagrange_at(tau, 8)
    assert sum(basis) % R == 1  # the basis interpolates the constant 1
    assert sum(b * pow(w, j, R) for j, b in enumerate(basis)) % R == tau  # ... and X


def test_reference_proof_verifies():
    verify(mimc_key().vk, [mimc().hash], mimc_proof())
    assert is_valid(mimc_key().vk, [mimc().hash], mimc_proof())


def test_fast_prover_on_dev_setup_equals_reference_and_verifies():
    prover = pytest.importorskip("proving.groth16.prover")
    pk, c = mimc_key(), mimc()
    assert prover.prove(pk, c.witness, r=11 + 12345, s=13 + 12345) == mimc_proof()
    verify(pk.vk, [c.hash], prover.prove(pk, c.witness))  # fresh random blinding


def test_tampered_public_input_fails_the_pairing():
    with pytest.raises(PairingCheckFailed):
        verify(mimc_key().vk, [(mimc().hash + 1) % R], mimc_proof())


def test_tampered_proof_fails_the_pairing():
    p = mimc_proof()
    doubled_c = from_pyecc_g1(bn.double(to_pyecc_g1(p.c)))
    with pytest.raises(PairingCheckFailed):
        verify(mimc_key().vk, [mimc().hash], dataclasses.replace(p, c=doubled_c))
    assert not is_valid(mimc_key().vk, [mimc().hash], Proof(p.c, p.b, p.a))


def _malformed_cases():
    p, h = mimc_proof(), mimc().hash
    (ax, ay) = p.a
    (bx, by) = p.b
    return {
        "no public input": ([], p, MalformedProof, "public_inputs"),
        "two public inputs": ([h, h], p, MalformedProof, "public_inputs"),
        "public input >= r": ([h + R], p, FieldElementOutOfRange, "public_inputs[0]"),
        "A.x >= q": ([h], dataclasses.replace(p, a=(ax + Q, ay)), FieldElementOutOfRange, "proof.a.x"),
        "B.y.c1 >= q": ([h], dataclasses.replace(p, b=(bx, (by[0], by[1] + Q))), FieldElementOutOfRange, "proof.b.y.c1"),
        "A not on curve": ([h], dataclasses.replace(p, a=(ax, (ay + 1) % Q)), PointNotOnCurve, "proof.a"),
        "C not on curve": ([h], dataclasses.replace(p, c=(1, 3)), PointNotOnCurve, "proof.c"),
        "B not on twist": ([h], dataclasses.replace(p, b=(bx, (by[1], by[0]))), PointNotOnCurve, "proof.b"),
        "B not in subgroup": ([h], dataclasses.replace(p, b=g2_point_outside_subgroup()), NotInSubgroup, "proof.b"),
        "A at infinity": ([h], dataclasses.replace(p, a=None), MalformedProof, "proof.a"),
        "B wrong shape": ([h], dataclasses.replace(p, b=(1, 2)), MalformedProof, "proof.b"),
        "not a proof": ([h], {"pi_a": p.a}, MalformedProof, "proof"),
    }


@pytest.mark.parametrize("case", [
    "no public input", "two public inputs", "public input >= r", "A.x >= q", "B.y.c1 >= q", "A not on curve",
    "C not on curve", "B not on twist", "B not in subgroup", "A at infinity", "B wrong shape", "not a proof"])
def test_malformed_input_rejected_before_any_pairing(case, monkeypatch):
    publics, proof, error, field = _malformed_cases()[case]

    def no_pairing(*_args, **_kwargs):
        raise AssertionError("a pairing was computed for malformed input")

    monkeypatch.setattr(verifier, "pairing_product_is_one", no_pairing)
    with pytest.raises(error) as e:
        verify(mimc_key().vk, publics, proof)
    assert type(e.value) is error and e.value.field == field


def test_subgroup_point_is_on_the_twist():
    """The non-subgroup fixture is a genuine twist point (so the test above checks the subgroup)."""
    (x0, x1), (y0, y1) = g2_point_outside_subgroup()
    x, y = FQ2([x0, x1]), FQ2([y0, y1])
    assert y * y == x**3 + bn.b2
    assert TEST_ROUNDS >= 1


def test_reference_verifier_agrees():
    """The py_ecc reference verifier accepts the valid proof and rejects the tampered public input."""
    from proving.groth16 import verifier_ref

    verifier_ref.verify(mimc_key().vk, [mimc().hash], mimc_proof())
    with pytest.raises(PairingCheckFailed):
        verifier_ref.verify(mimc_key().vk, [(mimc().hash + 1) % R], mimc_proof())


@pytest.mark.parametrize("group", [1, 2])
def test_generator_multiples_kernels_equal_fixed_base(group):
    from proving.groth16.setup import generator_multiples

    scalars = [0, 1, 2, R - 1, R, 2**255 - 19, 123456789123456789]
    assert generator_multiples(scalars, group) == generator_multiples(scalars, group, use_kernels=False)
