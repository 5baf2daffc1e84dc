"""Fast Groth16 prover: identical to the py_ecc reference for fixed (r, s); real proofs verify."""

from __future__ import annotations

import random

import pytest
from py_ecc import optimized_bn128 as bn

from proving.errors import WitnessError
from proving.groth16 import prover, prover_ref
from proving.groth16.keys import ProvingKey, VerifyingKey

R = bn.curve_order


def _g1(rng):
    x, y = bn.normalize(bn.multiply(bn.G1, rng.randrange(1, R)))
    return (int(x), int(y))


def _g2(rng):
    x, y = bn.normalize(bn.multiply(bn.G2, rng.randrange(1, R)))
    return ((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1])))


def structural_key(seed: int = 1, n_vars: int = 9, n_public: int = 2, n_constraints: int = 10) -> ProvingKey:
    """A key of random points and coefficients: not a valid setup, enough for proof equality."""
    rng = random.Random(seed)
    n = 1
    while n < n_constraints + n_public + 1:
        n *= 2
    cm, cc, cs, cv = [], [], [], []
    for c in range(n_constraints):
        for m in (0, 1):
            for _ in range(2):
                cm.append(m), cc.append(c), cs.append(rng.randrange(n_vars)), cv.append(rng.randrange(R))
    for i in range(n_public + 1):
        cm.append(0), cc.append(n_constraints + i), cs.append(i), cv.append(1)
    vk = VerifyingKey(_g1(rng), _g2(rng), _g2(rng), _g2(rng), tuple(_g1(rng) for _ in range(n_public + 1)))
    a_query = [_g1(rng) for _ in range(n_vars)]
    a_query[3] = None  # zkeys hold infinity for unused signals
    return ProvingKey(
        n_vars=n_vars, n_public=n_public, domain_size=n, alpha_g1=vk.alpha_g1, beta_g1=_g1(rng),
        beta_g2=vk.beta_g2, delta_g1=_g1(rng), delta_g2=vk.delta_g2, vk=vk,
        coef_matrix=cm, coef_constraint=cc, coef_signal=cs, coef_value=cv,
        a_query=a_query, b_g1_query=[_g1(rng) for _ in range(n_vars)],
        b_g2_query=[_g2(rng) for _ in range(n_vars)],
        c_query=[_g1(rng) for _ in range(n_vars - n_public - 1)], h_query=[_g1(rng) for _ in range(n)],
    )


@pytest.fixture(scope="module")
def key():
    return structural_key()


def test_fast_equals_reference(key):
    rng = random.Random(3)
    witnesses = [
        [1] + [rng.randrange(R) for _ in range(key.n_vars - 1)],
        [1, 0, 1, R - 1, 0, 0, 1, 2, 0],  # circom-like: zeros and ones
    ]
    for w in witnesses:
        r, s = rng.randrange(R), rng.randrange(R)
        assert prover.prove(key, w, r=r, s=s) == prover_ref.prove(key, w, r=r, s=s)
    assert "numba_prover" in key.cache


def test_prove_many_and_randomness(key):
    w = [1] + [5] * (key.n_vars - 1)
    proofs = prover.prove_many(key, [w, w], randomness=[(1, 2), (3, 4)])
    assert proofs[0] == prover_ref.prove(key, w, r=1, s=2)
    assert proofs[1] == prover_ref.prove(key, w, r=3, s=4)
    assert prover.prove(key, w) != prover.prove(key, w)  # fresh randomness each time
    with pytest.raises(ValueError):
        prover.prove_many(key, [w], randomness=[])


def test_witness_errors(key):
    with pytest.raises(WitnessError):
        prover.prove(key, [1, 2])
    with pytest.raises(WitnessError):
        prover.prove(key, [2] + [0] * (key.n_vars - 1))
    with pytest.raises(WitnessError):
        prover.prove(key, [1, R] + [0] * (key.n_vars - 2))


def test_fast_proof_verifies_on_dev_setup():
    setup = pytest.importorskip("proving.groth16.setup")
    verifier = pytest.importorskip("proving.groth16.verifier")
    mimc = pytest.importorskip("proving.circuits.mimc")
    from proving.errors import PairingCheckFailed

    circ = mimc.preimage_circuit(12345, n_rounds=4)
    pk = setup.dev_setup(circ.r1cs, seed=9)
    proof = prover.prove(pk, circ.witness)
    public = circ.witness[1:pk.n_public + 1]
    verifier.verify(pk.vk, public, proof)
    with pytest.raises(PairingCheckFailed):
        verifier.verify(pk.vk, [(public[0] + 1) % R], proof)
    assert prover.prove(pk, circ.witness, r=5, s=6) == prover_ref.prove(pk, circ.witness, r=5, s=6)
