"""Prover backends behind one small interface, so the market can pick the fastest a provider has.

* ``numba`` (:class:`NumbaProver`, the default, always present): :mod:`proving.groth16.prover`,
  falling back to the reference prover if the numba prover cannot be imported;
* ``reference`` (:class:`ReferenceProver`): :mod:`proving.groth16.prover_ref` (py_ecc, slow;
  the oracle);
* ``groth16py`` (:class:`Groth16pyProver`, optional): the arkworks-backed PyPI package
  ``groth16py`` (``pip install 'raymarket[groth16py]'``), which reads snarkjs zkeys and
  ``.wtns`` files and returns the 256-byte EVM proof blob
  ``[A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0, C.x, C.y]`` (big-endian words).

All return the same :class:`~proving.groth16.keys.Proof` for a key and witness (up to the
random blinding), so a proof from any of them verifies under the key's verification key.
"""

from __future__ import annotations

import importlib
import importlib.util
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from proving.errors import BackendUnavailable
from proving.formats.wtns_file import write_wtns
from proving.formats.zkey import write_zkey
from proving.groth16 import prover_ref
from proving.groth16.keys import Proof, ProvingKey

#: Backend names in order of preference.
BACKEND_NAMES = ("numba", "reference", "groth16py")
DEFAULT_BACKEND = "numba"


@runtime_checkable
class Prover(Protocol):
    """A Groth16 prover: ``name``, ``available()`` and ``prove(pk, witness) -> Proof``."""

    name: str

    def available(self) -> bool:
        """Whether this backend can run here."""
        ...

    def prove(self, pk: ProvingKey, witness: Sequence[int]) -> Proof:
        """A proof of ``witness`` (``pk.n_vars`` Fr ints, ``witness[0] = 1``) under ``pk``."""
        ...


class ReferenceProver:
    """py_ecc reference prover (:func:`proving.groth16.prover_ref.prove`)."""

    name = "reference"

    def available(self) -> bool:
        """Always ``True`` (pure Python)."""
        return True

    def prove(self, pk: ProvingKey, witness: Sequence[int]) -> Proof:
        """See :class:`Prover`."""
        return prover_ref.prove(pk, witness)


class NumbaProver:
    """The numba prover (:func:`proving.groth16.prover.prove`), the default.

    Falls back to :class:`ReferenceProver` when the numba prover cannot be imported;
    ``fallback`` then says so.
    """

    name = "numba"

    def __init__(self) -> None:
        try:
            self._module = importlib.import_module("proving.groth16.prover")
            self.fallback = False
        except ImportError:
            self._module = importlib.import_module("proving.groth16.prover_ref")
            self.fallback = True

    def available(self) -> bool:
        """Always ``True`` (falls back to the reference prover)."""
        return True

    def prove(self, pk: ProvingKey, witness: Sequence[int]) -> Proof:
        """See :class:`Prover`."""
        return self._module.prove(pk, witness)


def proof_from_evm_words(blob: bytes) -> Proof:
    """Decode a 256-byte EVM proof blob ``[A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0, C.x, C.y]``.

    Raises:
        ValueError: ``len(blob) != 256``.
    """
    if len(blob) != 256:
        raise ValueError(f"an EVM Groth16 proof blob has 256 bytes, got {len(blob)}")
    w = [int.from_bytes(blob[i : i + 32], "big") for i in range(0, 256, 32)]
    return Proof((w[0], w[1]), ((w[3], w[2]), (w[5], w[4])), (w[6], w[7]))


class Groth16pyProver:
    """Adapter for the optional PyPI package ``groth16py`` (arkworks, Rust).

    ``prove(pk, witness)`` writes the key once as a zkey (kept, with groth16py's imported key,
    in ``pk.cache``) and the witness as a ``.wtns``; :meth:`prove_files` proves straight from
    files (what the CLI uses).
    """

    name = "groth16py"
    _CACHE_KEY = "groth16py"

    def available(self) -> bool:
        """Whether ``groth16py`` with ``import_zkey`` and ``prove_wtns`` is installed."""
        if importlib.util.find_spec("groth16py") is None:
            return False
        module = importlib.import_module("groth16py")
        return hasattr(module, "import_zkey") and hasattr(module, "prove_wtns")

    def _module(self):
        if not self.available():
            raise BackendUnavailable(self.name, "pip install groth16py (or raymarket[groth16py])")
        return importlib.import_module("groth16py")

    def prove_files(self, zkey_path: str | Path, wtns_path: str | Path) -> Proof:
        """Prove from a snarkjs zkey file and a ``.wtns`` file.

        Raises:
            BackendUnavailable: groth16py is not installed.
        """
        g = self._module()
        key, _vk = g.import_zkey(str(zkey_path))
        return proof_from_evm_words(bytes(g.prove_wtns(key, str(wtns_path))))

    def prove(self, pk: ProvingKey, witness: Sequence[int]) -> Proof:
        """See :class:`Prover`.

        Raises:
            BackendUnavailable: groth16py is not installed.
        """
        g = self._module()
        cached = pk.cache.get(self._CACHE_KEY)
        if cached is None:
            workdir = tempfile.TemporaryDirectory(prefix="groth16py-")
            zkey = Path(workdir.name) / "key.zkey"
            write_zkey(zkey, pk)
            cached = (workdir, g.import_zkey(str(zkey))[0])
            pk.cache[self._CACHE_KEY] = cached
        workdir, key = cached
        wtns = Path(workdir.name) / "witness.wtns"
        write_wtns(wtns, witness)
        return proof_from_evm_words(bytes(g.prove_wtns(key, str(wtns))))


def get_backend(name: str = DEFAULT_BACKEND) -> Prover:
    """The backend called ``name`` (one of :data:`BACKEND_NAMES`).

    Raises:
        ValueError: unknown name.
        BackendUnavailable: known but not installed here.
    """
    factories: dict[str, Callable[[], Prover]] = {
        "numba": NumbaProver, "reference": ReferenceProver, "groth16py": Groth16pyProver,
    }
    if name not in factories:
        raise ValueError(f"unknown prover backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    backend = factories[name]()
    if not backend.available():
        raise BackendUnavailable(name, "pip install groth16py (or raymarket[groth16py])")
    return backend


def available_backends() -> list[str]:
    """Names of the backends that can run here, in order of preference."""
    out = []
    for name in BACKEND_NAMES:
        try:
            get_backend(name)
            out.append(name)
        except BackendUnavailable:
            pass
    return out
