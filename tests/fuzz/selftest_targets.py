"""A target that misbehaves on purpose, to test the fuzz engine itself: by the first byte of
the input mod 4, a case is accepted, rejected cleanly, killed by SIGSEGV, or hangs."""

from __future__ import annotations

import os
import signal
import time

from proving.errors import FormatError
from tests.fuzz.engine import Target, register


def _misbehave(data: bytes) -> None:
    kind = data[0] % 4
    if kind == 1:
        raise FormatError("<selftest>", "clean rejection")
    if kind == 2:
        os.kill(os.getpid(), signal.SIGSEGV)
    if kind == 3:
        time.sleep(3600)


def _unexpected(data: bytes) -> None:
    if data[0] % 2:
        raise KeyError("not a project error")


def _mutate(rng, data: bytes) -> bytes:
    return bytes([rng.randrange(256)])


MISBEHAVING = register(Target("selftest_misbehaving", lambda: [b"\x00"], _mutate, _misbehave))
UNEXPECTED = register(Target("selftest_unexpected", lambda: [b"\x00"], _mutate, _unexpected))
