"""The provider-side prover worker: proves batches of one circuit with its proving key loaded once.

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

import hashlib
import importlib
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numba
import psutil

from proving.field import FR_MODULUS
from proving.groth16.keys import Proof, ProvingKey

#: Prover backends by name: module path of a ``prove(pk, witness, *, r=None, s=None)`` function.
PROVERS = {"ref": "proving.groth16.prover_ref", "fast": "proving.groth16.prover"}


class ProverWorkerError(Exception):
    """Root of the worker's errors."""


class UnknownProver(ProverWorkerError, ValueError):
    """The prover name is not one of :data:`PROVERS` (or its module is not installed).

    Attributes:
        name: the name asked for.
    """

    def __init__(self, name: str, detail: str = "") -> None:
        super().__init__(f"unknown prover {name!r} (choose one of {sorted(PROVERS)}){detail}")
        self.name = name


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

    Raises:
        UnknownProver: ``prover`` is not available.
    """

    def __init__(self, provider: str, circuit_id: str, pk: ProvingKey, prover: str = "fast",
                 threads: int | None = 1, warmup: bool = True) -> None:
        self.provider = provider
        self.circuit_id = circuit_id
        self.pk = pk
        self.prover = prover
        self._prove = resolve_prover(prover)
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
        """Prove one witness (blinding derived from ``blinding_seed`` when given)."""
        if blinding_seed is None:
            return self._prove(self.pk, witness)
        r, s = derive_blinding(blinding_seed, job_id)
        return self._prove(self.pk, witness, r=r, s=s)

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
        if len(job_ids) != len(witnesses):
            raise ValueError(f"job_ids ({len(job_ids)}) and witnesses ({len(witnesses)}) differ in length")
        t0 = time.perf_counter()
        proofs, per_job = [], []
        for job_id, w in zip(job_ids, witnesses):
            t = time.perf_counter()
            proofs.append(self.prove_one(job_id, w, blinding_seed))
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
