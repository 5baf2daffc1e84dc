"""Mutators: raw bytes, iden3 binary containers (structure-aware), JSON documents and text.

Each takes ``(rng, valid_input)`` and returns mutated bytes; all randomness comes from ``rng``.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from typing import Any

from proving.field import FQ_MODULUS as Q, FR_MODULUS as R

Mutator = Callable[[random.Random, bytes], bytes]

#: u32 values that break counts and indices: boundaries, powers of two, sign bits, all ones.
INTERESTING_U32 = (0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 127, 128, 255, 256, 1023, 1024,
                   0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
INTERESTING_U64 = (0, 1, 12, 64, 0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF)
#: 256-bit values at the field boundaries (coordinates, coefficients, witness values).
INTERESTING_BIG = (0, 1, Q - 1, Q, Q + 1, R - 1, R, R + 1, 2**254, 2**256 - 1)


def _u32(rng: random.Random, old: int) -> int:
    choice = rng.random()
    if choice < 0.6:
        return rng.choice(INTERESTING_U32)
    if choice < 0.85:
        return (old + rng.choice((-2, -1, 1, 2, 1 << rng.randrange(32)))) % 2**32
    return rng.getrandbits(32)


def bit_flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def set_u32(rng: random.Random, data: bytes, offset: int | None = None) -> bytes:
    """Overwrite one little-endian u32 (at ``offset``, or anywhere) with an interesting value."""
    if len(data) < 4:
        return data
    i = rng.randrange(len(data) - 3) if offset is None else offset
    old = struct.unpack_from("<I", data, i)[0]
    return data[:i] + struct.pack("<I", _u32(rng, old)) + data[i + 4 :]


def set_u64(rng: random.Random, data: bytes, offset: int | None = None) -> bytes:
    if len(data) < 8:
        return data
    i = rng.randrange(len(data) - 7) if offset is None else offset
    return data[:i] + struct.pack("<Q", rng.choice(INTERESTING_U64)) + data[i + 8 :]


def set_big(rng: random.Random, data: bytes, offset: int | None = None) -> bytes:
    """Overwrite 32 bytes with a field-boundary value (little-endian)."""
    if len(data) < 32:
        return data
    i = rng.randrange(len(data) - 31) if offset is None else offset
    value = rng.choice(INTERESTING_BIG) if rng.random() < 0.8 else rng.getrandbits(256)
    return data[:i] + value.to_bytes(32, "little") + data[i + 32 :]


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def delete_slice(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 64) :]


def insert_bytes(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.randbytes(rng.randint(1, 64)) + data[i:]


def duplicate_slice(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data))
    j = min(len(data), i + rng.randint(1, 256))
    return data[:j] + data[i:j] + data[j:]


BYTE_MUTATORS: tuple[Mutator, ...] = (bit_flip, set_u32, set_u64, set_big, truncate, delete_slice, insert_bytes,
                                      duplicate_slice)


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """One to three random byte-level mutations."""
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        data = rng.choice(BYTE_MUTATORS)(rng, data) if data else rng.randbytes(rng.randint(1, 16))
    return data


# ---------------------------------------------------------------- iden3 containers ----

def sections(data: bytes) -> list[tuple[int, int, int]]:
    """``(section_id, payload_offset, size)`` of a valid iden3 container, in file order."""
    n = struct.unpack_from("<I", data, 8)[0]
    out, pos = [], 12
    for _ in range(n):
        sid, size = struct.unpack_from("<IQ", data, pos)
        out.append((sid, pos + 12, size))
        pos += 12 + size
    return out


def _rebuild(data: bytes, parts: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(struct.pack("<IQ", sid, len(p)) + p for sid, p in parts)
    return data[:8] + struct.pack("<I", len(parts)) + body


def _payloads(data: bytes) -> list[tuple[int, bytes]]:
    return [(sid, data[off : off + size]) for sid, off, size in sections(data)]


def mutate_container(rng: random.Random, data: bytes) -> bytes:
    """Structure-aware mutation of a valid iden3 container: an aligned u32 (a count, index,
    size or id) or a 32-byte field element inside one section, a section header's id or size,
    the section list itself (drop, repeat, swap), or any byte-level mutation."""
    secs = sections(data)
    choice = rng.random()
    sid, off, size = rng.choice(secs)
    if choice < 0.35 and size >= 4:  # an aligned u32 of a payload: the single-u32 case of issue 14
        return set_u32(rng, data, off + 4 * rng.randrange(size // 4))
    if choice < 0.45 and size >= 4:  # the first u32s of a payload: counts and header fields
        return set_u32(rng, data, off + 4 * rng.randrange(min(size // 4, 24)))
    if choice < 0.55 and size >= 32:
        return set_big(rng, data, off + rng.randrange(size - 31))
    if choice < 0.62:
        return set_u32(rng, data, off - 12)  # the section id
    if choice < 0.70:
        return set_u64(rng, data, off - 8) if rng.random() < 0.5 else data[:off - 8] + struct.pack(
            "<Q", (size + rng.choice((-1, 1, -4, 4, 32))) % 2**64) + data[off:]
    if choice < 0.80:
        parts = _payloads(data)
        op = rng.randrange(3)
        i = rng.randrange(len(parts))
        if op == 0:
            del parts[i]
        elif op == 1:
            parts.insert(rng.randrange(len(parts) + 1), parts[i])
        else:
            j = rng.randrange(len(parts))
            parts[i], parts[j] = parts[j], parts[i]
        return _rebuild(data, parts)
    if choice < 0.83:
        return set_u32(rng, data, rng.choice((4, 8)))  # version, n_sections
    return mutate_bytes(rng, data)


# ---------------------------------------------------------------- JSON ----

def _random_scalar(rng: random.Random) -> Any:
    return rng.choice((
        None, True, False, 0, -1, 1.5, float("nan"), float("inf"), "", "0", "1", "-1", "+1", " 1", "1 ", "0x10",
        "1e3", "1_000", "\u0661\u0662", "\uff11", str(Q), str(Q + 1), str(Q - 1), str(R), str(R - 1),
        str(2**256), "9" * 5000, 10**80, Q, R, "groth16", "bn128", "plonk", {}, [], [[]], ["1", "2"],
        ["0", "1", "0"], [["0", "0"], ["1", "0"], ["0", "0"]], "x" * 100,
    ))


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


def _get(obj: Any, path: tuple) -> Any:
    for k in path:
        obj = obj[k]
    return obj


def _tweak_decimal(rng: random.Random, value: str) -> Any:
    n = int(value)
    return str(rng.choice((n + 1, n - 1, n + Q, n + R, Q - n, n * 2, n ^ 1, 0, n + 2**256)))


def mutate_document(rng: random.Random, obj: Any) -> Any:
    """One structural mutation of a JSON document (returns a new document): replace a node by
    a value of another type or a boundary value, nudge a decimal string (+-1, +q, +r), delete,
    duplicate or add an entry, or swap two list entries."""
    obj = json.loads(json.dumps(obj))
    path = rng.choice(_paths(obj))
    if not path:
        return _random_scalar(rng) if rng.random() < 0.5 else [obj] if rng.random() < 0.5 else {"x": obj}
    parent, key = _get(obj, path[:-1]), path[-1]
    node = parent[key]
    op = rng.random()
    if op < 0.3 and isinstance(node, str) and node.isascii() and node.isdigit() and len(node) < 100:
        parent[key] = _tweak_decimal(rng, node)
    elif op < 0.55:
        parent[key] = _random_scalar(rng)
    elif op < 0.7:
        del parent[key]
    elif op < 0.8 and isinstance(parent, list):
        parent.insert(rng.randrange(len(parent) + 1), rng.choice(parent) if parent else _random_scalar(rng))
    elif op < 0.87 and isinstance(parent, list) and len(parent) > 1:
        i, j = rng.randrange(len(parent)), rng.randrange(len(parent))
        parent[i], parent[j] = parent[j], parent[i]
    elif op < 0.95 and isinstance(parent, dict):
        parent[rng.choice(("extra", "nPublic", "IC", "pi_a", "protocol", "curve", ""))] = _random_scalar(rng)
    else:
        parent[key] = [node] if rng.random() < 0.5 else {"v": node}
    return obj


def mutate_json_text(rng: random.Random, text: bytes) -> bytes:
    """Text-level mutation: byte mutations, JSON punctuation inserted, deep nesting, bad UTF-8."""
    choice = rng.random()
    if choice < 0.1:
        depth = rng.choice((100, 5000, 100000))
        return b"[" * depth + text + b"]" * (depth if rng.random() < 0.5 else 0)
    if choice < 0.15:
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice((b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00")) + text[i:]
    if choice < 0.45:
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice((b"[", b"]", b"{", b"}", b",", b'"', b":", b"\\", b"-", b"0", b"9", b" ",
                                      b"e", b"NaN")) + text[i + rng.randrange(2):]
    return mutate_bytes(rng, text)


def json_mutator(rng: random.Random, data: bytes) -> bytes:
    """Mostly document-level mutations (serialised), some text-level."""
    if rng.random() < 0.7:
        obj = json.loads(data)
        for _ in range(rng.choice((1, 1, 2, 3))):
            obj = mutate_document(rng, obj)
        return json.dumps(obj).encode()
    return mutate_json_text(rng, data)
