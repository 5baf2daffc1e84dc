"""Shared, cached inputs of the Groth16 protocol tests (dev setups, proofs, a snarkjs build).

Everything is built at most once per test process (``functools.cache``); the snarkjs build
runs the REAL npm tools (circom2, snarkjs) in a temporary directory removed at exit.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from py_ecc import optimized_bn128 as bn
from py_ecc.fields import optimized_bn128_FQ2 as FQ2

from proving.circuits.mimc import MiMCPreimage, preimage_circuit
from proving.field import FQ_MODULUS as Q, FR_MODULUS as R
from proving.groth16.keys import Proof, ProvingKey
from proving.groth16.setup import dev_setup

#: MiMC rounds used by the tests: 16 constraints, domain 32; a py_ecc proof takes ~1 s.
TEST_ROUNDS = 4
#: Power of the test powers-of-tau (2^6 points): enough for the small circom fixtures and
#: cheap to prepare (2^10 takes minutes on a loaded 2-core machine).
PTAU_POWER = 6
CIRCUITS = Path(__file__).parent / "circuits"


@cache
def mimc(x: int = 12345, n_rounds: int = TEST_ROUNDS) -> MiMCPreimage:
    """The MiMC preimage circuit with witness for preimage ``x``."""
    return preimage_circuit(x, n_rounds=n_rounds)


@cache
def mimc_key(n_rounds: int = TEST_ROUNDS, seed: int = 7) -> ProvingKey:
    """A dev-setup key for the MiMC circuit (reproducible)."""
    return dev_setup(mimc(n_rounds=n_rounds).r1cs, seed=seed)


@cache
def mimc_proof(x: int = 12345, n_rounds: int = TEST_ROUNDS) -> Proof:
    """A reference-prover proof of knowledge of ``x`` under :func:`mimc_key` (fixed r, s)."""
    from proving.groth16 import prover_ref

    return prover_ref.prove(mimc_key(n_rounds), mimc(x, n_rounds).witness, r=11 + x, s=13 + x)


def fq2_sqrt(a: FQ2) -> FQ2 | None:
    """Square root in Fq2 for q = 3 mod 4 (Adj, Rodriguez-Henriquez 2012, Algorithm 9)."""
    a1 = a ** ((Q - 3) // 4)
    alpha = a1 * a1 * a
    x0 = a1 * a
    if alpha == FQ2([Q - 1, 0]):
        x = FQ2([0, 1]) * x0
    else:
        x = (FQ2.one() + alpha) ** ((Q - 1) // 2) * x0
    return x if x * x == a else None


def g2_point_outside_subgroup():
    """A point on the G2 twist ``y^2 = x^3 + 3/(9+u)`` that is not in the order-r subgroup."""
    for i in range(1, 100):
        x = FQ2([i, 1])
        y = fq2_sqrt(x**3 + bn.b2)
        if y is not None:
            point = (x, y, FQ2.one())
            if not bn.is_inf(bn.multiply(point, R)):
                return ((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1])))
    raise AssertionError("no twist point found")


def npm_tool(name: str) -> str:
    """Path of an npm tool, or skip the test with the install hint when it is missing."""
    from contracts.tools import ToolNotFound, npm_bin

    try:
        return npm_bin(name)
    except ToolNotFound as e:
        pytest.skip(str(e))


def run(cmd: list[str], cwd: Path, timeout_s: float = 300) -> subprocess.CompletedProcess:
    """Run a tool, failing the test with its output when it exits non-zero."""
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


@dataclass(frozen=True)
class SnarkjsBuild:
    """Files of one circom circuit built with the real tools: ``r1cs``, ``wasm``, ``wtns``,
    ``zkey`` (after one contribution), ``vk_json`` (``zkey export verificationkey``),
    ``proof_json``/``public_json`` (``snarkjs groth16 prove``), the ``ptau`` and the workdir."""

    workdir: Path
    ptau: Path
    r1cs: Path
    wasm: Path
    wtns: Path
    zkey: Path
    vk_json: Path
    proof_json: Path
    public_json: Path


@cache
def _workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="proving-interop-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@cache
def powers_of_tau() -> Path:
    """A fresh 2^PTAU_POWER powers-of-tau, one contribution, prepared for phase 2."""
    snarkjs, wd = npm_tool("snarkjs"), _workdir()
    run([snarkjs, "powersoftau", "new", "bn128", str(PTAU_POWER), "pot0.ptau"], wd)
    run([snarkjs, "powersoftau", "contribute", "pot0.ptau", "pot1.ptau", "--name=test", "-e=test entropy"], wd)
    run([snarkjs, "powersoftau", "prepare", "phase2", "pot1.ptau", "pot_final.ptau"], wd)
    return wd / "pot_final.ptau"


@cache
def snarkjs_build(circuit: str = "mul_chain", inputs_json: str = '{"x": 3, "a": 5, "b": 7}') -> SnarkjsBuild:
    """Compile ``circuits/<circuit>.circom`` with circom2 and set it up / prove it with snarkjs."""
    circom2, snarkjs = npm_tool("circom2"), npm_tool("snarkjs")
    ptau, wd = powers_of_tau(), _workdir() / circuit
    wd.mkdir(exist_ok=True)
    shutil.copy(CIRCUITS / f"{circuit}.circom", wd)
    run([circom2, f"{circuit}.circom", "--r1cs", "--wasm", "-o", "."], wd)
    (wd / "input.json").write_text(inputs_json)
    wasm = wd / f"{circuit}_js" / f"{circuit}.wasm"
    run([snarkjs, "wtns", "calculate", str(wasm), "input.json", "witness.wtns"], wd)
    run([snarkjs, "groth16", "setup", f"{circuit}.r1cs", str(ptau), "c0.zkey"], wd)
    run([snarkjs, "zkey", "contribute", "c0.zkey", "circuit.zkey", "--name=test", "-e=more entropy"], wd)
    run([snarkjs, "zkey", "export", "verificationkey", "circuit.zkey", "verification_key.json"], wd)
    run([snarkjs, "groth16", "prove", "circuit.zkey", "witness.wtns", "proof.json", "public.json"], wd)
    return SnarkjsBuild(wd, ptau, wd / f"{circuit}.r1cs", wasm, wd / "witness.wtns", wd / "circuit.zkey",
                        wd / "verification_key.json", wd / "proof.json", wd / "public.json")


def snarkjs_verify(vk_json: Path, public_json: Path, proof_json: Path) -> bool:
    """``snarkjs groth16 verify``: True when it prints OK and exits 0."""
    done = subprocess.run([npm_tool("snarkjs"), "groth16", "verify", str(vk_json), str(public_json), str(proof_json)],
                          capture_output=True, text=True, timeout=120, check=False)
    return done.returncode == 0 and "OK" in done.stdout


def load_json(path: Path):
    """Parsed JSON of a file."""
    return json.loads(Path(path).read_text())
