"""snarkjs Groth16 proving keys (``.zkey``, iden3 container, magic ``"zkey"``, version 1).

Layout (snarkjs ``src/zkey_utils.js``, ``src/zkey_new.js``), all little-endian:

1. header: protocol u32 (1 = Groth16);
2. Groth16 header: ``n8q`` u32, q, ``n8r`` u32, r, ``n_vars`` u32, ``n_public`` u32,
   ``domain_size`` u32, then alpha_1, beta_1, beta_2, gamma_2, delta_1, delta_2;
3. IC: ``n_public + 1`` G1 points;
4. coefficients: ``n`` u32, then ``n`` times (matrix u32, constraint u32, signal u32, value);
5-9. A (G1, n_vars), B1 (G1, n_vars), B2 (G2, n_vars), C (G1, n_vars - n_public - 1),
   H (G1, domain_size) points;
10. MPC contributions (hash + list; kept opaque, written empty by :func:`write_zkey`).

Encodings: a point is its affine coordinates in **Montgomery** form ``x * 2^256 mod q``
(ffjavascript ``toRprLEM``), G2 coordinates as ``x.c0, x.c1, y.c0, y.c1``, infinity as all
zero bytes. A section-4 coefficient ``v`` is stored as ``v * R^2 mod r`` with ``R = 2^256``
(snarkjs multiplies the Montgomery value by ``R2r`` again: Montgomery applied twice;
``readFr2`` in ``zkey_utils.js`` undoes it with ``Rri2``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proving.curve import G1Point, G2Point
from proving.errors import FormatError
from proving.field import FQ_MODULUS, FR_MODULUS
from proving.formats.binfile import BinFile, Reader, build, le, parse
from proving.groth16.keys import ProvingKey, VerifyingKey

Q, R = FQ_MODULUS, FR_MODULUS
N8 = 32
_MONT = pow(2, 256, Q)
_MONT_INV = pow(_MONT, -1, Q)
_COEF_R2 = pow(2, 512, R)
_COEF_R2_INV = pow(_COEF_R2, -1, R)
GROTH16_PROTOCOL_ID = 1
#: ``ProvingKey.cache`` key holding the raw section 10 (MPC contributions) of a zkey that was read,
#: so that :func:`write_zkey` round-trips it byte for byte.
CONTRIBUTIONS_CACHE_KEY = "zkey_section_10"


def _fq(rd: Reader) -> int:
    return rd.bigint(N8) * _MONT_INV % Q


def read_g1(rd: Reader) -> G1Point:
    """One G1 point in Montgomery LE form (all zero = infinity)."""
    x, y = _fq(rd), _fq(rd)
    return None if x == 0 and y == 0 else (x, y)


def read_g2(rd: Reader) -> G2Point:
    """One G2 point in Montgomery LE form, ``x.c0, x.c1, y.c0, y.c1`` (all zero = infinity)."""
    x0, x1, y0, y1 = _fq(rd), _fq(rd), _fq(rd), _fq(rd)
    return None if not (x0 or x1 or y0 or y1) else ((x0, x1), (y0, y1))


def g1_bytes(p: G1Point) -> bytes:
    """Montgomery LE encoding of a G1 point (64 bytes)."""
    if p is None:
        return bytes(2 * N8)
    return b"".join(le(c * _MONT % Q, N8) for c in p)


def g2_bytes(p: G2Point) -> bytes:
    """Montgomery LE encoding of a G2 point (128 bytes)."""
    if p is None:
        return bytes(4 * N8)
    return b"".join(le(c * _MONT % Q, N8) for c in (*p[0], *p[1]))


def _points(f: BinFile, section: int, count: int, reader) -> list:
    rd = Reader(f.section(section), path=f.path, section=section)
    out = [reader(rd) for _ in range(count)]
    if not rd.at_end():
        raise FormatError(f.path, f"section {section} holds more than the {count} points expected")
    return out


def _header(f: BinFile) -> dict:
    rd = Reader(f.section(1), path=f.path, section=1)
    if (protocol := rd.u32()) != GROTH16_PROTOCOL_ID:
        raise FormatError(f.path, f"protocol id {protocol} is not Groth16 (1); PLONK/FFLONK zkeys are not supported")
    rd = Reader(f.section(2), path=f.path, section=2)
    n8q, q = rd.u32(), None
    q = rd.bigint(n8q)
    n8r = rd.u32()
    r = rd.bigint(n8r)
    if (q, r) != (Q, R) or n8q != N8 or n8r != N8:
        raise FormatError(f.path, "curve is not BN254 (bn128); only BN254 zkeys are supported")
    h: dict[str, Any] = {"n_vars": rd.u32(), "n_public": rd.u32(), "domain_size": rd.u32()}
    h["alpha_g1"], h["beta_g1"] = read_g1(rd), read_g1(rd)
    h["beta_g2"], h["gamma_g2"] = read_g2(rd), read_g2(rd)
    h["delta_g1"], h["delta_g2"] = read_g1(rd), read_g2(rd)
    return h


def _coefficients(f: BinFile) -> tuple[list[int], list[int], list[int], list[int]]:
    rd = Reader(f.section(4), path=f.path, section=4)
    out: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])
    for _ in range(rd.u32()):
        out[0].append(rd.u32())
        out[1].append(rd.u32())
        out[2].append(rd.u32())
        out[3].append(rd.bigint(N8) * _COEF_R2_INV % R)
    return out


def read_verifying_key(path: str | Path) -> VerifyingKey:
    """The verification key of a snarkjs Groth16 zkey (what ``zkey export verificationkey`` prints)."""
    f = parse(Path(path).read_bytes(), "zkey", path=str(path))
    h = _header(f)
    return VerifyingKey(h["alpha_g1"], h["beta_g2"], h["gamma_g2"], h["delta_g2"],
                        tuple(_points(f, 3, h["n_public"] + 1, read_g1)))


def parse_zkey(data: bytes, *, path: str = "<bytes>") -> ProvingKey:
    """A :class:`ProvingKey` from zkey bytes (see the module docstring for the encodings).

    Raises:
        FormatError: wrong magic/protocol/curve, missing or truncated sections.
    """
    f = parse(data, "zkey", path=path)
    h = _header(f)
    n_vars, n_pub = h["n_vars"], h["n_public"]
    vk = VerifyingKey(h["alpha_g1"], h["beta_g2"], h["gamma_g2"], h["delta_g2"], tuple(_points(f, 3, n_pub + 1, read_g1)))
    matrix, constraint, signal, value = _coefficients(f)
    pk = ProvingKey(
        n_vars=n_vars, n_public=n_pub, domain_size=h["domain_size"],
        alpha_g1=h["alpha_g1"], beta_g1=h["beta_g1"], beta_g2=h["beta_g2"],
        delta_g1=h["delta_g1"], delta_g2=h["delta_g2"], vk=vk,
        coef_matrix=matrix, coef_constraint=constraint, coef_signal=signal, coef_value=value,
        a_query=_points(f, 5, n_vars, read_g1),
        b_g1_query=_points(f, 6, n_vars, read_g1),
        b_g2_query=_points(f, 7, n_vars, read_g2),
        c_query=_points(f, 8, n_vars - n_pub - 1, read_g1),
        h_query=_points(f, 9, h["domain_size"], read_g1),
    )
    if f.sections.get(10):
        pk.cache[CONTRIBUTIONS_CACHE_KEY] = f.sections[10][0]
    return pk


def read_zkey(path: str | Path) -> ProvingKey:
    """Read a snarkjs Groth16 ``.zkey`` into a :class:`ProvingKey` (sections in any order).

    Raises:
        FormatError: see :func:`parse_zkey`.
    """
    return parse_zkey(Path(path).read_bytes(), path=str(path))


def zkey_bytes(pk: ProvingKey) -> bytes:
    """Serialise a :class:`ProvingKey` as a snarkjs-readable Groth16 zkey (sections 1-10, in
    snarkjs's order; section 10 is the one read with the key, else an empty contribution
    list with a zero hash)."""
    header = (le(N8, 4) + le(Q, N8) + le(N8, 4) + le(R, N8)
              + le(pk.n_vars, 4) + le(pk.n_public, 4) + le(pk.domain_size, 4)
              + g1_bytes(pk.alpha_g1) + g1_bytes(pk.beta_g1) + g2_bytes(pk.beta_g2)
              + g2_bytes(pk.vk.gamma_g2) + g1_bytes(pk.delta_g1) + g2_bytes(pk.delta_g2))
    coefs = bytearray(le(len(pk.coef_value), 4))
    for m, c, s, v in zip(pk.coef_matrix, pk.coef_constraint, pk.coef_signal, pk.coef_value):
        coefs += le(m, 4) + le(c, 4) + le(s, 4) + le(v * _COEF_R2 % R, N8)
    return build("zkey", 1, [
        (1, le(GROTH16_PROTOCOL_ID, 4)),
        (2, header),
        (3, b"".join(map(g1_bytes, pk.vk.ic))),
        (4, bytes(coefs)),
        (5, b"".join(map(g1_bytes, pk.a_query))),
        (6, b"".join(map(g1_bytes, pk.b_g1_query))),
        (7, b"".join(map(g2_bytes, pk.b_g2_query))),
        (8, b"".join(map(g1_bytes, pk.c_query))),
        (9, b"".join(map(g1_bytes, pk.h_query))),
        (10, pk.cache.get(CONTRIBUTIONS_CACHE_KEY, bytes(64) + le(0, 4))),
    ])


def write_zkey(path: str | Path, pk: ProvingKey) -> None:
    """Write a :class:`ProvingKey` (e.g. from :func:`proving.groth16.setup.dev_setup`) as a zkey
    that ``snarkjs groth16 prove`` and ``snarkjs zkey export verificationkey`` accept."""
    Path(path).write_bytes(zkey_bytes(pk))
