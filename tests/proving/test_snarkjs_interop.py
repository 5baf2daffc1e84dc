"""Interop with the REAL npm tools: circom2 compiles, snarkjs sets up, computes witnesses, proves
and verifies; our prover's proofs pass `snarkjs groth16 verify`, snarkjs proofs pass ours, and
tampering is rejected by both."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from py_ecc import optimized_bn128 as bn
from typer.testing import CliRunner

from proving.backends import get_backend
from market.cli.exit_codes import ExitCode as Exit
from market.cli.prove import app
from proving.errors import BackendUnavailable, PairingCheckFailed
from proving.formats.r1cs_file import read_r1cs
from proving.formats.snarkjs_json import (
    read_proof, read_public, read_verification_key, vk_to_json, write_proof, write_public, write_verification_key,
)
from proving.field import FR_MODULUS as R
from proving.formats.wtns_file import read_wtns
from proving.formats.zkey import read_verifying_key, read_zkey, write_zkey
from proving.groth16 import prover_ref
from proving.groth16.points import from_pyecc_g1, to_pyecc_g1
from proving.groth16.setup import dev_setup
from proving.groth16.verifier import verify
from proving.r1cs import check_witness
from tests.proving.protocol_fixtures import load_json, npm_tool, run, snarkjs_build, snarkjs_verify


@pytest.fixture(scope="module")
def build():
    return snarkjs_build()


def _tampered(proof):
    return dataclasses.replace(proof, c=from_pyecc_g1(bn.double(to_pyecc_g1(proof.c))))


def test_circom_files_read_and_witness_satisfies(build):
    r1cs, w = read_r1cs(build.r1cs), read_wtns(build.wtns)
    assert (r1cs.n_public, r1cs.n_constraints) == (2, 4)
    assert w[1:3] == [3**3 + 5 * 3 + 7, 7] == read_public(build.public_json)
    check_witness(r1cs, w)


def test_our_zkey_read_equals_snarkjs_export(build):
    exported = load_json(build.vk_json)
    assert read_zkey(build.zkey).vk == read_verification_key(build.vk_json) == read_verifying_key(build.zkey)
    assert vk_to_json(read_verifying_key(build.zkey)) == exported  # byte-identical incl. vk_alphabeta_12


def test_our_proof_accepted_by_snarkjs_and_tampering_rejected(build, tmp_path):
    pk, w = read_zkey(build.zkey), read_wtns(build.wtns)
    proof = get_backend("numba").prove(pk, w)
    assert prover_ref.prove(pk, w, r=5, s=9) == get_backend("numba")._module.prove(pk, w, r=5, s=9)
    write_proof(tmp_path / "proof.json", proof)
    write_public(tmp_path / "public.json", w[1:3])
    assert snarkjs_verify(build.vk_json, tmp_path / "public.json", tmp_path / "proof.json")
    write_proof(tmp_path / "bad_proof.json", _tampered(proof))
    assert not snarkjs_verify(build.vk_json, tmp_path / "public.json", tmp_path / "bad_proof.json")
    write_public(tmp_path / "bad_public.json", [w[1], w[2] + 1])
    assert not snarkjs_verify(build.vk_json, tmp_path / "bad_public.json", tmp_path / "proof.json")


def test_snarkjs_proof_accepted_by_us_and_tampering_rejected(build):
    vk, proof, public = read_verification_key(build.vk_json), read_proof(build.proof_json), read_public(build.public_json)
    verify(vk, public, proof)
    with pytest.raises(PairingCheckFailed):
        verify(vk, public, _tampered(proof))
    with pytest.raises(PairingCheckFailed):
        verify(vk, [public[0], (public[1] + 1) % R], proof)


def test_dev_setup_zkey_works_with_snarkjs(build, tmp_path):
    """Our dev setup of the circom R1CS, written as a zkey: snarkjs exports the same vk and its
    proofs verify under both verifiers."""
    snarkjs = npm_tool("snarkjs")
    pk = dev_setup(read_r1cs(build.r1cs), seed=3)
    write_zkey(tmp_path / "dev.zkey", pk)
    run([snarkjs, "zkey", "export", "verificationkey", "dev.zkey", "vk.json"], tmp_path)
    assert load_json(tmp_path / "vk.json") == vk_to_json(pk.vk)
    shutil.copy(build.wtns, tmp_path / "w.wtns")
    run([snarkjs, "groth16", "prove", "dev.zkey", "w.wtns", "proof.json", "public.json"], tmp_path)
    verify(pk.vk, read_public(tmp_path / "public.json"), read_proof(tmp_path / "proof.json"))
    write_verification_key(tmp_path / "ours.json", pk.vk, with_alphabeta=False)
    assert snarkjs_verify(tmp_path / "ours.json", tmp_path / "public.json", tmp_path / "proof.json")


def test_groth16py_backend_proof_verifies(build):
    try:
        backend = get_backend("groth16py")
    except BackendUnavailable as e:  # an optional extra
        pytest.skip(str(e))
    vk = read_verification_key(build.vk_json)
    w = read_wtns(build.wtns)
    verify(vk, w[1:3], backend.prove_files(build.zkey, build.wtns))
    verify(vk, w[1:3], backend.prove(read_zkey(build.zkey), w))


def test_cli_prove_verify_batch_and_export(build, tmp_path):
    cli = CliRunner()
    res = cli.invoke(app, ["prove", str(build.zkey), str(build.wtns), "--proof", str(tmp_path / "proof.json"),
                           "--public", str(tmp_path / "public.json")])
    assert res.exit_code == 0, res.output
    res = cli.invoke(app, ["verify", str(build.vk_json), str(tmp_path / "public.json"), str(tmp_path / "proof.json")])
    assert res.exit_code == Exit.OK and res.stdout.strip() == "OK"
    (tmp_path / "bad_public.json").write_text(json.dumps(["1", "7"]))
    res = cli.invoke(app, ["verify", str(build.vk_json), str(tmp_path / "bad_public.json"), str(tmp_path / "proof.json"),
                           "--json"])
    assert res.exit_code == Exit.CHECK_FAILED
    assert json.loads(res.stdout) == {"valid": False, "error": "PairingCheckFailed",
                                      "reason": "pairing check failed: proof invalid for this key and public inputs"}
    res = cli.invoke(app, ["verify", str(build.vk_json), str(tmp_path / "nope.json"), str(tmp_path / "proof.json")])
    assert res.exit_code == Exit.BAD_INPUT
    bad_vk = load_json(build.vk_json)
    bad_vk["vk_delta_2"][1][0] = "5"  # off the twist
    (tmp_path / "bad_vk.json").write_text(json.dumps(bad_vk))
    res = cli.invoke(app, ["verify", str(tmp_path / "bad_vk.json"), str(build.public_json), str(build.proof_json)])
    assert res.exit_code == Exit.BAD_INPUT and "vk_delta_2: G2 point is not on the twist" in res.output
    # a batch directory: two pairs of files and one subdirectory, the second pair bad
    batch = tmp_path / "batch"
    (batch / "sub").mkdir(parents=True)
    for name in ("a", "b"):
        shutil.copy(tmp_path / "proof.json", batch / f"proof_{name}.json")
        shutil.copy(build.public_json, batch / f"public_{name}.json")
    shutil.copy(tmp_path / "bad_public.json", batch / "public_b.json")
    shutil.copy(build.proof_json, batch / "sub" / "proof.json")
    shutil.copy(build.public_json, batch / "sub" / "public.json")
    shutil.copy(build.vk_json, batch / "verification_key.json")
    res = cli.invoke(app, ["verify", "--batch", str(batch), "--json"])
    assert res.exit_code == Exit.CHECK_FAILED, res.output
    out = json.loads(res.stdout)
    assert out["count"] == 3 and [b["name"] for b in out["bad"]] == ["b"]
    (batch / "public_b.json").write_text((build.public_json).read_text())
    res = cli.invoke(app, ["verify", "--batch", str(batch)])
    assert res.exit_code == Exit.OK and res.stdout.strip() == "OK (3 proofs)"
    res = cli.invoke(app, ["export-verifier", str(build.vk_json), str(tmp_path / "Verifier.sol")])
    assert res.exit_code == 0
    assert "function verify(uint256[8] calldata proof, uint256[] calldata pubSignals)" in (
        tmp_path / "Verifier.sol").read_text()


def test_cli_unknown_backend(build, tmp_path):
    res = CliRunner().invoke(app, ["prove", str(build.zkey), str(build.wtns), "--backend", "gpu",
                                   "--proof", str(tmp_path / "p.json"), "--public", str(tmp_path / "x.json")])
    assert res.exit_code == Exit.BAD_INPUT and "unknown prover backend" in res.output
