"""Issue 14, finding 1: every count, index and size of ``.zkey``, ``.wtns``, ``.r1cs`` and the
snarkjs JSON files is checked against the header and the bytes present before anything is
allocated or any kernel runs; violations raise :class:`FormatError` naming section and field.

Before the fix, one u32 changed in section 4 of a valid zkey made ``raymarket prove`` die with
SIGSEGV (the numba ``_qap_abc`` wrote out of bounds), an ``.r1cs`` with ``m_constraints`` 0 or 1
dropped the other constraints (an all-zero witness then satisfied it), and ``n_pub_out`` could
exceed the wire count.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from market.cli.exit_codes import ExitCode
from proving.errors import FormatError, MalformedProof
from proving.field import FQ_MODULUS as Q, FR_MODULUS as R
from proving.formats import binfile
from proving.formats.r1cs_file import r1cs_bytes, r1cs_from_binfile
from proving.formats.snarkjs_json import (
    loads, proof_from_json, proof_to_json, public_from_json, vk_from_json, vk_to_json,
)
from proving.formats.wtns_file import parse_wtns, wtns_bytes
from proving.formats.zkey import parse_zkey, read_verifying_key, zkey_bytes
from proving.groth16.keys import check_proving_key_shape
from proving.r1cs import check_witness
from tests.proving.protocol_fixtures import mimc, mimc_key, mimc_proof

ROOT = Path(__file__).resolve().parents[2]
#: Offsets inside the payloads (see the module docstrings of proving.formats.*).
ZKEY_N_VARS, ZKEY_N_PUBLIC, ZKEY_DOMAIN = 72, 76, 80
COEF_ENTRY, COEF_FIELDS = 44, {"matrix": 0, "constraint": 4, "signal": 8}
R1CS_N_WIRES, R1CS_N_OUT, R1CS_M = 36, 40, 60
WTNS_N = 36


def _section_offset(data: bytes, section_id: int) -> int:
    """Absolute offset of the payload of the (first) section ``section_id``."""
    n, pos = struct.unpack_from("<I", data, 8)[0], 12
    for _ in range(n):
        sid, size = struct.unpack_from("<IQ", data, pos)
        if sid == section_id:
            return pos + 12
        pos += 12 + size
    raise KeyError(section_id)


def _set_u32(data: bytes, section_id: int, offset: int, value: int) -> bytes:
    at = _section_offset(data, section_id) + offset
    return data[:at] + struct.pack("<I", value) + data[at + 4 :]


def _replace_section(data: bytes, magic: str, section_id: int, payload: bytes) -> bytes:
    f = binfile.parse(data, magic)
    parts = [(sid, payload if sid == section_id else p) for sid, ps in f.sections.items() for p in ps]
    return binfile.build(magic, f.version, parts)


def _raises(fn, data: bytes, section, field: str | None = None, match: str | None = None) -> FormatError:
    with pytest.raises(FormatError, match=match) as info:
        fn(data)
    assert info.value.section == section, str(info.value)
    if field is not None:
        assert info.value.field == field, str(info.value)
    return info.value


def _witness() -> list[int]:
    w = mimc().witness
    assert w is not None
    return w


def _hash() -> int:
    h = mimc().hash
    assert h is not None
    return h


def _zkey() -> bytes:
    return zkey_bytes(mimc_key())


# ---------------------------------------------------------------- .zkey ----

@pytest.mark.parametrize("name", sorted(COEF_FIELDS))
@pytest.mark.parametrize("value", ["bound", 2**31, 2**32 - 1])
def test_one_u32_of_section_4_out_of_range_is_a_format_error(name, value):
    pk, data = mimc_key(), _zkey()
    bound = {"matrix": 2, "constraint": pk.domain_size, "signal": pk.n_vars}[name]
    value = bound if value == "bound" else value
    entry = 3
    bad = _set_u32(data, 4, 4 + entry * COEF_ENTRY + COEF_FIELDS[name], value)
    err = _raises(parse_zkey, bad, 4, f"coef[{entry}].{name}")
    assert str(value) in str(err)


def test_raymarket_prove_exits_cleanly_on_the_single_u32_zkey(tmp_path):
    """The issue's reproduction: this zkey made ``raymarket prove`` die with SIGSEGV."""
    bad = _set_u32(_zkey(), 4, 4 + 0 * COEF_ENTRY + COEF_FIELDS["constraint"], 100_000)
    (tmp_path / "bad.zkey").write_bytes(bad)
    (tmp_path / "w.wtns").write_bytes(wtns_bytes(_witness()))
    done = subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", "prove", str(tmp_path / "bad.zkey"),
         str(tmp_path / "w.wtns"), "--proof", str(tmp_path / "p.json"), "--public", str(tmp_path / "pub.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == ExitCode.BAD_INPUT, (done.returncode, done.stderr[-2000:])  # not -11 (SIGSEGV)
    assert "FormatError" in done.stderr and "section 4 coef[0].constraint" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_inconsistent_key_built_in_memory_never_reaches_a_kernel():
    """Defence in depth: the numba prover checks sizes and indices of any key before its kernels
    (run in a child: a regression would be a native crash)."""
    script = (
        "import dataclasses\n"
        "from proving.errors import MalformedProof\n"
        "from proving.groth16 import prover\n"
        "from tests.proving.protocol_fixtures import mimc, mimc_key\n"
        "pk = mimc_key()\n"
        "for field, value in (('coef_constraint', 10**6), ('coef_signal', 10**6), ('coef_matrix', 2)):\n"
        "    bad = dataclasses.replace(pk, **{field: [value] + list(getattr(pk, field))[1:]}, cache={})\n"
        "    try:\n"
        "        prover.prove(bad, mimc().witness)\n"
        "    except MalformedProof as e:\n"
        "        print('rejected', e.field)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.split("\n")[:3] == ["rejected pk.coef_constraint", "rejected pk.coef_signal",
                                           "rejected pk.coef_matrix"]


def test_check_proving_key_shape_names_the_field():
    pk = mimc_key()
    check_proving_key_shape(pk)
    for field, value in (("a_query", pk.a_query[:-1]), ("h_query", pk.h_query + [None]),
                         ("coef_signal", pk.coef_signal[:-1]), ("coef_constraint", [-1] + pk.coef_constraint[1:])):
        bad = type(pk)(**{**{k: getattr(pk, k) for k in pk.__dataclass_fields__ if k != "cache"}, field: value})
        with pytest.raises(MalformedProof, match=f"pk.{field}"):
            check_proving_key_shape(bad)


@pytest.mark.parametrize(
    ("offset", "value", "field"),
    [(ZKEY_N_VARS, 1, "n_vars"),          # n_vars <= n_public
     (ZKEY_N_VARS, 2**32 - 1, "a_query"),  # huge: section 5 cannot hold it (checked before reading)
     (ZKEY_DOMAIN, 24, "domain_size"),    # not a power of two
     (ZKEY_DOMAIN, 1, "domain_size"),
     (ZKEY_DOMAIN, 2**31, "domain_size"),  # above 2^28
     (ZKEY_N_PUBLIC, 2**32 - 1, "n_vars")],
)
def test_zkey_header_sizes_are_checked(offset, value, field):
    bad = _set_u32(_zkey(), 2, offset, value)
    section = 5 if field == "a_query" else 2
    _raises(parse_zkey, bad, section, field)


def test_zkey_counts_must_fill_their_sections():
    data = _zkey()
    _raises(parse_zkey, _set_u32(data, 4, 0, 2**32 - 1), 4, "n_coefficients")
    _raises(parse_zkey, _set_u32(data, 4, 0, len(mimc_key().coef_value) - 1), 4, "n_coefficients")
    f = binfile.parse(data, "zkey")
    _raises(parse_zkey, _replace_section(data, "zkey", 9, f.section(9)[:-64]), 9, "h_query")
    _raises(parse_zkey, _replace_section(data, "zkey", 3, f.section(3) + bytes(64)), 3, "IC")
    _raises(parse_zkey, _replace_section(data, "zkey", 1, f.section(1) + b"\0"), 1, None, "left after")


def test_zkey_points_and_values_are_canonical_and_on_curve():
    data, pk = _zkey(), mimc_key()
    at = _section_offset(data, 5) + 64 * 1  # a_query[1].x
    for raw in (Q, 2**256 - 1):
        bad = data[:at] + raw.to_bytes(32, "little") + data[at + 32 :]
        _raises(parse_zkey, bad, 5, "a_query[1]", "canonical")
    off_curve = data[:at] + (5).to_bytes(32, "little") + data[at + 32 :]
    _raises(parse_zkey, off_curve, 5, "a_query[1]", "not on the curve")
    g2 = _section_offset(data, 7) + 128 * 2
    _raises(parse_zkey, data[:g2] + (7).to_bytes(32, "little") + data[g2 + 32 :], 7, "b_g2_query[2]", "twist")
    value = _section_offset(data, 4) + 4 + 12
    _raises(parse_zkey, data[:value] + R.to_bytes(32, "little") + data[value + 32 :], 4, "coef[0].value")
    assert parse_zkey(data).coef_value == pk.coef_value


def test_zkey_verifying_key_reader_checks_too(tmp_path):
    (tmp_path / "bad.zkey").write_bytes(_set_u32(_zkey(), 2, ZKEY_N_PUBLIC, 2**32 - 2))
    with pytest.raises(FormatError, match="n_vars"):
        read_verifying_key(tmp_path / "bad.zkey")


# ---------------------------------------------------------------- .r1cs ----

def _r1cs() -> bytes:
    return r1cs_bytes(mimc().r1cs)


def _read_r1cs(data: bytes):
    return r1cs_from_binfile(binfile.parse(data, "r1cs"))


@pytest.mark.parametrize("m", [0, 1, 5])
def test_r1cs_m_constraints_must_match_section_2(m):
    """m = 0 or 1 used to drop the other constraints: an all-zero witness then satisfied the circuit."""
    bad = _set_u32(_r1cs(), 1, R1CS_M, m)
    field = "m_constraints" if m == 0 else None
    err = _raises(_read_r1cs, bad, 1 if m == 0 else 2, field)
    assert m == 0 or "left after m_constraints" in str(err)


def test_r1cs_public_counts_must_fit_the_wires():
    n_wires = mimc().r1cs.n_vars
    _raises(_read_r1cs, _set_u32(_r1cs(), 1, R1CS_N_OUT, n_wires + 5), 1, "n_wires")
    _raises(_read_r1cs, _set_u32(_r1cs(), 1, R1CS_N_OUT, n_wires), 1, "n_wires")  # no room for w[0] = 1
    _raises(_read_r1cs, _set_u32(_r1cs(), 1, R1CS_N_WIRES, 2**32 - 1), 3, "n_wires labels")


def test_r1cs_terms_are_checked():
    data = _r1cs()
    # constraint 0: a.n_terms, then (wire u32, coefficient 32 bytes) terms
    _raises(_read_r1cs, _set_u32(data, 2, 0, 2**32 - 1), 2, "constraint[0].a.n_terms")
    _raises(_read_r1cs, _set_u32(data, 2, 4, mimc().r1cs.n_vars), 2, "constraint[0].a[0].wire")
    coeff = _section_offset(data, 2) + 8
    _raises(_read_r1cs, data[:coeff] + R.to_bytes(32, "little") + data[coeff + 32 :], 2,
            "constraint[0].a[0].coefficient")
    _raises(_read_r1cs, _set_u32(data, 1, R1CS_M, 2**32 - 1), 2, "m_constraints")


def test_r1cs_round_trip_still_satisfied():
    check_witness(_read_r1cs(_r1cs()), _witness())


# ---------------------------------------------------------------- .wtns ----

@pytest.mark.parametrize("n", [0, 1, 3, 2**32 - 1])
def test_wtns_count_must_fill_section_2(n):
    data = wtns_bytes(_witness())
    _raises(parse_wtns, _set_u32(data, 1, WTNS_N, n), 1 if n == 0 else 2, "n_witness")


def test_wtns_values_and_n8():
    w = _witness()
    data = wtns_bytes(w)
    _raises(parse_wtns, _set_u32(data, 1, 0, 2**32 - 1), 1, "n8")
    _raises(parse_wtns, _set_u32(data, 1, 0, 0), 1, "n8")
    at = _section_offset(data, 2) + 32 * 2
    _raises(parse_wtns, data[:at] + R.to_bytes(32, "little") + data[at + 32 :], 2, "value[2]")
    _raises(parse_wtns, wtns_bytes([0] + w[1:]), 2, "value[0]")


# ---------------------------------------------------------------- all containers ----

@pytest.mark.parametrize("fmt", ["zkey", "wtns", "r1cs"])
def test_every_truncation_is_a_format_error(fmt):
    data = {"zkey": _zkey, "wtns": lambda: wtns_bytes(_witness()), "r1cs": _r1cs}[fmt]()
    parse = {"zkey": parse_zkey, "wtns": parse_wtns, "r1cs": _read_r1cs}[fmt]
    step = 7 if fmt == "zkey" else 1
    for n in [*range(0, len(data), step), *range(max(0, len(data) - 70), len(data))]:
        with pytest.raises(FormatError):
            parse(data[:n])
    with pytest.raises(FormatError, match="after the last"):
        parse(data + b"\0")


def test_container_header_counts_are_checked_before_use():
    data = wtns_bytes([1, 2, 3])
    with pytest.raises(FormatError, match="cannot fit"):
        parse_wtns(data[:8] + struct.pack("<I", 2**32 - 1) + data[12:])
    with pytest.raises(FormatError, match="claims"):
        parse_wtns(data[:16] + struct.pack("<Q", 2**64 - 1) + data[24:])


@pytest.mark.parametrize(
    ("fmt", "section", "offset"),
    [("zkey", 2, ZKEY_N_VARS), ("zkey", 2, ZKEY_DOMAIN), ("zkey", 4, 0), ("r1cs", 1, R1CS_M), ("r1cs", 2, 0),
     ("r1cs", 1, R1CS_N_WIRES), ("wtns", 1, WTNS_N)],
)
def test_huge_counts_allocate_nothing(fmt, section, offset):
    """A count of 2^32 - 1 is refused from the header and the section size, without allocating
    for it (peak traced memory stays within a small multiple of the file)."""
    data = {"zkey": _zkey, "wtns": lambda: wtns_bytes(_witness()), "r1cs": _r1cs}[fmt]()
    parse = {"zkey": parse_zkey, "wtns": parse_wtns, "r1cs": _read_r1cs}[fmt]
    bad = _set_u32(data, section, offset, 2**32 - 1)
    tracemalloc.start()
    try:
        with pytest.raises(FormatError):
            parse(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * len(data) + 200_000, peak


# ---------------------------------------------------------------- snarkjs JSON ----

def test_json_coordinates_and_publics_must_be_field_elements():
    obj = proof_to_json(mimc_proof())
    obj["pi_a"][0] = str(int(obj["pi_a"][0]) + Q)  # same point mod q, not canonical
    with pytest.raises(FormatError, match=r"pi_a\[0\].*field element"):
        proof_from_json(obj)
    with pytest.raises(FormatError, match=r"public\[0\].*field element"):
        public_from_json([str(_hash() + R)])
    for bad in ("1e3", "+1", " 1", "0x10", "\u0661", "9" * 5000):
        with pytest.raises(FormatError):
            public_from_json([bad])


def test_json_points_must_be_on_their_curves():
    obj = proof_to_json(mimc_proof())
    obj["pi_c"][1] = str((int(obj["pi_c"][1]) + 1) % Q)
    with pytest.raises(FormatError, match="pi_c: G1 point is not on the curve"):
        proof_from_json(obj)
    vk = vk_to_json(mimc_key().vk, with_alphabeta=False)
    vk["vk_gamma_2"][0][1] = "5"
    with pytest.raises(FormatError, match="vk_gamma_2: G2 point is not on the twist"):
        vk_from_json(vk)
    vk = vk_to_json(mimc_key().vk, with_alphabeta=False)
    vk["IC"].append(["1", "3", "1"])
    vk["nPublic"] = len(vk["IC"]) - 1
    with pytest.raises(FormatError, match=r"IC\[2\]"):
        vk_from_json(vk)


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000, '"\\' * 10_000, b"\xff\xfe", "[1" + "0" * 5000 + "]"])
def test_untrusted_json_text_fails_cleanly(text):
    """``py_ecc`` raises the recursion limit to 100,000 at import: before the depth bound,
    ``json.loads('[' * 100_000)`` overflowed the C stack (SIGSEGV) in any process of ours."""
    with pytest.raises(FormatError):
        loads(text)
    assert loads(json.dumps(proof_to_json(mimc_proof()))) == proof_to_json(mimc_proof())
