"""Batching of proof jobs: grouping, deterministic windows with a time-bound flush, adaptive size.

Pure: no Ray, no database, no clock. Every function takes the current time ``now_s`` (seconds
on the caller's monotonic clock) so the same arrivals always give the same batches; the
Ray runtime (:mod:`market.pipeline.runtime`) feeds it the wall clock.

Three pieces:

* :class:`GroupKey` -- jobs are batched only with jobs of the same circuit AND the same proving
  key (hash), since a worker proves a batch with one key loaded once.
* :class:`BatchingWindows` -- one open window per group. A window opens at the arrival of its
  first job and is flushed, in this order of precedence, when it holds ``target`` jobs
  (``"full"``), when ``now_s >= opened_s + window_s`` (``"window"``: a lone job never waits
  longer than ``window_s``), or when its most urgent job's deadline slack runs out
  (``"deadline"``). Windows are anchored at the first arrival (not at wall-clock boundaries),
  so a job's wait is bounded by ``window_s`` whatever the phase of its arrival.
* :class:`BatchSizeController` -- a model-based feedback controller. It fits the prover's
  latency as ``L(n) = overhead_s + n * per_proof_s`` from measured batches (exponentially
  weighted moving averages over the measured (n, latency) pairs), and sets the target size to
  the smallest of: the queue-driven size (the queued jobs spread over the workers, so a deep
  queue gives large batches that amortise per-batch cost and an empty one gives batches of 1),
  the latency bound (``L(n) <= target_latency_s``) and the deadline bound (``L(n)`` fits in
  the tightest deadline's slack), clamped to ``[min_batch, max_batch]``. Its measured latency
  feeds back into the next target (this is the AIMD-free "model predictive" form used by
  Clipper, Crankshaw et al., NSDI 2017, section 4.3, without its additive-increase probing).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from market.pipeline.errors import InvalidJob, PipelineConfigError


@dataclass(frozen=True)
class GroupKey:
    """What jobs must share to be proved in one batch: the circuit and its proving key's hash (hex)."""

    circuit_id: str
    pk_hash: str


@dataclass(frozen=True)
class ProofJob:
    """One proof job as the pipeline sees it.

    Attributes:
        job_id: client-chosen unique id (also the root of the idempotent payment transfer id).
        circuit_id: the registered circuit (see :class:`market.pipeline.stages.CircuitSpec`).
        pk_hash: hex sha256 of the proving key the job must be proved under.
        witness: the full witness ``w[0..n_vars)`` as Fr ints (``w[0] = 1``, public signals at
            ``1..n_public``), computed client-side as with ``snarkjs wtns calculate``.
        submitted_s: arrival time on the pipeline clock (seconds).
        deadline_s: absolute time by which the verified proof is due (seconds, same clock).
        price_wei: what the job pays the provider on verification (escrowed earlier).
        client: the paying client's account name (ledger side).
    """

    job_id: str
    circuit_id: str
    pk_hash: str
    witness: tuple[int, ...]
    submitted_s: float
    deadline_s: float
    price_wei: int = 0
    client: str = ""

    @property
    def key(self) -> GroupKey:
        """The batching group of this job."""
        return GroupKey(self.circuit_id, self.pk_hash)


def validate_job(job: ProofJob) -> None:
    """Check the fields that do not need the proving key.

    Raises:
        InvalidJob: empty ``job_id``/``circuit_id``, ``pk_hash`` not 64 hex chars, a deadline
            not after submission, a negative or float ``price_wei``, an empty witness.
    """
    if not job.job_id:
        raise InvalidJob(job.job_id, "job_id", "must be a non-empty string")
    if not job.circuit_id:
        raise InvalidJob(job.job_id, "circuit_id", "must name a registered circuit")
    if len(job.pk_hash) != 64 or any(c not in "0123456789abcdef" for c in job.pk_hash):
        raise InvalidJob(job.job_id, "pk_hash", "must be the 64-char lowercase hex sha256 of the proving key")
    if not job.deadline_s > job.submitted_s:
        raise InvalidJob(job.job_id, "deadline_s", "must be later than submitted_s")
    if not isinstance(job.price_wei, int) or isinstance(job.price_wei, bool) or job.price_wei < 0:
        raise InvalidJob(job.job_id, "price_wei", "must be a non-negative int (wei, never a float)")
    if not job.witness:
        raise InvalidJob(job.job_id, "witness", "must hold the full witness (w[0] = 1 first)")


class FlushReason(str, Enum):
    """Why a window was flushed into a batch."""

    FULL = "full"
    WINDOW = "window"
    DEADLINE = "deadline"
    DRAIN = "drain"
    REQUEUE = "requeue"


@dataclass(frozen=True)
class Batch:
    """A group of jobs proved together on one worker with one proving key.

    Attributes:
        batch_id: ``sha256(circuit_id | pk_hash | job ids)`` hex, first 32 chars: deterministic,
            so the same jobs always form the same batch id (replay, idempotency).
        key: the group.
        jobs: the jobs in arrival order.
        opened_s, flushed_s: the window's opening and flush times (seconds).
        reason: why it was flushed.
        attempt: 0 for a first dispatch, incremented on every re-auction of the batch's jobs.
    """

    batch_id: str
    key: GroupKey
    jobs: tuple[ProofJob, ...]
    opened_s: float
    flushed_s: float
    reason: FlushReason
    attempt: int = 0

    @property
    def size(self) -> int:
        """Number of jobs."""
        return len(self.jobs)


def batch_id_of(key: GroupKey, job_ids: Iterable[str], attempt: int = 0) -> str:
    """The deterministic batch id of ``job_ids`` in group ``key`` (32 hex chars)."""
    h = hashlib.sha256()
    h.update(f"{key.circuit_id}|{key.pk_hash}|{attempt}".encode())
    for jid in job_ids:
        h.update(b"|" + jid.encode())
    return h.hexdigest()[:32]


def make_batch(key: GroupKey, jobs: Sequence[ProofJob], opened_s: float, flushed_s: float,
               reason: FlushReason, attempt: int = 0) -> Batch:
    """Build a :class:`Batch` with its deterministic id."""
    return Batch(batch_id_of(key, (j.job_id for j in jobs), attempt), key, tuple(jobs),
                 opened_s, flushed_s, reason, attempt)


@dataclass(frozen=True)
class WindowPolicy:
    """Settings of the batching windows.

    Attributes:
        window_s: the longest a job waits in a window before its batch is flushed (> 0).
        deadline_margin_s: flush early when ``now_s + expected_latency_s + deadline_margin_s``
            would pass the most urgent job's deadline (covers verification and payment).
    """

    window_s: float = 0.05
    deadline_margin_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise PipelineConfigError("window_s", "must be > 0 seconds")
        if self.deadline_margin_s < 0:
            raise PipelineConfigError("deadline_margin_s", "must be >= 0 seconds")


@dataclass
class _Window:
    opened_s: float
    jobs: list[ProofJob] = field(default_factory=list)

    @property
    def min_deadline_s(self) -> float:
        return min(j.deadline_s for j in self.jobs)


class BatchingWindows:
    """Open windows, one per :class:`GroupKey`; deterministic given the calls and their ``now_s``.

    ``target`` (the batch size) is set by the caller, usually from :class:`BatchSizeController`;
    ``expected_latency_s`` is the caller's estimate of proving a batch, used by the deadline flush.
    """

    def __init__(self, policy: WindowPolicy) -> None:
        self.policy = policy
        self._open: dict[GroupKey, _Window] = {}

    def __len__(self) -> int:
        """Number of jobs waiting in open windows."""
        return sum(len(w.jobs) for w in self._open.values())

    def add(self, job: ProofJob, now_s: float, target: int, expected_latency_s: float = 0.0) -> list[Batch]:
        """Put ``job`` in its group's window; return the batches this flushed (full or urgent).

        Raises:
            PipelineConfigError: ``target < 1``.
        """
        if target < 1:
            raise PipelineConfigError("target", "batch size must be >= 1")
        win = self._open.setdefault(job.key, _Window(opened_s=now_s))
        win.jobs.append(job)
        out: list[Batch] = []
        while job.key in self._open and len(self._open[job.key].jobs) >= target:
            out.append(self._flush(job.key, now_s, FlushReason.FULL, target))
        return out + self.poll(now_s, expected_latency_s)

    def poll(self, now_s: float, expected_latency_s: float = 0.0) -> list[Batch]:
        """Flush every window whose time is up (``"window"``) or whose deadline slack ran out.

        Windows are visited in order of opening time then group, so the output is deterministic.
        """
        out = []
        for key, win in sorted(self._open.items(), key=lambda kv: (kv[1].opened_s, kv[0].circuit_id,
                                                                  kv[0].pk_hash)):
            if now_s >= win.opened_s + self.policy.window_s:
                out.append(self._flush(key, now_s, FlushReason.WINDOW))
            elif now_s + expected_latency_s + self.policy.deadline_margin_s >= win.min_deadline_s:
                out.append(self._flush(key, now_s, FlushReason.DEADLINE))
        return out

    def next_due_s(self, expected_latency_s: float = 0.0) -> float | None:
        """The earliest time at which :meth:`poll` will flush something, or None when all windows are empty."""
        dues = [min(w.opened_s + self.policy.window_s,
                    w.min_deadline_s - expected_latency_s - self.policy.deadline_margin_s)
                for w in self._open.values()]
        return min(dues) if dues else None

    def drain(self, now_s: float) -> list[Batch]:
        """Flush every open window (shutdown)."""
        keys = sorted(self._open, key=lambda k: (self._open[k].opened_s, k.circuit_id, k.pk_hash))
        return [self._flush(k, now_s, FlushReason.DRAIN) for k in keys]

    def _flush(self, key: GroupKey, now_s: float, reason: FlushReason, limit: int | None = None) -> Batch:
        win = self._open.pop(key)
        take = win.jobs if limit is None else win.jobs[:limit]
        rest = [] if limit is None else win.jobs[limit:]
        if rest:  # the target shrank: the leftovers keep their window's opening time
            self._open[key] = _Window(opened_s=win.opened_s, jobs=rest)
        return make_batch(key, take, win.opened_s, now_s, reason)


@dataclass(frozen=True)
class ControllerConfig:
    """Settings of :class:`BatchSizeController`.

    Attributes:
        min_batch, max_batch: hard bounds on the batch size (1 <= min <= max).
        target_latency_s: the proving latency of one batch the controller aims to stay under.
        ewma_alpha: weight of a new measurement in the moving averages (0 < alpha <= 1).
        prior_overhead_s, prior_per_proof_s: the latency model before any measurement.
    """

    min_batch: int = 1
    max_batch: int = 32
    target_latency_s: float = 5.0
    ewma_alpha: float = 0.3
    prior_overhead_s: float = 0.05
    prior_per_proof_s: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.min_batch <= self.max_batch:
            raise PipelineConfigError("min_batch/max_batch", "need 1 <= min_batch <= max_batch")
        if not self.target_latency_s > 0:
            raise PipelineConfigError("target_latency_s", "must be > 0 seconds")
        if not 0 < self.ewma_alpha <= 1:
            raise PipelineConfigError("ewma_alpha", "must be in (0, 1]")
        if self.prior_overhead_s < 0 or not self.prior_per_proof_s > 0:
            raise PipelineConfigError("prior_per_proof_s", "priors must be overhead >= 0, per-proof > 0")


class BatchSizeController:
    """Adaptive batch size from queue depth and measured prover latency, bounded by deadlines.

    The latency model ``L(n) = overhead_s + n * per_proof_s`` is fitted online: moving
    averages of ``n``, ``latency``, ``n^2`` and ``n * latency`` give the least-squares line
    (when the sizes seen vary), else the per-proof cost is ``(latency - overhead) / n``.
    """

    def __init__(self, config: ControllerConfig | None = None) -> None:
        self.config = config or ControllerConfig()
        self.overhead_s = self.config.prior_overhead_s
        self.per_proof_s = self.config.prior_per_proof_s
        self._m: dict[str, float] | None = None
        self.observations = 0

    def observe(self, batch_size: int, latency_s: float) -> None:
        """Feed one measured batch: ``batch_size`` proofs took ``latency_s`` seconds on a worker.

        Raises:
            PipelineConfigError: ``batch_size < 1`` or a negative latency.
        """
        if batch_size < 1 or latency_s < 0:
            raise PipelineConfigError("observe", "needs batch_size >= 1 and latency_s >= 0")
        n, y, a = float(batch_size), float(latency_s), self.config.ewma_alpha
        sample = {"n": n, "y": y, "nn": n * n, "ny": n * y}
        if self._m is None:
            self._m = sample
        else:
            self._m = {k: (1 - a) * self._m[k] + a * v for k, v in sample.items()}
        self.observations += 1
        self._refit(n, y)

    def _refit(self, n: float, y: float) -> None:
        m = self._m
        assert m is not None
        var = m["nn"] - m["n"] ** 2
        if var > 1e-6 * max(1.0, m["nn"]):
            slope = (m["ny"] - m["n"] * m["y"]) / var
            if slope > 0:
                self.per_proof_s = slope
                self.overhead_s = max(0.0, m["y"] - slope * m["n"])
                return
        self.per_proof_s = max(1e-6, (m["y"] - self.overhead_s) / m["n"]) if m["y"] > self.overhead_s \
            else max(1e-6, m["y"] / m["n"])

    def predicted_latency_s(self, batch_size: int) -> float:
        """``L(n)`` under the current model (seconds)."""
        return self.overhead_s + batch_size * self.per_proof_s

    def _max_fitting(self, budget_s: float) -> int:
        if budget_s <= self.overhead_s:
            return 0
        return int(math.floor((budget_s - self.overhead_s) / self.per_proof_s))

    def target(self, queue_depth: int, n_workers: int, min_slack_s: float | None = None) -> int:
        """The batch size to use now.

        Args:
            queue_depth: jobs waiting (in windows and in the intake queue), >= 0.
            n_workers: workers able to take a batch of this group now, >= 1.
            min_slack_s: seconds left before the most urgent waiting job's deadline (minus any
                verification margin); None when no deadline binds.

        Returns:
            ``clamp(min(ceil(queue_depth / n_workers), latency bound, deadline bound), min_batch, max_batch)``.
        """
        cfg = self.config
        by_queue = max(1, math.ceil(max(0, queue_depth) / max(1, n_workers)))
        by_latency = max(1, self._max_fitting(cfg.target_latency_s))
        size = min(by_queue, by_latency)
        if min_slack_s is not None:
            size = min(size, max(1, self._max_fitting(min_slack_s)))
        return max(cfg.min_batch, min(cfg.max_batch, size))

    def state(self) -> dict[str, float]:
        """The model's parameters (for provenance and metrics)."""
        return {"overhead_s": self.overhead_s, "per_proof_s": self.per_proof_s,
                "observations": float(self.observations)}
