"""The MiMC-7 preimage circuit: constants and hash equal circomlib's, the witness satisfies it."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from proving.circuits.mimc import MIMC7_FULL_ROUNDS, mimc7, preimage_circuit, round_constants
from proving.errors import ConstraintNotSatisfied
from proving.field import FR_MODULUS as R
from proving.r1cs import check_witness
from tests.proving.protocol_fixtures import npm_tool, run


def _circomlib_mimc_file():
    from contracts.tools import npm_modules_dir

    path = npm_modules_dir() / "circomlib" / "circuits" / "mimc.circom"
    if not path.exists():
        pytest.skip(f"circomlib not installed at {path}")
    return path


def test_round_constants_equal_circomlib():
    text = _circomlib_mimc_file().read_text()
    block = text[text.index("var c[91]") : text.index("];")]
    circomlib = [int(v) for v in re.findall(r"\d{2,}|\b0\b", block.split("=", 1)[1])]
    assert len(circomlib) == MIMC7_FULL_ROUNDS
    assert list(round_constants(MIMC7_FULL_ROUNDS)) == circomlib


def test_mimc7_equals_circomlib_circuit_compiled_by_circom2(tmp_path):
    """circomlib's MiMC7(91) compiled by circom2, witness by snarkjs: same output as ours."""
    circom2, snarkjs = npm_tool("circom2"), npm_tool("snarkjs")
    shutil.copy(_circomlib_mimc_file(), tmp_path / "mimc.circom")
    (tmp_path / "main.circom").write_text(
        'pragma circom 2.0.0;\ninclude "mimc.circom";\ncomponent main = MiMC7(91);\n')
    run([circom2, "main.circom", "--wasm", "-o", "."], tmp_path)
    x, k = 123456789, 987654321
    (tmp_path / "input.json").write_text(json.dumps({"x_in": str(x), "k": str(k)}))
    run([snarkjs, "wtns", "calculate", "main_js/main.wasm", "input.json", "w.wtns"], tmp_path)
    from proving.formats.wtns_file import read_wtns

    assert read_wtns(tmp_path / "w.wtns")[1] == mimc7(x, k, 91)


@pytest.mark.parametrize("n_rounds", [1, 2, 8])
def test_preimage_circuit_witness_satisfies(n_rounds):
    c = preimage_circuit(42, n_rounds=n_rounds)
    assert c.r1cs.n_constraints == 4 * n_rounds and c.r1cs.n_public == 1
    assert c.witness[1] == c.hash == mimc7(42, 0, n_rounds)
    assert c.witness[2] == 42
    check_witness(c.r1cs, c.witness)


def test_wrong_preimage_fails_at_the_output_constraint():
    """A witness computed for another preimage but claiming the original hash breaks only the output."""
    honest, other = preimage_circuit(42, n_rounds=4), preimage_circuit(43, n_rounds=4)
    forged = list(other.witness)
    forged[1] = honest.hash
    with pytest.raises(ConstraintNotSatisfied) as e:
        check_witness(honest.r1cs, forged)
    assert e.value.index == 15 and e.value.name == "round3.out"


def test_constraints_do_not_depend_on_the_witness():
    assert preimage_circuit(None, n_rounds=3).r1cs == preimage_circuit(5, n_rounds=3).r1cs
    assert preimage_circuit(None, n_rounds=3).witness is None


def test_bad_round_count():
    with pytest.raises(ValueError, match="n_rounds"):
        round_constants(0)
    assert all(0 <= c < R for c in round_constants(5))
