"""iden3 binary container (sections in any order), .r1cs/.wtns/.zkey and snarkjs JSON round trips."""

from __future__ import annotations

import json
import random
import struct

import pytest

from proving.errors import FormatError
from proving.formats import binfile
from proving.formats.r1cs_file import r1cs_bytes, r1cs_from_binfile, read_r1cs, write_r1cs
from proving.formats.snarkjs_json import (
    g1_from_json, g2_from_json, proof_from_json, proof_to_json, public_from_json, read_proof,
    read_verification_key, vk_from_json, vk_to_json, write_proof, write_public, write_verification_key,
    read_public,
)
from proving.field import FQ_MODULUS as Q, FR_MODULUS as R
from proving.formats.wtns_file import parse_wtns, read_wtns, write_wtns, wtns_bytes
from proving.formats.zkey import parse_zkey, read_zkey, write_zkey, zkey_bytes
from tests.proving.protocol_fixtures import mimc, mimc_key, mimc_proof


def _shuffled(data: bytes, magic: str, seed: int) -> bytes:
    f = binfile.parse(data, magic)
    sections = [(i, p) for i, payloads in f.sections.items() for p in payloads]
    random.Random(seed).shuffle(sections)
    return binfile.build(magic, f.version, sections)


def test_sections_in_any_order():
    pk = mimc_key()
    data = zkey_bytes(pk)
    for seed in range(3):
        shuffled = _shuffled(data, "zkey", seed)
        got = parse_zkey(shuffled)
        assert got.vk == pk.vk and got.h_query == pk.h_query and got.coef_value == pk.coef_value
    c = mimc()
    assert parse_wtns(_shuffled(wtns_bytes(c.witness), "wtns", 1)) == c.witness
    got = r1cs_from_binfile(binfile.parse(_shuffled(r1cs_bytes(c.r1cs), "r1cs", 2), "r1cs"))
    assert [(r.a, r.b, r.c) for r in got.constraints] == [(r.a, r.b, r.c) for r in c.r1cs.constraints]


def test_zkey_round_trip_and_encodings(tmp_path):
    pk = mimc_key()
    write_zkey(tmp_path / "k.zkey", pk)
    got = read_zkey(tmp_path / "k.zkey")
    for name in ("n_vars", "n_public", "domain_size", "alpha_g1", "beta_g1", "beta_g2", "delta_g1", "delta_g2", "vk",
                 "coef_matrix", "coef_constraint", "coef_signal", "coef_value", "a_query", "b_g1_query",
                 "b_g2_query", "c_query", "h_query"):
        assert getattr(got, name) == getattr(pk, name), name
    # coefficients are stored as v * R^2 mod r (Montgomery twice), points as x * 2^256 mod q
    f = binfile.read(tmp_path / "k.zkey", "zkey")
    first = f.section(4)[4 + 12 : 4 + 12 + 32]
    assert int.from_bytes(first, "little") == pk.coef_value[0] * pow(2, 512, R) % R
    alpha_x = f.section(2)[4 + 32 + 4 + 32 + 12 : 4 + 32 + 4 + 32 + 12 + 32]
    assert int.from_bytes(alpha_x, "little") == pk.alpha_g1[0] * pow(2, 256, Q) % Q
    # a zkey read from disk writes back byte for byte (section 10 kept)
    assert zkey_bytes(got) == (tmp_path / "k.zkey").read_bytes()


def test_wtns_and_r1cs_round_trip(tmp_path):
    c = mimc()
    write_wtns(tmp_path / "w.wtns", c.witness)
    assert read_wtns(tmp_path / "w.wtns") == c.witness
    write_r1cs(tmp_path / "c.r1cs", c.r1cs)
    got = read_r1cs(tmp_path / "c.r1cs")
    assert (got.n_vars, got.n_public) == (c.r1cs.n_vars, c.r1cs.n_public)
    assert [(r.a, r.b, r.c) for r in got.constraints] == [(r.a, r.b, r.c) for r in c.r1cs.constraints]


def test_container_errors_name_the_problem(tmp_path):
    good = wtns_bytes([1, 2, 3])
    with pytest.raises(FormatError, match="magic"):
        parse_wtns(b"zkey" + good[4:])
    with pytest.raises(FormatError, match="truncated|claims"):
        parse_wtns(good[:-5])
    with pytest.raises(FormatError, match="section 2 is missing"):
        parse_wtns(binfile.build("wtns", 2, [(1, binfile.parse(good, "wtns").section(1))]))
    with pytest.raises(FormatError, match="too short"):
        parse_wtns(b"wtns")
    header = binfile.le(32, 4) + binfile.le(Q, 32) + binfile.le(1, 4)  # the wrong prime
    with pytest.raises(FormatError, match="BN254"):
        parse_wtns(binfile.build("wtns", 2, [(1, header), (2, binfile.le(1, 32))]))
    with pytest.raises(FormatError, match="Groth16"):
        parse_zkey(binfile.build("zkey", 1, [(1, struct.pack("<I", 2))]))


def test_snarkjs_json_shapes_and_round_trip(tmp_path):
    p = mimc_proof()
    obj = proof_to_json(p)
    assert obj["protocol"] == "groth16" and obj["curve"] == "bn128"
    assert obj["pi_a"][2] == "1" and obj["pi_b"][2] == ["1", "0"] and obj["pi_c"][2] == "1"
    assert all(isinstance(v, str) for v in obj["pi_a"])
    assert obj["pi_b"][0] == [str(p.b[0][0]), str(p.b[0][1])]  # Fq2 as (c0, c1)
    write_proof(tmp_path / "proof.json", p)
    assert read_proof(tmp_path / "proof.json") == p
    write_public(tmp_path / "public.json", [mimc().hash])
    assert json.loads((tmp_path / "public.json").read_text()) == [str(mimc().hash)]
    assert read_public(tmp_path / "public.json") == [mimc().hash]
    vk = mimc_key().vk
    write_verification_key(tmp_path / "vk.json", vk, with_alphabeta=False)
    raw = json.loads((tmp_path / "vk.json").read_text())
    assert raw["nPublic"] == 1 and len(raw["IC"]) == 2 and "vk_alphabeta_12" not in raw
    assert read_verification_key(tmp_path / "vk.json") == vk


def test_projective_coordinates_are_normalised():
    z = 5
    x, y = mimc_proof().a
    jac = [str(x * z * z % Q), str(y * z * z * z % Q), str(z)]
    assert g1_from_json("a", jac) == (x, y)
    assert g1_from_json("a", ["0", "1", "0"]) is None
    assert g2_from_json("b", [["0", "0"], ["1", "0"], ["0", "0"]]) is None


@pytest.mark.parametrize(
    ("obj", "match"),
    [({"pi_a": ["1", "2", "1"]}, "missing key"), ({"pi_a": ["1", "2"], "pi_b": [], "pi_c": []}, "list of 3"),
     ({"pi_a": ["x", "2", "1"], "pi_b": [], "pi_c": []}, "decimal"),
     ({"protocol": "plonk"}, "only groth16"), ({"curve": "bls12381"}, "bn128"), ([1], "JSON object")],
)
def test_bad_proof_json(obj, match):
    with pytest.raises(FormatError, match=match):
        proof_from_json(obj)


def test_bad_vk_and_public_json():
    obj = vk_to_json(mimc_key().vk, with_alphabeta=False)
    obj["nPublic"] = 3
    with pytest.raises(FormatError, match="nPublic"):
        vk_from_json(obj)
    with pytest.raises(FormatError, match="negative"):
        public_from_json(["-1"])
    with pytest.raises(FormatError, match="list"):
        public_from_json({"0": "1"})
    with pytest.raises(FormatError, match="field element"):
        public_from_json([str(R)])  # public signals are Fr elements
