"""The iden3 binary container shared by ``.r1cs``, ``.wtns``, ``.zkey`` and ``.ptau`` files.

Layout (iden3 ``binfileutils``, https://github.com/iden3/binfileutils; r1cs spec
https://github.com/iden3/r1csfile/blob/master/doc/r1cs_bin_format.md), all little-endian::

    magic: 4 ASCII bytes ("r1cs", "wtns", "zkey", "ptau")
    version: u32
    n_sections: u32
    n_sections times: section_id u32, size u64, size bytes of data

Sections may appear in ANY order; readers look them up by id. Field elements are stored as
``n8``-byte little-endian integers (standard or Montgomery form depending on the file).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from proving.errors import FormatError


@dataclass
class BinFile:
    """A parsed container: ``sections[id]`` lists the payloads with that id, in file order."""

    magic: str
    version: int
    sections: dict[int, list[bytes]] = field(default_factory=dict)
    path: str = "<bytes>"

    def section(self, section_id: int) -> bytes:
        """The payload of the unique section ``section_id``.

        Raises:
            FormatError: the section is missing or repeated.
        """
        found = self.sections.get(section_id, [])
        if len(found) != 1:
            what = "missing" if not found else f"present {len(found)} times"
            raise FormatError(self.path, f"section {section_id} is {what} (expected exactly one)")
        return found[0]


def parse(data: bytes, magic: str, *, path: str = "<bytes>") -> BinFile:
    """Parse a container and check its magic.

    Every section header and size is checked against the bytes present before a payload is
    sliced, and the sections must cover the file exactly (no trailing bytes).

    Raises:
        FormatError: wrong magic, a section count that cannot fit the file, a truncated
            header/section, or bytes after the last section.
    """
    if len(data) < 12:
        raise FormatError(path, f"too short ({len(data)} bytes) for an iden3 binary file header")
    found = data[:4].decode("latin-1")
    if found != magic:
        raise FormatError(path, f"magic is {found!r}, expected {magic!r}")
    version, n_sections = struct.unpack_from("<II", data, 4)
    if n_sections * 12 > len(data) - 12:
        raise FormatError(path, f"{n_sections} sections cannot fit in {len(data)} bytes (12-byte header each)",
                          section="header", field="n_sections")
    out, pos = BinFile(magic, version, path=path), 12
    for k in range(n_sections):
        if pos + 12 > len(data):
            raise FormatError(path, f"section header {k} is truncated at byte {pos}")
        section_id, size = struct.unpack_from("<IQ", data, pos)
        pos += 12
        if size > len(data) - pos:
            raise FormatError(path, f"section {section_id} claims {size} bytes, only {len(data) - pos} left")
        out.sections.setdefault(section_id, []).append(bytes(data[pos : pos + size]))
        pos += size
    if pos != len(data):
        raise FormatError(path, f"{len(data) - pos} bytes after the last of {n_sections} sections",
                          section="header", field="n_sections")
    return out


def read(path: str | Path, magic: str) -> BinFile:
    """Read and :func:`parse` a container file."""
    return parse(Path(path).read_bytes(), magic, path=str(path))


def build(magic: str, version: int, sections: list[tuple[int, bytes]]) -> bytes:
    """Serialise sections (written in the order given) into a container.

    Raises:
        ValueError: ``magic`` is not 4 ASCII characters.
    """
    if len(magic) != 4 or not magic.isascii():
        raise ValueError(f"magic must be 4 ASCII characters, got {magic!r}")
    parts = [magic.encode("ascii"), struct.pack("<II", version, len(sections))]
    for section_id, payload in sections:
        parts.append(struct.pack("<IQ", section_id, len(payload)))
        parts.append(payload)
    return b"".join(parts)


def write(path: str | Path, magic: str, version: int, sections: list[tuple[int, bytes]]) -> None:
    """Write a container file (see :func:`build`)."""
    Path(path).write_bytes(build(magic, version, sections))


class Reader:
    """Sequential little-endian reader over one section's payload.

    Every read is bounds-checked; :meth:`expect` checks a count read from the file against
    the bytes left BEFORE the caller loops or allocates on it.
    """

    def __init__(self, data: bytes, *, path: str = "<bytes>", section: int = 0) -> None:
        self.data, self.pos, self.path, self.section = data, 0, path, section

    def error(self, field: str | None, reason: str) -> FormatError:
        """A :class:`FormatError` naming this reader's file and section and ``field``."""
        return FormatError(self.path, reason, section=self.section, field=field)

    def remaining(self) -> int:
        """Bytes not read yet."""
        return len(self.data) - self.pos

    def expect(self, count: int, item_size: int, field: str, *, exact: bool = False) -> int:
        """Check that ``count`` items of ``item_size`` bytes fit in (``exact``: fill) the rest.

        Returns ``count``.

        Raises:
            FormatError: they do not, naming ``field``.
        """
        need = count * item_size
        if need > self.remaining() or (exact and need != self.remaining()):
            rel = "exactly " if exact else ""
            raise self.error(field, f"{count} items of {item_size} bytes need {need} bytes, the section has "
                                    f"{rel}{self.remaining()} left")
        return count

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.error(None, f"truncated (needs {n} bytes at offset {self.pos}, has {self.remaining()})")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u32(self) -> int:
        """One unsigned 32-bit integer."""
        return struct.unpack("<I", self._take(4))[0]

    def u64(self) -> int:
        """One unsigned 64-bit integer."""
        return struct.unpack("<Q", self._take(8))[0]

    def bigint(self, n8: int) -> int:
        """One ``n8``-byte little-endian unsigned integer."""
        return int.from_bytes(self._take(n8), "little")

    def bytes(self, n: int) -> bytes:
        """``n`` raw bytes."""
        return self._take(n)

    def at_end(self) -> bool:
        """Whether the whole payload has been consumed."""
        return self.pos == len(self.data)

    def end(self, what: str) -> None:
        """Require the whole payload to be consumed.

        Raises:
            FormatError: bytes are left after ``what``.
        """
        if not self.at_end():
            raise self.error(None, f"{self.remaining()} bytes left after {what}")


def le(value: int, n8: int) -> bytes:
    """``value`` as ``n8`` little-endian bytes."""
    return value.to_bytes(n8, "little")
