"""Stage logic of the pipeline, without Ray: intake checks, bounded queues, verification with
bisection, and the payment sink.

The pipeline is ``intake (validate, group) -> prove -> verify -> pay and attest``; each arrow is a
:class:`BoundedQueue`. A full queue blocks its producer (up to a timeout, then
:class:`~market.pipeline.errors.QueueFull`), so a slow stage pushes back on the one before it,
down to :meth:`market.pipeline.runtime.ProvingPipeline.submit`, instead of piling up memory.

Verification before payment: proved batches are merged into larger verification batches of the
same verifying key (hierarchical batching) and checked with one random-linear-combination batch
verification (``proving.groth16.batch.batch_verify``); when it fails, :func:`verify_with_bisection`
splits the batch in halves recursively, so ``k`` bad proofs among ``n`` cost
``O(k log n)`` batch checks, and every good proof is still accepted (the bisection of Gensyn's
verification game and of batch-verification fault finding, Law & Matt, "Finding Invalid
Signatures in Pairing-Based Batches", IMA 2007).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

from market.core import ids
from market.pipeline.batching import ProofJob, validate_job
from market.pipeline.errors import InvalidJob, QueueFull, UnknownCircuit
from market.pipeline.metrics import PipelineMetrics
from proving.groth16.batch import find_invalid

T = TypeVar("T")


@dataclass(frozen=True)
class CircuitSpec:
    """A circuit the pipeline accepts jobs for.

    Attributes:
        circuit_id: its name in jobs.
        pk: the :class:`proving.groth16.keys.ProvingKey` (its ``vk`` verifies the proofs).
        pk_hash: :func:`market.pipeline.provenance.pk_hash` of ``pk``.
        check_witness: raises when a witness does not satisfy the circuit (e.g.
            ``functools.partial(proving.r1cs.check_witness, r1cs)``); None skips the check
            (then a bad witness surfaces as a bad proof and is blamed on the provider).
        n_public: number of public signals (``witness[1 : 1 + n_public]``).
    """

    circuit_id: str
    pk: Any
    pk_hash: str
    check_witness: Callable[[Sequence[int]], None] | None = None

    @property
    def n_public(self) -> int:
        """Number of public signals of the circuit."""
        return int(self.pk.n_public)

    def public_signals(self, witness: Sequence[int]) -> list[int]:
        """The public signals a verifier checks: ``witness[1 : 1 + n_public]``."""
        return list(witness[1:1 + self.n_public])


def intake_check(job: ProofJob, circuits: dict[str, CircuitSpec]) -> CircuitSpec:
    """Validate a job at intake; return its circuit.

    Raises:
        InvalidJob: a bad field (see :func:`market.pipeline.batching.validate_job`), a witness of
            the wrong length / range, or a witness that does not satisfy the circuit.
        UnknownCircuit: the circuit is not registered or ``pk_hash`` is not its key's hash.
    """
    validate_job(job)
    spec = circuits.get(job.circuit_id)
    if spec is None:
        raise UnknownCircuit(job.job_id, "circuit_id", f"{job.circuit_id!r} is not registered "
                             f"(registered: {sorted(circuits)})")
    if job.pk_hash != spec.pk_hash:
        raise UnknownCircuit(job.job_id, "pk_hash", f"is not the hash of {job.circuit_id!r}'s proving key "
                             f"({spec.pk_hash})")
    if len(job.witness) != spec.pk.n_vars or job.witness[0] != 1:
        raise InvalidJob(job.job_id, "witness", f"needs {spec.pk.n_vars} values starting with 1")
    if spec.check_witness is not None:
        try:
            spec.check_witness(job.witness)
        except Exception as exc:  # the circuit's own error type names the constraint
            raise InvalidJob(job.job_id, "witness", f"does not satisfy the circuit: {exc}") from exc
    return spec


class BoundedQueue(Generic[T]):
    """A FIFO of at most ``capacity`` items that reports its depth to :class:`PipelineMetrics`.

    ``put`` blocks while full (back-pressure) and raises :class:`QueueFull` after ``timeout_s``.
    """

    def __init__(self, stage: str, capacity: int, metrics: PipelineMetrics) -> None:
        self.stage = stage
        self.capacity = capacity
        self._q: queue.Queue[T] = queue.Queue(maxsize=capacity)
        self._metrics = metrics
        metrics.set_capacity(stage, capacity)

    def put(self, item: T, timeout_s: float | None = None) -> None:
        """Append ``item``, waiting up to ``timeout_s`` for room (None: forever).

        Raises:
            QueueFull: still full after ``timeout_s``.
        """
        try:
            self._q.put(item, timeout=timeout_s)
        except queue.Full:
            raise QueueFull(self.stage, self.capacity) from None
        self._metrics.queue_depth(self.stage, self._q.qsize())

    def get(self, timeout_s: float) -> T | None:
        """The oldest item, or None after ``timeout_s`` with nothing."""
        try:
            item = self._q.get(timeout=timeout_s)
        except queue.Empty:
            return None
        self._metrics.queue_depth(self.stage, self._q.qsize())
        return item

    def get_nowait(self) -> T | None:
        """The oldest item, or None when empty."""
        return self.get(0.0) if not self._q.empty() else None

    def __len__(self) -> int:
        return self._q.qsize()


def verify_with_bisection(
    vk: Any,
    publics: Sequence[Sequence[int]],
    proofs: Sequence[Any],
    batch_verify: Callable[[Any, Sequence[Sequence[int]], Sequence[Any]], None],
    verify_one: Callable[[Any, Sequence[int], Any], None] | None = None,
) -> list[bool]:
    """Which proofs are valid, found with batched checks and bisection on failure.

    Args:
        vk: the verifying key shared by every proof.
        publics, proofs: parallel sequences.
        batch_verify: raises when any proof of the (sub)batch is invalid (any exception).
        verify_one: single-proof check used on singletons (defaults to ``batch_verify`` on one).

    Returns:
        ``ok[i]`` True iff proof ``i`` passed.
    """
    ok = [False] * len(proofs)

    def check(idx: list[int]) -> bool:
        try:
            if len(idx) == 1 and verify_one is not None:
                verify_one(vk, publics[idx[0]], proofs[idx[0]])
            else:
                batch_verify(vk, [publics[i] for i in idx], [proofs[i] for i in idx])
        except Exception:  # noqa: BLE001 - any failure (malformed, pairing) marks the subset bad
            return False
        return True

    def walk(idx: list[int]) -> None:
        if not idx:
            return
        if check(idx):
            for i in idx:
                ok[i] = True
        elif len(idx) > 1:
            mid = len(idx) // 2
            walk(idx[:mid])
            walk(idx[mid:])

    walk(list(range(len(proofs))))
    return ok


def find_invalid_proofs(vk: Any, publics: Sequence[Sequence[int]], proofs: Sequence[Any]) -> dict[int, str]:
    """Positions of the invalid proofs of a verification batch, with the reason of each.

    Uses :func:`proving.groth16.batch.find_invalid`: one random-linear-combination check of the
    whole batch; on failure a bisection that reuses each proof's Miller loop.

    Returns:
        ``{index: reason}``; empty when every proof is valid.
    """
    return {i: f"{type(e).__name__}: {e}" for i, e in find_invalid(vk, publics, proofs).items()}


class BatchVerifier:
    """Market-side verification worker: finds the invalid proofs of a chunk (plain class; the
    runtime makes it a Ray actor on the coordinator's node so that several chunks of one
    verification batch are checked in parallel, each with its own random linear combination).

    Args:
        vks: the verifying key of each circuit, by circuit id (loaded once).
    """

    def __init__(self, vks: dict[str, Any]) -> None:
        self.vks = dict(vks)

    def find_invalid(self, circuit_id: str, publics: Sequence[Sequence[int]], proofs: Sequence[Any]) -> dict[int, str]:
        """:func:`find_invalid_proofs` under ``circuit_id``'s key (indices local to the chunk)."""
        return find_invalid_proofs(self.vks[circuit_id], publics, proofs)


def chunk_bounds(n: int, parts: int, min_chunk: int = 4) -> list[tuple[int, int]]:
    """Split ``range(n)`` into at most ``parts`` contiguous ``(start, stop)`` chunks of at least
    ``min_chunk`` items (fewer chunks when ``n`` is small), sizes differing by at most one."""
    k = max(1, min(parts, n // max(1, min_chunk)))
    base, extra = divmod(n, k)
    out, start = [], 0
    for i in range(k):
        stop = start + base + (1 if i < extra else 0)
        out.append((start, stop))
        start = stop
    return out


class OutcomeStatus(str, Enum):
    """Where a job ended up in the pipeline."""

    PENDING = "pending"
    PAID = "paid"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass
class JobOutcome:
    """The pipeline's view of one job.

    Attributes:
        status: see :class:`OutcomeStatus`; error: why it was rejected or failed.
        provider: who delivered the verified proof; batch_id: the batch it was proved in.
        proof: the verified proof; attempts: dispatches so far (> 1 after re-auction).
        failed_providers: providers that crashed or delivered a bad proof for it.
        completed_s: when it was paid (pipeline clock).
    """

    job: ProofJob
    status: OutcomeStatus = OutcomeStatus.PENDING
    error: str | None = None
    provider: str | None = None
    batch_id: str | None = None
    proof: Any = None
    attempts: int = 0
    failed_providers: list[str] = field(default_factory=list)
    completed_s: float | None = None


@dataclass(frozen=True)
class VerifiedJob:
    """A job whose proof passed verification, on its way to payment and attestation.

    Attributes:
        job: the job; provider: who proved it; batch_id: its prove batch;
        verify_batch_id: the verification batch (the next level of the hierarchy);
        proof: the proof; proof_sha256: its canonical hash (the attested result hash).
    """

    job: ProofJob
    provider: str
    batch_id: str
    verify_batch_id: str
    proof: Any
    proof_sha256: str


class Payments(Protocol):
    """Where the pay stage moves money. Implementations must be idempotent per job id."""

    def pay(self, job: ProofJob, provider: str, proof_sha256: str, batch_id: str) -> bool:
        """Release ``job``'s escrow to ``provider``; True if paid now, False if it was already paid."""

    def slash(self, job: ProofJob, provider: str, batch_id: str, reason: str) -> bool:
        """Slash ``provider`` for a bad proof of ``job``; True if slashed now, False if already slashed."""

    def refund(self, job: ProofJob, reason: str) -> bool:
        """Return a rejected or failed job's escrow to its client; True if refunded now."""


class InMemoryPayments:
    """A :class:`Payments` that records transfers in memory with idempotent ids (benchmarks, demos).

    Transfer ids are ``pay:<job_id>``, ``slash:<job_id>:<provider>`` and ``void:<job_id>``: paying a job twice is a
    no-op, which :attr:`duplicate_attempts` counts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.transfers: dict[str, dict[str, Any]] = {}
        self.duplicate_attempts = 0

    def _record(self, transfer_id: str, entry: dict[str, Any]) -> bool:
        with self._lock:
            if transfer_id in self.transfers:
                self.duplicate_attempts += 1
                return False
            self.transfers[transfer_id] = entry
            return True

    def pay(self, job: ProofJob, provider: str, proof_sha256: str, batch_id: str) -> bool:
        """Record the payment ``pay:<job_id>`` of ``job.price_wei`` to ``provider``."""
        return self._record(ids.payment_id(job.job_id), {"kind": "pay", "job_id": job.job_id, "provider": provider,
                                                  "amount_wei": job.price_wei, "batch_id": batch_id,
                                                  "result": proof_sha256})

    def slash(self, job: ProofJob, provider: str, batch_id: str, reason: str) -> bool:
        """Record the slash ``slash:<job_id>:<provider>``."""
        return self._record(ids.slash_id(job.job_id, provider), {"kind": "slash", "job_id": job.job_id,
                                                               "provider": provider, "batch_id": batch_id,
                                                               "reason": reason})

    def refund(self, job: ProofJob, reason: str) -> bool:
        """Record the refund ``void:<job_id>``."""
        return self._record(ids.void_id(job.job_id), {"kind": "refund", "job_id": job.job_id, "reason": reason})

    def paid_job_ids(self) -> list[str]:
        """Ids of the paid jobs."""
        with self._lock:
            return [t["job_id"] for t in self.transfers.values() if t["kind"] == "pay"]

    def slashed(self) -> list[tuple[str, str]]:
        """``(job_id, provider)`` of every slash."""
        with self._lock:
            return [(t["job_id"], t["provider"]) for t in self.transfers.values() if t["kind"] == "slash"]
