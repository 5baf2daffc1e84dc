"""Fixtures of the circuit tests: two circom circuits the project has never seen, compiled here with circom2, their
zkeys from snarkjs (a fresh 2^PTAU_POWER powers of tau, one contribution each), a witness of each (snarkjs
``wtns calculate``) and the exported verification keys."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.proving.protocol_fixtures import npm_tool, powers_of_tau, run

CIRCOM = Path(__file__).parent / "circom"


@dataclass(frozen=True)
class Built:
    """One compiled circuit: ``zkey``, ``wasm``, ``input`` (input.json), ``witness`` (.wtns), ``vk`` (snarkjs
    verification_key.json), the work dir."""

    name: str
    wd: Path
    zkey: Path
    wasm: Path
    input: Path
    witness: Path
    vk: Path


def build(name: str, inputs: dict, wd: Path) -> Built:
    """Compile ``circom/<name>.circom`` and set it up with snarkjs in ``wd``."""
    circom2, snarkjs = npm_tool("circom2"), npm_tool("snarkjs")
    shutil.copy(CIRCOM / f"{name}.circom", wd)
    run([circom2, f"{name}.circom", "--r1cs", "--wasm", "-o", "."], wd)
    (wd / "input.json").write_text(json.dumps(inputs))
    wasm = wd / f"{name}_js" / f"{name}.wasm"
    run([snarkjs, "wtns", "calculate", str(wasm), "input.json", "witness.wtns"], wd)
    run([snarkjs, "groth16", "setup", f"{name}.r1cs", str(powers_of_tau()), "c0.zkey"], wd)
    run([snarkjs, "zkey", "contribute", "c0.zkey", f"{name}_final.zkey", "--name=k", f"-e=entropy {name}"], wd)
    run([snarkjs, "zkey", "export", "verificationkey", f"{name}_final.zkey", "snarkjs_vk.json"], wd)
    return Built(name, wd, wd / f"{name}_final.zkey", wasm, wd / "input.json", wd / "witness.wtns",
                 wd / "snarkjs_vk.json")


@pytest.fixture(scope="session")
def merkle(tmp_path_factory) -> Built:
    """merkle4.circom (public: root, salt)."""
    return build("merkle4", {"salt": 11, "leaves": [2, 3, 5, 7]}, tmp_path_factory.mktemp("merkle4"))


@pytest.fixture(scope="session")
def sumsq(tmp_path_factory) -> Built:
    """sumsq.circom (public: c = a^2 + b^2 + k, k)."""
    return build("sumsq", {"a": 3, "b": 4, "k": 10}, tmp_path_factory.mktemp("sumsq"))
