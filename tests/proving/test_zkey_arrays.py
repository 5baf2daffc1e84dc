"""The zkey reader keeps the big point sections as the file's Montgomery arrays (MontPoints / MontInts):
they equal the per-point reference decoding, a bad point or coefficient anywhere is still a FormatError
naming section/field/index, and proofs from the array path equal proofs from a key built from plain lists."""

from __future__ import annotations

import dataclasses
import random
import struct

import numpy as np
import pytest

from proving.curve import MontPoints, first_invalid_point, g1_to_affine_array, g2_to_affine_array
from proving.errors import FormatError
from proving.field import FQ, FR, MontInts, first_non_canonical, to_limbs
from proving.formats import binfile
from proving.formats.zkey import _points, parse_zkey, zkey_bytes
from proving.groth16 import prover
from tests.proving.protocol_fixtures import mimc, mimc_key

SECTIONS = {5: ("a_query", False), 6: ("b_g1_query", False), 7: ("b_g2_query", True), 8: ("c_query", False),
            9: ("h_query", False)}


@pytest.fixture(scope="module")
def data() -> bytes:
    return zkey_bytes(mimc_key())


def test_arrays_equal_the_reference_per_point_decoding(data):
    pk = parse_zkey(data)
    f = binfile.parse(data, "zkey")
    for section, (name, g2) in SECTIONS.items():
        got = getattr(pk, name)
        assert isinstance(got, MontPoints) and got.g2 is g2
        ref = _points(f, section, len(got), g2, name)  # the per-point reader (coordinate by coordinate)
        assert got == ref and list(got) == ref and [got[i] for i in range(len(got))] == ref
        assert got == getattr(mimc_key(), name)  # and the in-memory key it was written from
    assert isinstance(pk.coef_value, MontInts) and pk.coef_value == list(mimc_key().coef_value)


def test_round_trip_bytes_identical(data):
    assert zkey_bytes(parse_zkey(data)) == data


def test_prove_from_arrays_equals_prove_from_lists(data):
    pk_arrays = parse_zkey(data)
    listed = {name: list(getattr(pk_arrays, name)) for name, _ in SECTIONS.values()}
    pk_lists = dataclasses.replace(pk_arrays, coef_value=list(pk_arrays.coef_value), cache={}, **listed)
    w = mimc().witness
    r, s = 12345, 67890
    assert prover.prove(pk_arrays, w, r=r, s=s) == prover.prove(pk_lists, w, r=r, s=s)


def _corrupt(data: bytes, section: int, byte_offset: int, value: bytes) -> bytes:
    n, pos = struct.unpack_from("<I", data, 8)[0], 12
    for _ in range(n):
        sid, size = struct.unpack_from("<IQ", data, pos)
        if sid == section:
            at = pos + 12 + byte_offset
            return data[:at] + value + data[at + len(value):]
        pos += 12 + size
    raise KeyError(section)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_a_point_off_the_curve_names_its_index(data, section):
    name, g2 = SECTIONS[section]
    pk = mimc_key()
    pts = getattr(pk, name)
    idx = next(i for i in range(len(pts) - 1, -1, -1) if pts[i] is not None)  # the last finite point
    width = 128 if g2 else 64
    bad = _corrupt(data, section, idx * width, struct.pack("<Q", 5))  # x's low limb changed
    with pytest.raises(FormatError) as info:
        parse_zkey(bad)
    assert info.value.section == section and info.value.field == f"{name}[{idx}]"


@pytest.mark.parametrize("section", [5, 7])
def test_a_coordinate_at_or_above_q_is_refused(data, section):
    name, g2 = SECTIONS[section]
    q_bytes = FQ.modulus.to_bytes(32, "little")
    with pytest.raises(FormatError, match="canonical") as info:
        parse_zkey(_corrupt(data, section, 0, q_bytes))
    assert info.value.field == f"{name}[0]"


def test_a_coefficient_at_or_above_r_is_refused(data):
    # section 4: n (u32), then entries of matrix, constraint, signal (u32 each) and a 32-byte value
    with pytest.raises(FormatError, match="canonical Fr") as info:
        parse_zkey(_corrupt(data, 4, 4 + 12, FR.modulus.to_bytes(32, "little")))
    assert info.value.field == "coef[0].value"


def test_first_invalid_point_random_rows():
    rng = random.Random(7)
    pk = mimc_key()
    g1 = g1_to_affine_array([p for p in pk.a_query])
    g2 = g2_to_affine_array([p for p in pk.b_g2_query])
    assert first_invalid_point(g1, False) == (-1, "") and first_invalid_point(g2, True) == (-1, "")
    for arr, is_g2 in ((g1, False), (g2, True)):
        rows = [i for i in range(arr.shape[0]) if arr[i].any()]
        i = rng.choice(rows)
        broken = arr.copy()
        broken[i, rng.randrange(arr.shape[1])] ^= np.uint64(1 << rng.randrange(60))
        assert first_invalid_point(broken, is_g2)[0] in range(0, i + 1)
        assert first_invalid_point(arr[:0].copy(), is_g2) == (-1, "")


def test_first_non_canonical():
    vals = [0, FR.modulus - 1, FR.modulus, 2**256 - 1]
    assert first_non_canonical(FR, to_limbs(vals)) == 2
    assert first_non_canonical(FR, to_limbs(vals[:2])) == -1
