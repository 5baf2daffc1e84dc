"""Test helpers for settlement: signed leaves and simulated Groth16 proofs (trapdoor known)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from eth_account import Account
from py_ecc import bn128

from contracts.attestation import (Attestation, AttestationLeaf, Eip712Domain, JobKind, Verification,
                                   proof_commitment, sign_attestation)

R = bn128.curve_order


#: The kind's default policy as the attestation carries it (``market.core.policy.default_policy``).
DEFAULT_TERMS = {JobKind.PROOF: (Verification.PROOF, 0), JobKind.INFERENCE: (Verification.SPOT_CHECK, 500_000)}


def random_attestation(provider: str, kind: JobKind = JobKind.INFERENCE, price_wei: int | None = None,
                       job_id: bytes | None = None, verification: Verification | None = None,
                       sample_rate_ppm: int | None = None) -> Attestation:
    """A random attestation; the policy defaults to the kind's (proof / spot-check at 500_000 ppm)."""
    code, ppm = DEFAULT_TERMS[JobKind(kind)] if verification is None else (
        verification, 500_000 if verification == Verification.SPOT_CHECK else 0)
    return Attestation(job_id or os.urandom(32), os.urandom(32), os.urandom(32), provider,
                       price_wei if price_wei is not None else secrets.randbelow(10**18), kind,
                       Verification(code), ppm if sample_rate_ppm is None else sample_rate_ppm)


def signed_leaf(key: str, domain: Eip712Domain, **kw) -> AttestationLeaf:
    att = random_attestation(Account.from_key(key).address, **kw)
    return AttestationLeaf(sign_attestation(att, key, domain))


def g1_words(p) -> list[int]:
    return [int(p[0].n), int(p[1].n)]


def g2_words(p) -> list[int]:
    """py_ecc FQ2 point -> EIP-197 words [x.c1, x.c0, y.c1, y.c0]."""
    x, y = p
    return [int(x.coeffs[1]), int(x.coeffs[0]), int(y.coeffs[1]), int(y.coeffs[0])]


@dataclass
class SimulatedCircuit:
    """A Groth16 verification key with known trapdoor scalars, so that valid proofs can be simulated.

    For ``e(A,B) = e(alpha,beta) e(L,gamma) e(C,delta)`` with ``A = a G1, B = b G2`` the simulator picks
    ``c = (a b - alpha beta - l gamma) / delta`` (Groth16's zero-knowledge simulator): a proof that passes
    exactly the pairing check the on-chain verifier runs.
    """

    alpha: int
    beta: int
    gamma: int
    delta: int
    ic: list[int]

    @classmethod
    def random(cls, n_public: int) -> "SimulatedCircuit":
        rnd = lambda: secrets.randbelow(R - 1) + 1  # noqa: E731
        return cls(rnd(), rnd(), rnd(), rnd(), [rnd() for _ in range(n_public + 1)])

    def constructor_args(self) -> tuple:
        ic_words: list[int] = []
        for s in self.ic:
            ic_words += g1_words(bn128.multiply(bn128.G1, s))
        return (g1_words(bn128.multiply(bn128.G1, self.alpha)), g2_words(bn128.multiply(bn128.G2, self.beta)),
                g2_words(bn128.multiply(bn128.G2, self.gamma)), g2_words(bn128.multiply(bn128.G2, self.delta)),
                ic_words)

    def verifying_key(self):
        """The key as ``proving.groth16.keys.VerifyingKey`` (py_ecc coordinate order)."""
        from proving.groth16.keys import VerifyingKey

        g1 = lambda s: tuple(int(c.n) for c in bn128.multiply(bn128.G1, s))  # noqa: E731
        g2 = lambda s: tuple(tuple(int(c) for c in coord.coeffs) for coord in bn128.multiply(bn128.G2, s))  # noqa: E731
        return VerifyingKey(g1(self.alpha), g2(self.beta), g2(self.gamma), g2(self.delta),
                            tuple(g1(s) for s in self.ic))

    def prove(self, pub_signals: list[int]) -> list[int]:
        a, b = secrets.randbelow(R - 1) + 1, secrets.randbelow(R - 1) + 1
        lin = (self.ic[0] + sum(s * w for s, w in zip(pub_signals, self.ic[1:]))) % R
        c = (a * b - self.alpha * self.beta - lin * self.gamma) * pow(self.delta, -1, R) % R
        return (g1_words(bn128.multiply(bn128.G1, a)) + g2_words(bn128.multiply(bn128.G2, b))
                + g1_words(bn128.multiply(bn128.G1, c)))


def proof_leaf(key: str, domain: Eip712Domain, circuit_id: bytes, proof: list[int], pub: list[int],
               job_id: bytes | None = None, **kw) -> AttestationLeaf:
    att = random_attestation(Account.from_key(key).address, kind=JobKind.PROOF, job_id=job_id, **kw)
    return AttestationLeaf(sign_attestation(att, key, domain), proof_commitment(circuit_id, proof, pub))
