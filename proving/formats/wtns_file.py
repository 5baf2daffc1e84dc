"""circom/snarkjs witness files (``.wtns``, iden3 container, magic ``"wtns"``, version 2).

Sections (circom ``witness_calculator.js`` / snarkjs ``src/wtns_utils.js``):

1. header: ``n8`` u32, the prime ``q`` (``n8`` bytes LE), ``n_witness`` u32;
2. the values: ``n_witness`` field elements, ``n8`` bytes LE each, standard (non-Montgomery) form.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from proving.errors import FormatError
from proving.field import FR_MODULUS
from proving.formats.binfile import Reader, build, le, parse

WTNS_VERSION = 2
N8 = 32


def parse_wtns(data: bytes, *, path: str = "<bytes>") -> list[int]:
    """Witness values from ``.wtns`` bytes.

    ``n8`` must be 32 and the prime BN254's r; ``n_witness`` values must fill section 2
    exactly (checked before any is read), each ``< r``, and ``w[0] = 1``.

    Raises:
        FormatError: naming the section and field: bad container, another prime, a count
            that does not match the section size, values out of range.
    """
    f = parse(data, "wtns", path=path)
    header = Reader(f.section(1), path=path, section=1)
    if (n8 := header.u32()) != N8:
        raise header.error("n8", f"{n8}, expected 32 (BN254's r; compile with circom --prime bn128)")
    prime = header.bigint(n8)
    if prime != FR_MODULUS:
        raise FormatError(path, f"witness field is {prime}, expected BN254's r (compile with circom --prime bn128)",
                          section=1, field="prime")
    n = header.u32()
    header.end("the header")
    values = Reader(f.section(2), path=path, section=2)
    if n < 1:
        raise header.error("n_witness", "a witness holds at least the constant signal w[0] = 1")
    values.expect(n, n8, "n_witness", exact=True)
    out = [int.from_bytes(data_i, "little") for data_i in _chunks(values.data, n8)]
    for i, v in enumerate(out):
        if v >= FR_MODULUS:
            raise values.error(f"value[{i}]", "not reduced mod r")
    if out[0] != 1:
        raise values.error("value[0]", f"the constant signal must be 1, got {out[0]}")
    return out


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def read_wtns(path: str | Path) -> list[int]:
    """Read a ``.wtns`` file: ``[1, outputs..., public inputs..., private...]`` as Fr ints.

    Raises:
        FormatError: see :func:`parse_wtns`.
    """
    return parse_wtns(Path(path).read_bytes(), path=str(path))


def wtns_bytes(witness: Sequence[int]) -> bytes:
    """Serialise a witness as a version-2 ``.wtns`` container.

    Raises:
        ValueError: a value outside ``[0, r)``.
    """
    n8 = 32
    for i, v in enumerate(witness):
        if not 0 <= v < FR_MODULUS:
            raise ValueError(f"witness[{i}] = {v} is not in [0, r)")
    header = le(n8, 4) + le(FR_MODULUS, n8) + le(len(witness), 4)
    return build("wtns", WTNS_VERSION, [(1, header), (2, b"".join(le(v, n8) for v in witness))])


def write_wtns(path: str | Path, witness: Sequence[int]) -> None:
    """Write a witness as a ``.wtns`` file readable by snarkjs (``snarkjs wtns check/export json``)."""
    Path(path).write_bytes(wtns_bytes(witness))
