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


def parse_wtns(data: bytes, *, path: str = "<bytes>") -> list[int]:
    """Witness values from ``.wtns`` bytes.

    Raises:
        FormatError: bad container, a prime other than BN254's r, or values out of range.
    """
    f = parse(data, "wtns", path=path)
    header = Reader(f.section(1), path=path, section=1)
    n8 = header.u32()
    prime = header.bigint(n8)
    if prime != FR_MODULUS:
        raise FormatError(path, f"witness field is {prime}, expected BN254's r (compile with circom --prime bn128)")
    n = header.u32()
    values = Reader(f.section(2), path=path, section=2)
    out = [values.bigint(n8) for _ in range(n)]
    if not values.at_end():
        raise FormatError(path, "section 2 is longer than n_witness values")
    for i, v in enumerate(out):
        if v >= FR_MODULUS:
            raise FormatError(path, f"witness value {i} is not reduced mod r")
    return out


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
