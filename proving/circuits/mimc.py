"""Knowledge of a MiMC-7 preimage: the public signal is ``h = MiMC7_k(x)``, the witness ``x``.

MiMC-7 (Albrecht, Grassi, Rechberger, Roy, Tiessen, "MiMC: Efficient Encryption and
Cryptographic Hashing with Minimal Multiplicative Complexity", ASIACRYPT 2016) as circomlib's
``circuits/mimc.circom`` template ``MiMC7(nrounds)``: round ``i`` computes
``t = x + k`` (i = 0) or ``t = t7_{i-1} + k + c_i``, then ``t^7``; the output is
``t^7 + k`` of the last round. Round constants are circomlibjs's ``mimc7.getConstants``:
``c_0 = 0``, ``c_i = keccak256^(i+1)("mimc") mod r`` (keccak applied to the previous 32-byte
digest). 91 rounds is circomlib's full-strength choice; fewer rounds give smaller test
circuits (4 constraints per round).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from Crypto.Hash import keccak

from proving.field import FR_MODULUS
from proving.r1cs import R1CS, Builder

#: circomlib's round count for MiMC-7 (``mimc.circom``, ``NROUNDS`` in circomlibjs).
MIMC7_FULL_ROUNDS = 91
_SEED = b"mimc"


def _keccak256(data: bytes) -> bytes:
    h = keccak.new(digest_bits=256)
    h.update(data)
    return h.digest()


@lru_cache(maxsize=None)
def round_constants(n_rounds: int = MIMC7_FULL_ROUNDS) -> tuple[int, ...]:
    """The ``n_rounds`` MiMC-7 round constants (Fr ints) of circomlib/circomlibjs.

    Raises:
        ValueError: ``n_rounds < 1``.
    """
    if n_rounds < 1:
        raise ValueError(f"n_rounds must be >= 1, got {n_rounds}")
    out, digest = [0], _keccak256(_SEED)
    for _ in range(1, n_rounds):
        digest = _keccak256(digest)
        out.append(int.from_bytes(digest, "big") % FR_MODULUS)
    return tuple(out)


def mimc7(x: int, k: int = 0, n_rounds: int = MIMC7_FULL_ROUNDS) -> int:
    """MiMC-7 of ``x`` under key ``k`` (plain Python, the reference), an Fr int."""
    t = 0
    for i, c in enumerate(round_constants(n_rounds)):
        t = (x + k) % FR_MODULUS if i == 0 else (t + k + c) % FR_MODULUS
        t = pow(t, 7, FR_MODULUS)
    return (t + k) % FR_MODULUS


@dataclass(frozen=True)
class MiMCPreimage:
    """A built preimage circuit: the R1CS, the witness (if a preimage was given) and the hash.

    Witness layout: ``[1, h, x, t2_0, t4_0, t6_0, t7_0, ...]`` (``n_public = 1``).
    """

    r1cs: R1CS
    witness: list[int] | None
    hash: int | None


def preimage_circuit(x: int | None = None, *, n_rounds: int = MIMC7_FULL_ROUNDS, k: int = 0) -> MiMCPreimage:
    """The circuit "I know ``x`` with ``MiMC7_k(x) = h``" with public ``h``; 4 constraints per round.

    Args:
        x: the secret preimage (Fr int), or ``None`` for the constraints only.
        n_rounds: MiMC rounds (``>= 1``); 91 is circomlib's.
        k: the (public, constant) key folded into the constraints.

    Raises:
        ValueError: ``n_rounds < 1``.
    """
    constants = round_constants(n_rounds)
    h_value = None if x is None else mimc7(x, k, n_rounds)
    b = Builder()
    h = b.public("h", h_value)
    t7 = b.private("x", x)
    for i, c in enumerate(constants):
        t = t7 + k if i == 0 else t7 + (k + c)
        t2 = b.mul(t, t, f"round{i}.t2")
        t4 = b.mul(t2, t2, f"round{i}.t4")
        t6 = b.mul(t4, t2, f"round{i}.t6")
        if i < n_rounds - 1:
            t7 = b.mul(t6, t, f"round{i}.t7")
        else:
            b.constrain(t6, t, h - k, f"round{i}.out")
    return MiMCPreimage(b.build(), None if x is None else b.witness(), h_value)
