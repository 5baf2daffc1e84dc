"""The provider-side prover worker: proves batches of one circuit with its proving key loaded once.

Besides its circuit's key it keeps other prepared keys by hash in a memory-bounded LRU cache
(:class:`PreparedKeyCache`), so that a key is loaded and prepared once per worker, not per job.

A plain class (Ray Serve style): :mod:`market.pipeline.workers` makes it a Ray actor in one
place (``ray.remote(**options)(ProverWorker)``) pinned to the provider's node; tests and
replay use it directly in-process, which is also how a batch is re-proved bit for bit.

Blinding: Groth16 needs fresh random ``r, s`` per proof for zero-knowledge. With a
``blinding_seed`` the worker derives them as ``r = H(seed | job_id | "r") mod q`` (likewise
``s``; ``H`` = sha256, zero mapped to 1), so the coordinator, knowing the seed, can replay the
batch and get identical proofs (see :mod:`market.pipeline.provenance`). Without a seed they
come from :mod:`secrets`.

It needs nothing of the market (only :mod:`proving`), so a provider can run it on its own
cluster; the pipeline gets the class injected (``ProvingPipeline(..., worker_cls=ProverWorker)``).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import importlib
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numba
import numpy as np
import psutil

from providers.errors import ProviderError
from proving.field import FQ_MODULUS, FR_MODULUS
from proving.formats.zkey import parse_zkey
from proving.groth16 import prover as fast_prover
from proving.groth16.keys import Proof, ProvingKey

#: Prover backends by name: module path of a ``prove(pk, witness, *, r=None, s=None)`` function.
PROVERS = {"ref": "proving.groth16.prover_ref", "fast": "proving.groth16.prover"}


class ProverWorkerError(ProviderError):
    """Root of the worker's errors."""


class UnknownProver(ProverWorkerError, ValueError):
    """The prover name is not one of :data:`PROVERS` (or its module is not installed).

    Attributes:
        name: the name asked for.
    """

    def __init__(self, name: str, detail: str = "") -> None:
        super().__init__(f"unknown prover {name!r} (choose one of {sorted(PROVERS)}){detail}")
        self.name = name


class KeyNotLoaded(ProverWorkerError, LookupError):
    """The worker holds no proving key of this hash (never loaded, or evicted): send it with
    :meth:`ProverWorker.load_key`, then retry.

    Attributes:
        key_hash: the hash asked for.
    """

    def __init__(self, key_hash: str) -> None:
        super().__init__(f"no proving key {key_hash} loaded on this worker: load_key it first")
        self.key_hash = key_hash


class KeyHashMismatch(ProverWorkerError, ValueError):
    """The zkey bytes sent do not hash (sha256) to the key hash they were sent under.

    Attributes:
        key_hash: the hash claimed; actual: the sha256 of the bytes.
    """

    def __init__(self, key_hash: str, actual: str) -> None:
        super().__init__(f"zkey sent as {key_hash} hashes to {actual}")
        self.key_hash, self.actual = key_hash, actual


def resolve_prover(name: str) -> Callable[..., Proof]:
    """The ``prove`` function of backend ``name``.

    Raises:
        UnknownProver: not a known name, or its module cannot be imported.
    """
    if name not in PROVERS:
        raise UnknownProver(name)
    try:
        return importlib.import_module(PROVERS[name]).prove
    except ImportError as exc:
        raise UnknownProver(name, f": {exc}") from exc


def derive_blinding(seed_hex: str, job_id: str) -> tuple[int, int]:
    """The blinding scalars ``(r, s)`` of ``job_id`` under a batch seed (non-zero Fr ints)."""
    def h(tag: str) -> int:
        v = int.from_bytes(hashlib.sha256(f"{seed_hex}|{job_id}|{tag}".encode()).digest(), "big") % FR_MODULUS
        return v or 1

    return h("r"), h("s")


def set_prover_threads(threads: int) -> None:
    """Limit numba's parallel kernels in this process to ``threads`` threads (at most the pool size)."""
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


def hardware_info() -> dict[str, Any]:
    """What this worker runs on: cpu model, logical cores, memory bytes, machine, node host name."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = int(psutil.virtual_memory().total)
    return {"cpu_model": model, "logical_cores": os.cpu_count() or 0, "memory_bytes": mem,
            "machine": platform.machine(), "host": platform.node(), "gpu": None}


# ---- prepared proving keys, by hash ----------------------------------------------------------

#: Default memory bound of a worker's prepared-key cache (bytes).
DEFAULT_KEY_CACHE_BYTES = 2 * 1024**3

_INT_FQ = sys.getsizeof(FQ_MODULUS - 1)  # one 254-bit coordinate
_G1_BYTES = sys.getsizeof((0, 0)) + 2 * _INT_FQ + 8  # a point tuple and its list slot
_G2_BYTES = sys.getsizeof((0, 0)) + 2 * (sys.getsizeof((0, 0)) + 2 * _INT_FQ) + 8
_COEF_BYTES = 3 * (sys.getsizeof(2**20) + 8) + _INT_FQ + 8  # matrix, constraint, signal, value


def prepared_key_nbytes(pk: ProvingKey) -> int:
    """Estimated memory of a proving key and its prover's precomputation (bytes).

    A key built in memory is counted from its sizes (G1 points, G2 points, coefficients, at CPython's
    object sizes); a key read from a zkey holds its points as limb arrays (``MontPoints``), counted exactly;
    every numpy array the backend keeps in ``pk.cache`` (e.g. the numba prover's limb arrays) is counted
    exactly (``nbytes``), each array once (the prover shares the zkey's arrays).
    """
    seen: set[int] = set()

    def array_bytes(a: np.ndarray) -> int:  # a zkey's arrays are shared with the prover's: count each once
        if id(a) in seen:
            return 0
        seen.add(id(a))
        return int(a.nbytes)

    total = (len(pk.vk.ic) + 3) * _G1_BYTES + 4 * _G2_BYTES
    for q in (pk.a_query, pk.b_g1_query, pk.c_query, pk.h_query, pk.b_g2_query):
        mont = getattr(q, "mont", None)  # MontPoints (read from a zkey): the limb array is the whole key
        if isinstance(mont, np.ndarray):
            total += array_bytes(mont)
        else:
            total += len(q) * (_G2_BYTES if q is pk.b_g2_query else _G1_BYTES)
    coef = getattr(pk.coef_value, "mont", None)
    total += array_bytes(coef) if isinstance(coef, np.ndarray) else len(pk.coef_value) * _COEF_BYTES
    for prepared in pk.cache.values():
        if dataclasses.is_dataclass(prepared):
            prepared = [getattr(prepared, f.name) for f in dataclasses.fields(prepared)]
        if isinstance(prepared, np.ndarray):
            prepared = [prepared]
        if isinstance(prepared, (list, tuple)):
            total += sum(array_bytes(a) for a in prepared if isinstance(a, np.ndarray))
        elif isinstance(prepared, (bytes, bytearray)):
            total += len(prepared)
    return total


def prepare_key(pk: ProvingKey, prover: str) -> ProvingKey:
    """Do backend ``prover``'s one-off precomputation of ``pk`` now (the numba prover's limb arrays,
    kept in ``pk.cache``); the reference prover has none. Returns ``pk``.

    Raises:
        UnknownProver: ``prover`` is not one of :data:`PROVERS`.
        proving.errors.MalformedProof: ``pk`` has inconsistent sizes.
    """
    if prover not in PROVERS:
        raise UnknownProver(prover)
    if prover == "fast":
        fast_prover.prepare(pk)
    return pk


@dataclass
class KeyCacheStats:
    """Counters of a :class:`PreparedKeyCache`: hits, misses (loads), evictions; keys and bytes held now."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    keys: int = 0
    nbytes: int = 0


class PreparedKeyCache:
    """Prepared proving keys by hash, least recently used first out once over ``max_bytes``.

    A provider loads and prepares a key once and proves every job of that key with it
    (issue 13: "a key is loaded and prepared once per provider, not per job"). Thread-safe; the
    load of a missing key runs outside the lock, so a slow load does not block hits on other keys
    (two threads missing the same key at once may both load it; one copy is kept).

    Args:
        max_bytes: memory bound (bytes, by :func:`prepared_key_nbytes`). The key just used is
            always kept, even alone over the bound (it is needed now); older ones are evicted.
        prover: backend whose precomputation is done on load (:func:`prepare_key`).

    Raises:
        ValueError: ``max_bytes < 1``; UnknownProver: ``prover`` unknown.
    """

    def __init__(self, max_bytes: int = DEFAULT_KEY_CACHE_BYTES, prover: str = "fast") -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1 (got {max_bytes})")
        if prover not in PROVERS:
            raise UnknownProver(prover)
        self.max_bytes = max_bytes
        self.prover = prover
        self._keys: collections.OrderedDict[str, tuple[ProvingKey, int]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._stats = KeyCacheStats()

    def lookup(self, key_hash: str) -> ProvingKey | None:
        """The prepared key of ``key_hash`` (now the most recently used), or None (a miss)."""
        with self._lock:
            hit = self._keys.get(key_hash)
            if hit is None:
                self._stats.misses += 1
                return None
            self._keys.move_to_end(key_hash)
            self._stats.hits += 1
            return hit[0]

    def get(self, key_hash: str, load: Callable[[], ProvingKey]) -> ProvingKey:
        """The prepared key of ``key_hash``; on a miss ``load()`` it (e.g. read the zkey), prepare it
        and keep it, evicting the least recently used keys over the bound.

        Raises:
            whatever ``load`` or :func:`prepare_key` raises (nothing is cached then).
        """
        pk = self.lookup(key_hash)
        return pk if pk is not None else self.put(key_hash, load())

    def put(self, key_hash: str, pk: ProvingKey) -> ProvingKey:
        """Keep a loaded key under ``key_hash`` (prepared here if it is not yet), evicting the least
        recently used keys over the bound; returns the kept key (the first copy if already there)."""
        prepare_key(pk, self.prover)
        size = prepared_key_nbytes(pk)
        with self._lock:
            if key_hash in self._keys:  # loaded twice concurrently: keep the first copy
                self._keys.move_to_end(key_hash)
                return self._keys[key_hash][0]
            self._keys[key_hash] = (pk, size)
            self._stats.nbytes += size
            while self._stats.nbytes > self.max_bytes and len(self._keys) > 1:
                _, (_, freed) = self._keys.popitem(last=False)
                self._stats.nbytes -= freed
                self._stats.evictions += 1
            self._stats.keys = len(self._keys)
            return pk

    def __contains__(self, key_hash: object) -> bool:
        with self._lock:
            return key_hash in self._keys

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    def hashes(self) -> list[str]:
        """The cached key hashes, least recently used first."""
        with self._lock:
            return list(self._keys)

    def stats(self) -> KeyCacheStats:
        """A copy of the counters."""
        with self._lock:
            return dataclasses.replace(self._stats)


@dataclass
class ProvedBatch:
    """What a worker returns for a batch.

    Attributes:
        batch_id: the batch.
        provider: who proved it; hardware: :func:`hardware_info` of the worker.
        prover: backend name; code: the worker's library versions.
        proofs: one proof per job, in batch order.
        prove_s: wall time of the whole batch (seconds); per_job_s: each job's proving time.
    """

    batch_id: str
    provider: str
    prover: str
    proofs: list[Proof]
    prove_s: float
    per_job_s: list[float]
    hardware: dict[str, Any] = field(default_factory=dict)
    code: dict[str, str] = field(default_factory=dict)


class ProverWorker:
    """Proves batches of one circuit; the proving key is given once at construction and kept.

    Args:
        provider: the provider's name (``provider=<name>`` on its Ray node).
        circuit_id: the circuit this worker serves.
        pk: the proving key (a Ray object reference resolves to it before ``__init__``).
        prover: backend name in :data:`PROVERS` (``"ref"`` py_ecc, ``"fast"`` numba).

        threads: numba threads this worker proves with (``numba.set_num_threads``); match it to
            the CPUs the worker reserves: more threads than cores makes numba's parallel kernels
            ~10x slower here (measured: 14-22 ms vs 150 ms per 4-round MiMC proof on a loaded
            2-core machine). None leaves numba's default (all cores).
        warmup: prove one throw-away witness at start (loads the numba kernels and the key's limb
            arrays once, so the first real batch does not pay for them); skipped for ``"ref"``.
        key_cache_bytes: memory bound of the worker's other keys (:class:`PreparedKeyCache`, by
            hash: :meth:`load_key`, :meth:`prove_batch_with`); the constructor's key is kept apart.

    Raises:
        UnknownProver: ``prover`` is not available.
    """

    def __init__(self, provider: str, circuit_id: str, pk: ProvingKey, prover: str = "fast",
                 threads: int | None = 1, warmup: bool = True,
                 key_cache_bytes: int = DEFAULT_KEY_CACHE_BYTES) -> None:
        self.provider = provider
        self.circuit_id = circuit_id
        self.pk = pk
        self.prover = prover
        self._prove = resolve_prover(prover)
        self.keys = PreparedKeyCache(key_cache_bytes, prover)
        self._hardware = hardware_info()
        self._code = _worker_code()
        self.batches_proved = 0
        self.warmup_s = 0.0
        self.threads = threads
        if threads is not None and prover != "ref":
            set_prover_threads(threads)
        if warmup and prover != "ref":
            t = time.perf_counter()
            self._prove(pk, [1] + [0] * (pk.n_vars - 1), r=1, s=1)  # any witness: proving does not check it
            self.warmup_s = time.perf_counter() - t

    def ping(self) -> str:
        """Liveness probe: the provider's name."""
        return self.provider

    def hardware(self) -> dict[str, Any]:
        """:func:`hardware_info` of this worker."""
        return dict(self._hardware)

    def benchmark(self, n_proofs: int = 3) -> float:
        """Prove ``n_proofs`` throw-away witnesses with the loaded key; returns proofs per second."""
        dummy = [1] + [0] * (self.pk.n_vars - 1)
        t = time.perf_counter()
        for i in range(max(1, n_proofs)):
            self._prove(self.pk, dummy, r=i + 1, s=i + 2)
        return max(1, n_proofs) / max(time.perf_counter() - t, 1e-9)

    def prove_one(self, job_id: str, witness: Sequence[int], blinding_seed: str | None) -> Proof:
        """Prove one witness with the constructor's key (blinding derived from ``blinding_seed`` when given)."""
        return self._prove_with(self.pk, job_id, witness, blinding_seed)

    def _prove_with(self, pk: ProvingKey, job_id: str, witness: Sequence[int], blinding_seed: str | None) -> Proof:
        if blinding_seed is None:
            return self._prove(pk, witness)
        r, s = derive_blinding(blinding_seed, job_id)
        return self._prove(pk, witness, r=r, s=s)

    def prove_batch(self, batch_id: str, job_ids: Sequence[str], witnesses: Sequence[Sequence[int]],
                    blinding_seed: str | None = None) -> ProvedBatch:
        """Prove every witness of a batch with the loaded key.

        Args:
            batch_id: the batch's id (echoed back).
            job_ids, witnesses: parallel sequences, one per job.
            blinding_seed: hex seed for derived blinding (replayable), or None for fresh randomness.

        Returns:
            A :class:`ProvedBatch` with the proofs in order.

        Raises:
            ValueError: ``job_ids`` and ``witnesses`` differ in length; the prover's input errors.
        """
        return self._batch(batch_id, job_ids, witnesses, lambda j, w: self.prove_one(j, w, blinding_seed))

    def has_key(self, key_hash: str) -> bool:
        """This worker holds the prepared key of ``key_hash`` (the coordinator sends it otherwise)."""
        return key_hash in self.keys

    def load_key(self, key_hash: str, zkey: bytes) -> bool:
        """Parse, prepare and cache the snarkjs zkey ``zkey`` under its sha256 ``key_hash``, once:
        False (nothing parsed) when it is cached already, True when loaded by this call.

        Raises:
            KeyHashMismatch: ``sha256(zkey) != key_hash``; proving.errors.FormatError: not a Groth16 zkey.
        """
        if key_hash in self.keys:
            return False
        actual = hashlib.sha256(zkey).hexdigest()
        if actual != key_hash:
            raise KeyHashMismatch(key_hash, actual)
        self.keys.put(key_hash, parse_zkey(zkey))
        return True

    def prove_batch_with(self, key_hash: str, batch_id: str, job_ids: Sequence[str],
                         witnesses: Sequence[Sequence[int]], blinding_seed: str | None = None) -> ProvedBatch:
        """:meth:`prove_batch` with the cached key of ``key_hash`` instead of the constructor's.

        Raises:
            KeyNotLoaded: no such key here (never loaded or evicted): :meth:`load_key` it, then retry.
            ValueError: as :meth:`prove_batch`.
        """
        pk = self.keys.lookup(key_hash)
        if pk is None:
            raise KeyNotLoaded(key_hash)
        return self._batch(batch_id, job_ids, witnesses, lambda j, w: self._prove_with(pk, j, w, blinding_seed))

    def key_cache_stats(self) -> KeyCacheStats:
        """Hits, misses, evictions, keys and bytes of the worker's key cache."""
        return self.keys.stats()

    def _batch(self, batch_id: str, job_ids: Sequence[str], witnesses: Sequence[Sequence[int]],
               prove: Callable[[str, Sequence[int]], Proof]) -> ProvedBatch:
        if len(job_ids) != len(witnesses):
            raise ValueError(f"job_ids ({len(job_ids)}) and witnesses ({len(witnesses)}) differ in length")
        t0 = time.perf_counter()
        proofs, per_job = [], []
        for job_id, w in zip(job_ids, witnesses):
            t = time.perf_counter()
            proofs.append(prove(job_id, w))
            per_job.append(time.perf_counter() - t)
        self.batches_proved += 1
        return ProvedBatch(batch_id, self.provider, self.prover, proofs, time.perf_counter() - t0, per_job,
                           self._hardware, self._code)


def _worker_code() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("raymarket", "py_ecc", "numba"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out
