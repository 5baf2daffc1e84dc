"""Fuzz targets of the proving file formats: ``.zkey``, ``.wtns``, ``.r1cs`` and snarkjs
``proof.json``, ``verification_key.json``, ``public.json``.

The corpus is one tiny circuit (MiMC-7 with 1 round: 4 constraints, 6 signals, domain 8)
built with the project's own R1CS builder and dev setup, serialised by the project's writers;
the proof is made by the numba prover with fixed blinding, so every input is deterministic.

Consumers: in process, each target parses its input and makes the cheap checks a caller
makes next (a witness against the key or circuit, a public list against the key). The deep
consumers (run isolated) go on to the expensive use: the numba prover on a parsed ``.zkey`` /
``.wtns`` (whose kernels do no bounds checks: issue 14, finding 1), and for a parsed proof,
key or public list the key's structural checks (G2 subgroup included) and the full pairing
verification.
"""

from __future__ import annotations

import json
from functools import cache

from proving.circuits.mimc import MiMCPreimage, preimage_circuit
from proving.formats import binfile
from proving.formats.r1cs_file import r1cs_bytes, r1cs_from_binfile
from proving.formats.snarkjs_json import (
    loads, proof_from_json, proof_to_json, public_from_json, public_to_json, vk_from_json, vk_to_json,
)
from proving.formats.wtns_file import parse_wtns, wtns_bytes
from proving.formats.zkey import parse_zkey, zkey_bytes
from proving.groth16 import prover, prover_ref
from proving.groth16.keys import Proof, ProvingKey
from proving.groth16.points import check_public_inputs, check_verifying_key
from proving.groth16.setup import dev_setup
from proving.groth16.verifier import verify
from proving.r1cs import check_witness
from tests.fuzz.engine import Target, register
from tests.fuzz.mutators import json_mutator, mutate_container

#: MiMC rounds of the fuzz circuit (4 constraints per round).
ROUNDS = 1
PREIMAGE = 12345
SETUP_SEED = 3
#: Fixed blinding of the corpus proof.
R_BLIND, S_BLIND = 11, 13


@cache
def tiny_circuit() -> MiMCPreimage:
    """The fuzz circuit and its witness (no setup: cheap)."""
    return preimage_circuit(PREIMAGE, n_rounds=ROUNDS)


def tiny_witness() -> list[int]:
    """The corpus witness ``[1, h, x, ...]``."""
    witness = tiny_circuit().witness
    assert witness is not None
    return witness


def tiny_hash() -> int:
    """The circuit's public signal ``h = MiMC7(x)``."""
    h = tiny_circuit().hash
    assert h is not None
    return h


@cache
def tiny_key() -> ProvingKey:
    """Dev-setup proving key of :func:`tiny_circuit` (about 1 s)."""
    return dev_setup(tiny_circuit().r1cs, seed=SETUP_SEED)


@cache
def tiny_proof() -> Proof:
    """The numba prover's proof of the corpus witness (fixed r, s)."""
    return prover.prove(tiny_key(), tiny_witness(), r=R_BLIND, s=S_BLIND)


def _json_bytes(obj) -> bytes:
    return json.dumps(obj, indent=1).encode()


def _verify_tiny(vk=None, public=None, proof=None) -> None:
    key = tiny_key()
    vk = key.vk if vk is None else vk
    verify(vk, [tiny_hash()] if public is None else public, tiny_proof() if proof is None else proof)


def _zkey(data: bytes) -> None:
    parse_zkey(data)


def _zkey_prove(data: bytes) -> None:
    """What ``raymarket prove`` does with a zkey: parse, then the numba prover."""
    prover.prove(parse_zkey(data), tiny_witness(), r=R_BLIND, s=S_BLIND)


def _wtns(data: bytes) -> None:
    prover_ref.check_witness(tiny_key(), parse_wtns(data))


def _wtns_prove(data: bytes) -> None:
    prover.prove(tiny_key(), parse_wtns(data), r=R_BLIND, s=S_BLIND)


def _r1cs(data: bytes) -> None:
    check_witness(r1cs_from_binfile(binfile.parse(data, "r1cs")), tiny_witness())


def _proof_json(data: bytes) -> None:
    proof_from_json(loads(data, where="proof.json"))


def _proof_json_verify(data: bytes) -> None:
    _verify_tiny(proof=proof_from_json(loads(data, where="proof.json")))


def _vk_json(data: bytes) -> None:
    vk_from_json(loads(data, where="verification_key.json"))


def _vk_json_verify(data: bytes) -> None:
    vk = vk_from_json(loads(data, where="verification_key.json"))
    check_verifying_key(vk)
    _verify_tiny(vk=vk)


def _public_json(data: bytes) -> None:
    check_public_inputs(tiny_key().vk, public_from_json(loads(data, where="public.json")))


def _public_json_verify(data: bytes) -> None:
    _verify_tiny(public=public_from_json(loads(data, where="public.json")))


ZKEY = register(Target("zkey", lambda: [zkey_bytes(tiny_key())], mutate_container, _zkey, deep_check=_zkey_prove))
WTNS = register(Target("wtns", lambda: [wtns_bytes(tiny_witness())], mutate_container, _wtns,
                       deep_check=_wtns_prove))
R1CS_FILE = register(Target("r1cs", lambda: [r1cs_bytes(tiny_circuit().r1cs)], mutate_container, _r1cs))
PROOF_JSON = register(Target("proof_json", lambda: [_json_bytes(proof_to_json(tiny_proof()))], json_mutator,
                             _proof_json, deep_check=_proof_json_verify))
VK_JSON = register(Target("vk_json", lambda: [_json_bytes(vk_to_json(tiny_key().vk, with_alphabeta=False))],
                          json_mutator, _vk_json, deep_check=_vk_json_verify))
PUBLIC_JSON = register(Target("public_json", lambda: [_json_bytes(public_to_json([tiny_hash()]))],
                              json_mutator, _public_json, deep_check=_public_json_verify))
