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

N8 = 32


def _read_lc(rd: Reader, n8: int, n_wires: int, where: str) -> Terms:
    n_terms = rd.expect(rd.u32(), 4 + n8, f"{where}.n_terms")
    terms = []
    for k in range(n_terms):
        wire, coeff = rd.u32(), rd.bigint(n8)
        if wire >= n_wires:
            raise rd.error(f"{where}[{k}].wire", f"constraint refers to wire {wire} >= n_wires {n_wires}")
        if coeff >= FR_MODULUS:
            raise rd.error(f"{where}[{k}].coefficient", "not reduced mod r")
        terms.append((wire, coeff))
    return tuple(terms)


def _read_header(f: BinFile) -> tuple[int, int, int]:
    """``(n_wires, n_public, m_constraints)`` of section 1, checked against each other.

    Raises:
        FormatError: another prime, ``n8 != 32``, ``1 + outputs + inputs > n_wires``, no constraints.
    """
    hd = Reader(f.section(1), path=f.path, section=1)
    if (n8 := hd.u32()) != N8:
        raise hd.error("n8", f"{n8}, expected 32 (BN254's r; circom --prime bn128)")
    prime = hd.bigint(n8)
    if prime != FR_MODULUS:
        raise FormatError(f.path, f"circuit field is {prime}, expected BN254's r (circom --prime bn128)",
                          section=1, field="prime")
    n_wires, n_out, n_in, n_prv = hd.u32(), hd.u32(), hd.u32(), hd.u32()
    hd.u64()  # n_labels: only the .sym file needs them
    m = hd.u32()
    hd.end("the header")
    if 1 + n_out + n_in + n_prv > n_wires:
        raise hd.error("n_wires", f"{n_wires} wires cannot hold the constant, {n_out} outputs, {n_in} public and "
                                  f"{n_prv} private inputs")
    if m < 1:
        raise hd.error("m_constraints", "0 constraints: every witness would satisfy the circuit")
    return n_wires, n_out + n_in, m


def r1cs_from_binfile(f: BinFile) -> R1CS:
    """Build an :class:`R1CS` from a parsed ``.r1cs`` container.

    Counts are checked against the header and the section sizes before anything is read:
    ``m_constraints >= 1`` constraints must fill section 2 exactly (at least 12 bytes each),
    every term count fits the bytes left, every wire ``< n_wires`` and coefficient ``< r``,
    ``1 + n_pub_out + n_pub_in + n_prv_in <= n_wires``, and section 3 (when present) holds
    exactly ``n_wires`` labels.

    Raises:
        FormatError: naming the section and field: a prime other than BN254's r, custom
            gates, or malformed sections.
    """
    if f.version != 1:
        raise FormatError(f.path, f"version {f.version}, expected 1", section="header", field="version")
    n_wires, n_public, m = _read_header(f)
    if f.sections.get(4) or f.sections.get(5):
        raise FormatError(f.path, "custom gates (sections 4/5) are PLONK-only; compile without them for Groth16")
    rd = Reader(f.section(2), path=f.path, section=2)
    rd.expect(m, 3 * 4, "m_constraints")
    rows = []
    for j in range(m):
        a, b, c = (_read_lc(rd, N8, n_wires, f"constraint[{j}].{abc}") for abc in "abc")
        rows.append(Constraint(a, b, c))
    rd.end(f"m_constraints = {m} constraints")
    if f.sections.get(3):
        Reader(f.section(3), path=f.path, section=3).expect(n_wires, 8, "n_wires labels", exact=True)
    return R1CS(n_wires, n_public, tuple(rows))


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
