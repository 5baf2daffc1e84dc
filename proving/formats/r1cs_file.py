"""circom constraint-system files (``.r1cs``, iden3 container, magic ``"r1cs"``, version 1).

Format: https://github.com/iden3/r1csfile/blob/master/doc/r1cs_bin_format.md. Sections:

1. header: ``n8`` u32, prime (``n8`` bytes LE), ``n_wires`` u32, ``n_pub_out`` u32,
   ``n_pub_in`` u32, ``n_prv_in`` u32, ``n_labels`` u64, ``m_constraints`` u32;
2. constraints: for each, the A, B and C linear combinations as ``n_terms`` u32 then
   ``n_terms`` times (``wire_id`` u32, coefficient ``n8`` bytes LE, standard form);
3. wire-to-label map: ``n_wires`` u64 (kept as metadata only);
4, 5: custom gates (PLONK only; rejected here, Groth16 cannot use them).

Wire order is circom's: ``1``, outputs, public inputs, private inputs, internal signals; the
public signals of Groth16 are ``n_pub_out + n_pub_in``.
"""

from __future__ import annotations

from pathlib import Path

from proving.errors import FormatError
from proving.field import FR_MODULUS
from proving.formats.binfile import BinFile, Reader, build, le, read
from proving.r1cs import R1CS, Constraint, Terms


def _read_lc(rd: Reader, n8: int, n_wires: int, path: str) -> Terms:
    terms = []
    for _ in range(rd.u32()):
        wire, coeff = rd.u32(), rd.bigint(n8)
        if wire >= n_wires:
            raise FormatError(path, f"constraint refers to wire {wire} >= n_wires {n_wires}")
        terms.append((wire, coeff % FR_MODULUS))
    return tuple(terms)


def r1cs_from_binfile(f: BinFile) -> R1CS:
    """Build an :class:`R1CS` from a parsed ``.r1cs`` container.

    Raises:
        FormatError: a prime other than BN254's r, custom gates, or malformed sections.
    """
    hd = Reader(f.section(1), path=f.path, section=1)
    n8 = hd.u32()
    prime = hd.bigint(n8)
    if prime != FR_MODULUS:
        raise FormatError(f.path, f"circuit field is {prime}, expected BN254's r (circom --prime bn128)")
    n_wires, n_out, n_in = hd.u32(), hd.u32(), hd.u32()
    hd.u32()  # n_prv_in: private inputs are ordinary private signals here
    hd.u64()  # n_labels: only the .sym file needs them
    m = hd.u32()
    if f.sections.get(4) or f.sections.get(5):
        raise FormatError(f.path, "custom gates (sections 4/5) are PLONK-only; compile without them for Groth16")
    rd = Reader(f.section(2), path=f.path, section=2)
    rows = []
    for _ in range(m):
        a, b, c = (_read_lc(rd, n8, n_wires, f.path) for _ in range(3))
        rows.append(Constraint(a, b, c))
    return R1CS(n_wires, n_out + n_in, tuple(rows))


def read_r1cs(path: str | Path) -> R1CS:
    """Read a circom ``.r1cs`` file (sections in any order).

    Raises:
        FormatError: see :func:`r1cs_from_binfile`.
    """
    return r1cs_from_binfile(read(path, "r1cs"))


def r1cs_bytes(r1cs: R1CS) -> bytes:
    """Serialise an :class:`R1CS` as a ``.r1cs`` container (all publics counted as outputs,
    identity wire-to-label map)."""
    n8 = 32
    n_prv = 0
    header = (le(n8, 4) + le(FR_MODULUS, n8) + le(r1cs.n_vars, 4) + le(r1cs.n_public, 4) + le(0, 4)
              + le(n_prv, 4) + le(r1cs.n_vars, 8) + le(r1cs.n_constraints, 4))
    body = bytearray()
    for row in r1cs.constraints:
        for terms in (row.a, row.b, row.c):
            body += le(len(terms), 4)
            for wire, coeff in terms:
                body += le(wire, 4) + le(coeff % FR_MODULUS, n8)
    labels = b"".join(le(i, 8) for i in range(r1cs.n_vars))
    return build("r1cs", 1, [(1, header), (2, bytes(body)), (3, labels)])


def write_r1cs(path: str | Path, r1cs: R1CS) -> None:
    """Write an :class:`R1CS` as a circom-compatible ``.r1cs`` file."""
    Path(path).write_bytes(r1cs_bytes(r1cs))
