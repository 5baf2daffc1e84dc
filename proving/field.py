"""BN254 prime fields Fq (base) and Fr (scalar) in Montgomery form on numba limb arrays.

Layout: an array of ``n`` field elements is a C-contiguous ``(n, 4)`` ``np.uint64`` array, four
little-endian 64-bit limbs per row (the byte layout of snarkjs/ffjavascript buffers, so files
can be viewed without copying), in Montgomery form ``x * 2^256 mod p`` unless a function says
"standard". 64-bit limbs with LLVM 128-bit products (see :mod:`proving._kernels.limbs`) beat
32-bit sub-limbs: 4x4 limb products instead of 8x8.

Measured here (2-core AMD EPYC, numba 0.68): one Montgomery multiplication ~26 ns latency,
~30 ns per element vectorised (FIELD-NOTES saw 83-127 ns for a first numba version; Python
``a * b % p`` ~400 ns).

Public API: :data:`FQ_MODULUS`, :data:`FR_MODULUS`, :data:`FQ`, :data:`FR` (:class:`PrimeField`),
:func:`to_limbs`, :func:`from_limbs`, :func:`to_mont`, :func:`from_mont`, :func:`mul`, :func:`add`,
:func:`sub`, :func:`neg`, :func:`inverse`, :func:`batch_inverse`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numba import njit

from proving._kernels import fields as _f
from proving._kernels.limbs import add_mod, batch_inverse_kernel, load, mont_mul, mont_pow, neg_mod, store, sub_mod
from proving.errors import ProvingError

#: BN254 (alt_bn128) base field modulus q (EIP-196); G1 and G2 coordinates live in Fq (Fq2).
FQ_MODULUS: Final[int] = _f.FQ_MODULUS
#: BN254 scalar field modulus r (EIP-196), the order of G1 and G2; witnesses and scalars live in Fr.
FR_MODULUS: Final[int] = _f.FR_MODULUS


class FieldError(ProvingError, ValueError):
    """Bad input to a field function.

    Attributes:
        field: the argument at fault.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class PrimeField:
    """A prime field with 4-limb Montgomery parameters.

    Attributes:
        name: ``"Fq"`` or ``"Fr"``.
        modulus: the prime p (EIP-196).
        p_limbs: p as 4 ``np.uint64`` limbs.
        inv: ``-p^-1 mod 2^64`` (CIOS constant).
        one: ``2^256 mod p`` (1 in Montgomery form) as limbs.
        r2: ``2^512 mod p`` as limbs (multiplying by it converts to Montgomery form).
        pm2: ``p - 2`` as limbs (Fermat inverse exponent).
    """

    name: str
    modulus: int
    p_limbs: tuple
    inv: np.uint64
    one: tuple
    r2: tuple
    pm2: tuple


FQ = PrimeField("Fq", _f.FQ_MODULUS, _f.FQ_P, _f.FQ_INV, _f.FQ_ONE, _f.FQ_R2, _f.FQ_PM2)
FR = PrimeField("Fr", _f.FR_MODULUS, _f.FR_P, _f.FR_INV, _f.FR_ONE, _f.FR_R2, _f.FR_PM2)


def to_limbs(values: Sequence[int]) -> np.ndarray:
    """Standard-form ints ``0 <= v < 2^256`` -> ``(n, 4)`` uint64 limb array (no reduction).

    Raises:
        FieldError: a value is negative or needs more than 256 bits.
    """
    try:
        buf = b"".join(int(v).to_bytes(32, "little") for v in values)
    except OverflowError as exc:
        raise FieldError("values", "every value must satisfy 0 <= v < 2^256") from exc
    return np.frombuffer(buf, dtype="<u8").reshape(-1, 4).astype(np.uint64)


def from_limbs(arr: np.ndarray) -> list[int]:
    """``(n, 4)`` uint64 limb array -> list of Python ints (no Montgomery conversion)."""
    buf = np.ascontiguousarray(arr, dtype="<u8").tobytes()
    return [int.from_bytes(buf[i:i + 32], "little") for i in range(0, len(buf), 32)]


@njit(cache=True)
def _mul_arr(x, y, out, p, inv):
    for i in range(x.shape[0]):
        store(out, i, mont_mul(load(x, i), load(y, i), p, inv))


@njit(cache=True)
def _mul_const(x, c, out, p, inv):
    for i in range(x.shape[0]):
        store(out, i, mont_mul(load(x, i), c, p, inv))


@njit(cache=True)
def _add_arr(x, y, out, p):
    for i in range(x.shape[0]):
        store(out, i, add_mod(load(x, i), load(y, i), p))


@njit(cache=True)
def _sub_arr(x, y, out, p):
    for i in range(x.shape[0]):
        store(out, i, sub_mod(load(x, i), load(y, i), p))


@njit(cache=True)
def _neg_arr(x, out, p):
    for i in range(x.shape[0]):
        store(out, i, neg_mod(load(x, i), p))


@njit(cache=True)
def _inv_arr(x, out, pm2, one, p, inv):
    for i in range(x.shape[0]):
        store(out, i, mont_pow(load(x, i), pm2, one, p, inv))


def _check(field: PrimeField, x: np.ndarray, name: str) -> np.ndarray:
    if x.dtype != np.uint64 or x.ndim != 2 or x.shape[1] != 4:
        raise FieldError(name, f"expected an (n, 4) uint64 {field.name} limb array, got {x.dtype} {x.shape}")
    return np.ascontiguousarray(x)


def to_mont(field: PrimeField, values: Sequence[int] | np.ndarray) -> np.ndarray:
    """Ints (reduced mod p here) or a standard-form limb array -> Montgomery limb array ``(n, 4)``."""
    std = values if isinstance(values, np.ndarray) else to_limbs([v % field.modulus for v in values])
    std = _check(field, std, "values")
    out = np.empty_like(std)
    _mul_const(std, field.r2, out, field.p_limbs, field.inv)
    return out


def from_mont_limbs(field: PrimeField, x: np.ndarray) -> np.ndarray:
    """Montgomery limb array -> standard-form limb array (multiplies by 1)."""
    x = _check(field, x, "x")
    out = np.empty_like(x)
    one_std = (np.uint64(1), np.uint64(0), np.uint64(0), np.uint64(0))
    _mul_const(x, one_std, out, field.p_limbs, field.inv)
    return out


def from_mont(field: PrimeField, x: np.ndarray) -> list[int]:
    """Montgomery limb array -> list of standard-form Python ints."""
    return from_limbs(from_mont_limbs(field, x))


def first_non_canonical(field: PrimeField, x: np.ndarray) -> int:
    """Index of the first row of a ``(n, 4)`` uint64 limb array that is ``>= p``, ``-1`` when every row is
    canonical (vectorised limb comparison, most significant limb first)."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != 4:
        raise FieldError("x", f"expected an (n, 4) limb array, got {x.shape}")
    p = field.p_limbs
    below = np.zeros(x.shape[0], dtype=bool)
    undecided = np.ones(x.shape[0], dtype=bool)
    for k in (3, 2, 1, 0):
        below |= undecided & (x[:, k] < p[k])
        undecided &= x[:, k] == p[k]
    bad = np.flatnonzero(~below)  # rows equal to p stay undecided: not below, so bad
    return int(bad[0]) if bad.size else -1


class MontInts(Sequence):
    """An immutable sequence of field elements backed by their ``(n, 4)`` Montgomery limb array; items are
    standard-form ints, decoded on access (the whole list once on iteration); :attr:`mont` goes to the
    kernels with no conversion. Equal to a list of the same ints."""

    __slots__ = ("mont", "field", "_list")

    def __init__(self, mont: np.ndarray, field: PrimeField) -> None:
        self.mont = mont
        self.field = field
        self._list: list[int] | None = None

    def __len__(self) -> int:
        return int(self.mont.shape[0])

    def tolist(self) -> list[int]:
        """All elements as ints (decoded once, then cached)."""
        if self._list is None:
            self._list = from_mont(self.field, self.mont) if len(self) else []
        return self._list

    def __getitem__(self, i):
        if self._list is not None or isinstance(i, slice):
            return self.tolist()[i]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(i)
        i %= n
        return from_mont(self.field, self.mont[i:i + 1])[0]

    def __iter__(self):
        return iter(self.tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MontInts):
            return self.field is other.field and np.array_equal(self.mont, other.mont)
        if isinstance(other, (list, tuple)):
            return self.tolist() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MontInts({len(self)} {self.field.name} elements)"


def mul(field: PrimeField, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise product of two Montgomery arrays of equal shape."""
    x, y = _check(field, x, "x"), _check(field, y, "y")
    out = np.empty_like(x)
    _mul_arr(x, y, out, field.p_limbs, field.inv)
    return out


def add(field: PrimeField, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise sum (Montgomery or standard form alike)."""
    x, y = _check(field, x, "x"), _check(field, y, "y")
    out = np.empty_like(x)
    _add_arr(x, y, out, field.p_limbs)
    return out


def sub(field: PrimeField, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise difference (Montgomery or standard form alike)."""
    x, y = _check(field, x, "x"), _check(field, y, "y")
    out = np.empty_like(x)
    _sub_arr(x, y, out, field.p_limbs)
    return out


def neg(field: PrimeField, x: np.ndarray) -> np.ndarray:
    """Elementwise negation."""
    x = _check(field, x, "x")
    out = np.empty_like(x)
    _neg_arr(x, out, field.p_limbs)
    return out


def inverse(field: PrimeField, x: np.ndarray) -> np.ndarray:
    """Elementwise inverse by Fermat's little theorem, one exponentiation each (0 -> 0)."""
    x = _check(field, x, "x")
    out = np.empty_like(x)
    _inv_arr(x, out, field.pm2, field.one, field.p_limbs, field.inv)
    return out


def batch_inverse(field: PrimeField, x: np.ndarray) -> np.ndarray:
    """Elementwise inverse with Montgomery's trick (one exponentiation in all; 0 -> 0)."""
    x = _check(field, x, "x")
    out = np.empty_like(x)
    batch_inverse_kernel(x, out, field.pm2, field.one, field.p_limbs, field.inv)
    return out
