"""Proving keys on disk: snarkjs Groth16 ``.zkey`` files (:mod:`proving.formats.zkey`), never pickles.

One file format for every cached or stored proving key of the project (dev keys of the exchange
and the provider agent, the pipeline's provenance): readable by ``snarkjs`` and by
:func:`proving.formats.zkey.read_zkey`, and safe to load from a directory someone else can write
(a pickle runs code when loaded). Shared by ``market`` and ``providers`` (both may import
``market.core``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from proving.formats.zkey import read_zkey, zkey_bytes
from proving.groth16.keys import ProvingKey


def write_proving_key(path: str | Path, pk: ProvingKey) -> Path:
    """Write ``pk`` as a zkey at ``path`` atomically (temp file + rename; parents created); returns the path.

    Raises:
        OSError: the directory cannot be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(zkey_bytes(pk))
    os.replace(tmp, path)
    return path


def load_or_build_proving_key(path: str | Path, build: Callable[[], ProvingKey]) -> ProvingKey:
    """The proving key cached at ``path`` (a ``.zkey``); when absent, ``build()`` it and write it there first.

    Args:
        path: the cache file, e.g. ``<data_dir>/keys/mimc7-10-<seed>.zkey``.
        build: makes the key (e.g. ``lambda: dev_setup(r1cs, seed=...)``); called only on a miss.

    Raises:
        proving.errors.FormatError: the file exists but is not a Groth16 zkey (delete it to rebuild).
        OSError: the file cannot be read or written.
    """
    path = Path(path)
    if path.exists():
        return read_zkey(path)
    pk = build()
    write_proving_key(path, pk)
    return pk
