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

The big point sections (5-9) are kept as :class:`proving.curve.MontPoints` (the file's Montgomery limb
arrays, checked in one compiled pass) and the coefficients as :class:`proving.field.MontInts`: reading a
key does no per-point Python work, and the numba prover uses those arrays as they are.

Encodings: a point is its affine coordinates in **Montgomery** form ``x * 2^256 mod q``
(ffjavascript ``toRprLEM``), G2 coordinates as ``x.c0, x.c1, y.c0, y.c1``, infinity as all
zero bytes. A section-4 coefficient ``v`` is stored as ``v * R^2 mod r`` with ``R = 2^256``
(snarkjs multiplies the Montgomery value by ``R2r`` again: Montgomery applied twice;
``readFr2`` in ``zkey_utils.js`` undoes it with ``Rri2``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from proving.curve import G1Point, G2Point, MontPoints, first_invalid_point, g1_on_curve, g2_on_curve
from proving.errors import FormatError
from proving.field import FQ_MODULUS, FR, FR_MODULUS, MontInts, first_non_canonical, from_mont_limbs
from proving.formats.binfile import BinFile, Reader, build, le, parse
from proving.groth16.keys import ProvingKey, VerifyingKey
from proving.ntt import FR_TWO_ADICITY

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
#: One section-4 entry: matrix, constraint, signal (u32 each), value (4 little-endian u64 limbs).
_COEF_DTYPE = np.dtype([("matrix", "<u4"), ("constraint", "<u4"), ("signal", "<u4"), ("value", "<u8", (4,))])


def _fq(rd: Reader, field: str, index: int | None) -> int:
    raw = rd.bigint(N8)
    if raw >= Q:
        where = field if index is None else f"{field}[{index}]"
        raise rd.error(where, "coordinate is not a canonical Montgomery Fq encoding (>= q)")
    return raw * _MONT_INV % Q


def read_g1(rd: Reader, field: str = "g1", index: int | None = None) -> G1Point:
    """One G1 point in Montgomery LE form (all zero = infinity).

    Raises:
        FormatError: a coordinate ``>= q`` or a point off ``y^2 = x^3 + 3``, naming ``field[index]``.
    """
    x, y = _fq(rd, field, index), _fq(rd, field, index)
    if x == 0 and y == 0:
        return None
    if not g1_on_curve(x, y):
        raise rd.error(field if index is None else f"{field}[{index}]", "G1 point is not on the curve")
    return (x, y)


def read_g2(rd: Reader, field: str = "g2", index: int | None = None) -> G2Point:
    """One G2 point in Montgomery LE form, ``x.c0, x.c1, y.c0, y.c1`` (all zero = infinity).

    Raises:
        FormatError: a coordinate ``>= q`` or a point off the twist, naming ``field[index]``.
    """
    x0, x1, y0, y1 = (_fq(rd, field, index) for _ in range(4))
    if not (x0 or x1 or y0 or y1):
        return None
    if not g2_on_curve((x0, x1), (y0, y1)):
        raise rd.error(field if index is None else f"{field}[{index}]", "G2 point is not on the twist curve")
    return ((x0, x1), (y0, y1))


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


def _points(f: BinFile, section: int, count: int, g2: bool, field: str) -> list:
    """``count`` points filling section ``section`` exactly (size checked before any is read)."""
    rd = Reader(f.section(section), path=f.path, section=section)
    rd.expect(count, 4 * N8 if g2 else 2 * N8, field, exact=True)
    reader = read_g2 if g2 else read_g1
    return [reader(rd, field, i) for i in range(count)]


def _point_array(f: BinFile, section: int, count: int, g2: bool, field: str) -> MontPoints:
    """``count`` points filling section ``section`` exactly, kept in the file's own Montgomery layout (no
    per-point conversion: the numba prover takes the array as it is); every coordinate ``< q`` and every
    point on its curve, checked in one compiled pass (:func:`proving.curve.first_invalid_point`).

    Raises:
        FormatError: a size that does not fill the section, or ``field[i]`` not canonical / not on the curve.
    """
    width = 16 if g2 else 8
    rd = Reader(f.section(section), path=f.path, section=section)
    rd.expect(count, width * 8, field, exact=True)
    arr = np.frombuffer(rd.data, dtype="<u8", count=count * width).reshape(count, width).astype(np.uint64)
    bad, why = first_invalid_point(arr, g2)
    if bad >= 0:
        raise rd.error(f"{field}[{bad}]", why)
    return MontPoints(arr, g2)


def _check_sizes(rd: Reader, n_vars: int, n_public: int, domain_size: int) -> None:
    if n_vars < n_public + 1:
        raise rd.error("n_vars", f"{n_vars} signals cannot hold the constant and n_public = {n_public} publics")
    if domain_size < 2 or domain_size & (domain_size - 1) or domain_size > 1 << FR_TWO_ADICITY:
        raise rd.error("domain_size", f"{domain_size} is not a power of two in [2, 2^{FR_TWO_ADICITY}]")
    if domain_size <= n_public:
        raise rd.error("domain_size", f"{domain_size} cannot hold the n_public + 1 = {n_public + 1} input rows")


def _header(f: BinFile) -> dict:
    """Sections 1 and 2: protocol, curve, sizes (checked against each other) and the key points.

    Raises:
        FormatError: not Groth16, not BN254, inconsistent sizes, bad points, wrong section sizes.
    """
    rd = Reader(f.section(1), path=f.path, section=1)
    if (protocol := rd.u32()) != GROTH16_PROTOCOL_ID:
        raise FormatError(f.path, f"protocol id {protocol} is not Groth16 (1); PLONK/FFLONK zkeys are not supported")
    rd.end("the protocol id")
    rd = Reader(f.section(2), path=f.path, section=2)
    for name, modulus in (("n8q", Q), ("n8r", R)):
        if (n8 := rd.u32()) != N8 or rd.bigint(N8) != modulus:
            raise rd.error(name, f"curve is not BN254 (bn128; n8 = {n8}); only BN254 zkeys are supported")
    h: dict[str, Any] = {"n_vars": rd.u32(), "n_public": rd.u32(), "domain_size": rd.u32()}
    _check_sizes(rd, h["n_vars"], h["n_public"], h["domain_size"])
    rd.expect(1, 3 * 2 * N8 + 3 * 4 * N8, "points", exact=True)
    h["alpha_g1"], h["beta_g1"] = read_g1(rd, "alpha_1"), read_g1(rd, "beta_1")
    h["beta_g2"], h["gamma_g2"] = read_g2(rd, "beta_2"), read_g2(rd, "gamma_2")
    h["delta_g1"], h["delta_g2"] = read_g1(rd, "delta_1"), read_g2(rd, "delta_2")
    return h


def _coefficients(f: BinFile, n_vars: int, domain_size: int) -> tuple[list[int], list[int], list[int], MontInts]:
    """Section 4: every entry's matrix (0 = A, 1 = B), constraint (< domain_size) and signal
    (< n_vars) index and its value (< r) are checked before the key is built.

    Raises:
        FormatError: a count that does not fill the section, or an index or value out of range.
    """
    rd = Reader(f.section(4), path=f.path, section=4)
    n = rd.expect(rd.u32(), _COEF_DTYPE.itemsize, "n_coefficients", exact=True)
    arr = np.frombuffer(rd.data, dtype=_COEF_DTYPE, count=n, offset=4)
    for name, bound, what in (("matrix", 2, "2 (A, B)"), ("constraint", domain_size, f"domain_size {domain_size}"),
                              ("signal", n_vars, f"n_vars {n_vars}")):
        bad = np.flatnonzero(arr[name] >= bound)
        if bad.size:
            i = int(bad[0])
            raise rd.error(f"coef[{i}].{name}", f"{int(arr[name][i])} is out of range (must be < {what})")
    raw = np.ascontiguousarray(arr["value"], dtype=np.uint64)
    if (first := first_non_canonical(FR, raw)) >= 0:
        raise rd.error(f"coef[{first}].value", "not a canonical Fr encoding (>= r)")
    # stored v * R^2 mod r; one Montgomery reduction (x R^-1) leaves v * R: the Montgomery form itself
    values = MontInts(from_mont_limbs(FR, raw) if n else np.zeros((0, 4), np.uint64), FR)
    return arr["matrix"].tolist(), arr["constraint"].tolist(), arr["signal"].tolist(), values


def read_verifying_key(path: str | Path) -> VerifyingKey:
    """The verification key of a snarkjs Groth16 zkey (what ``zkey export verificationkey`` prints).

    Raises:
        FormatError: see :func:`parse_zkey` (sections 1-3 only are read).
    """
    f = parse(Path(path).read_bytes(), "zkey", path=str(path))
    h = _header(f)
    return VerifyingKey(h["alpha_g1"], h["beta_g2"], h["gamma_g2"], h["delta_g2"],
                        tuple(_points(f, 3, h["n_public"] + 1, False, "IC")))


def parse_zkey(data: bytes, *, path: str = "<bytes>") -> ProvingKey:
    """A :class:`ProvingKey` from zkey bytes (see the module docstring for the encodings).

    Everything sized by the file is checked before it is used: ``n_vars > n_public``,
    ``domain_size`` a power of two above ``n_public``, each point section exactly its count of
    points, the coefficient count filling section 4, every coefficient's matrix/constraint/
    signal index in range and value ``< r``, every coordinate ``< q`` and every point on its
    curve (subgroup membership of the key's G2 points is the verifier's check). A key that
    parses cannot make the numba prover read or write out of bounds.

    Raises:
        FormatError: naming the section and field of the first violation (wrong magic,
            protocol or curve, missing, repeated or truncated sections, out-of-range values).
    """
    f = parse(data, "zkey", path=path)
    h = _header(f)
    n_vars, n_pub, n = h["n_vars"], h["n_public"], h["domain_size"]
    vk = VerifyingKey(h["alpha_g1"], h["beta_g2"], h["gamma_g2"], h["delta_g2"],
                      tuple(_points(f, 3, n_pub + 1, False, "IC")))
    matrix, constraint, signal, value = _coefficients(f, n_vars, n)
    pk = ProvingKey(
        n_vars=n_vars, n_public=n_pub, domain_size=n,
        alpha_g1=h["alpha_g1"], beta_g1=h["beta_g1"], beta_g2=h["beta_g2"],
        delta_g1=h["delta_g1"], delta_g2=h["delta_g2"], vk=vk,
        coef_matrix=matrix, coef_constraint=constraint, coef_signal=signal, coef_value=value,
        a_query=_point_array(f, 5, n_vars, False, "a_query"),
        b_g1_query=_point_array(f, 6, n_vars, False, "b_g1_query"),
        b_g2_query=_point_array(f, 7, n_vars, True, "b_g2_query"),
        c_query=_point_array(f, 8, n_vars - n_pub - 1, False, "c_query"),
        h_query=_point_array(f, 9, n, False, "h_query"),
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

    def points(pts: Any, enc: Any) -> bytes:  # a MontPoints array is already the file's encoding
        return pts.mont.astype("<u8").tobytes() if isinstance(pts, MontPoints) else b"".join(map(enc, pts))
    return build("zkey", 1, [
        (1, le(GROTH16_PROTOCOL_ID, 4)),
        (2, header),
        (3, b"".join(map(g1_bytes, pk.vk.ic))),
        (4, bytes(coefs)),
        (5, points(pk.a_query, g1_bytes)),
        (6, points(pk.b_g1_query, g1_bytes)),
        (7, points(pk.b_g2_query, g2_bytes)),
        (8, points(pk.c_query, g1_bytes)),
        (9, points(pk.h_query, g1_bytes)),
        (10, pk.cache.get(CONTRIBUTIONS_CACHE_KEY, bytes(64) + le(0, 4))),
    ])


def write_zkey(path: str | Path, pk: ProvingKey) -> None:
    """Write a :class:`ProvingKey` (e.g. from :func:`proving.groth16.setup.dev_setup`) as a zkey
    that ``snarkjs groth16 prove`` and ``snarkjs zkey export verificationkey`` accept."""
    Path(path).write_bytes(zkey_bytes(pk))
