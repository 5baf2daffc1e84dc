"""The state the pipeline's stage threads share: job outcomes, re-auction, batch sizing, wiring.

* :class:`JobBook` -- every submitted job's :class:`~market.pipeline.stages.JobOutcome`, under one
  condition variable: registering, finishing (with the refund of a rejected or failed job),
  counting dispatches, re-auctioning a batch's jobs away from a provider, waiting for outcomes.
* :class:`Sizing` -- the adaptive batch-size controllers (one per circuit) and the backlog they
  size for (jobs past intake and not yet dispatched), under one lock.
* :class:`StageContext` -- what every stage is wired with (settings, queues, the shared parts).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from market.pipeline.batching import Batch, BatchSizeController, ControllerConfig, FlushReason, ProofJob, make_batch
from market.pipeline.errors import InvalidJob, QueueFull, StageCrashed
from market.pipeline.metrics import PipelineMetrics
from market.pipeline.provenance import ProvenanceStore
from market.pipeline.settings import PipelineSettings
from market.pipeline.stages import BoundedQueue, CircuitSpec, JobOutcome, OutcomeStatus, Payments

log = logging.getLogger(__name__)

#: Poll interval of the stage loops (seconds).
TICK_S = 0.005


class Sizing:
    """Batch sizing: one :class:`~market.pipeline.batching.BatchSizeController` per circuit and the
    backlog (jobs past intake, not yet dispatched: windows, prove queue, retries), under one lock."""

    def __init__(self, circuit_ids: Iterable[str], config: ControllerConfig) -> None:
        self.controllers = {cid: BatchSizeController(config) for cid in circuit_ids}
        self.backlog = 0
        self._lock = threading.Lock()

    def admit(self, circuit_id: str, queued: int, n_workers: int, slack_s: float) -> tuple[int, float]:
        """Count one admitted job in the backlog; its circuit's target batch size and that size's
        predicted latency (seconds) for ``queued`` jobs still in the intake queue."""
        with self._lock:
            ctl = self.controllers[circuit_id]
            self.backlog += 1
            target = ctl.target(queued + self.backlog, n_workers, max(0.0, slack_s))
            return target, ctl.predicted_latency_s(target)

    def add_backlog(self, n: int) -> None:
        """``n`` more (negative: fewer) jobs waiting to be dispatched."""
        with self._lock:
            self.backlog += n

    def predicted_latency_s(self, circuit_id: str, size: int) -> float:
        """Predicted proving latency (seconds) of a batch of ``size`` of ``circuit_id``."""
        with self._lock:
            return self.controllers[circuit_id].predicted_latency_s(size)

    def expected_latency_s(self) -> float:
        """The largest predicted latency of a one-job batch over the circuits (seconds)."""
        with self._lock:
            return max((c.predicted_latency_s(1) for c in self.controllers.values()), default=0.0)

    def observe(self, circuit_id: str, size: int, prove_s: float) -> None:
        """Feed a measured batch (``size`` proofs in ``prove_s`` seconds) to its circuit's controller."""
        with self._lock:
            self.controllers[circuit_id].observe(size, prove_s)

    def state(self, circuit_id: str) -> dict[str, Any]:
        """The controller's model of ``circuit_id`` (for provenance)."""
        with self._lock:
            return self.controllers[circuit_id].state()


class JobBook:
    """Outcomes of every submitted job, shared by the stage threads and the client.

    Args:
        payments: refunds a rejected or failed job (:meth:`~market.pipeline.stages.Payments.refund`).
        metrics: counts ``failed`` and ``requeued`` jobs.
        sizing: the backlog a re-auctioned job re-enters.
        max_attempts: dispatches of a job before it is given up.
        clock: the pipeline clock (seconds).
        on_reauction: called with ``(job, provider, reason)`` for each re-auctioned job.
    """

    def __init__(self, payments: Payments, metrics: PipelineMetrics, sizing: Sizing, max_attempts: int,
                 clock: Callable[[], float],
                 on_reauction: Callable[[ProofJob, str, str], None] | None = None) -> None:
        self.payments = payments
        self.metrics = metrics
        self.sizing = sizing
        self.max_attempts = max_attempts
        self.clock = clock
        self.on_reauction = on_reauction
        self.outcomes: dict[str, JobOutcome] = {}
        self.cv = threading.Condition()
        self.retry: collections.deque[Batch] = collections.deque()  # re-auctioned batches, for dispatch
        self.crashed: StageCrashed | None = None

    def register(self, job: ProofJob) -> None:
        """Open ``job``'s outcome (pending).

        Raises:
            InvalidJob: the job id was already submitted.
        """
        with self.cv:
            if job.job_id in self.outcomes:
                raise InvalidJob(job.job_id, "job_id", "was already submitted (job ids must be unique)")
            self.outcomes[job.job_id] = JobOutcome(job)

    def unregister(self, job_id: str) -> None:
        """Forget a job that was not accepted (the client may retry with the same id)."""
        with self.cv:
            del self.outcomes[job_id]

    def is_pending(self, job_id: str) -> bool:
        """The job is neither paid, rejected nor failed."""
        with self.cv:
            return self.outcomes[job_id].status is OutcomeStatus.PENDING

    def failed_providers(self, jobs: Iterable[ProofJob]) -> set[str]:
        """Providers that failed any of ``jobs`` before (they are not offered these jobs again)."""
        return {p for j in jobs for p in self.outcomes[j.job_id].failed_providers}

    def dispatched(self, jobs: Iterable[ProofJob]) -> None:
        """Count one more dispatch of each of ``jobs``."""
        for j in jobs:
            with self.cv:
                self.outcomes[j.job_id].attempts += 1

    def finish(self, job_id: str, status: OutcomeStatus, **fields: Any) -> None:
        """Close a pending job with ``status`` and ``fields`` (of :class:`JobOutcome`); refund it
        when rejected or failed. A job already closed stays as it is."""
        with self.cv:
            out = self.outcomes[job_id]
            if out.status is not OutcomeStatus.PENDING:
                return
            out.status = status
            for k, v in fields.items():
                setattr(out, k, v)
            self.cv.notify_all()
        if status in (OutcomeStatus.REJECTED, OutcomeStatus.FAILED):
            if status is OutcomeStatus.FAILED:
                self.metrics.count("failed")
            try:
                self.payments.refund(out.job, fields.get("error") or status.value)
            except Exception:  # the ledger refused the refund: visible in the log, job stays failed
                log.exception("refund of %s failed", job_id)

    def requeue(self, b: Batch, provider: str, reason: str, jobs: Sequence[ProofJob] | None = None) -> None:
        """Re-auction ``jobs`` (default: all of ``b``) away from ``provider``; give up after max_attempts."""
        again, attempt = [], b.attempt + 1
        for j in (b.jobs if jobs is None else jobs):
            with self.cv:
                out = self.outcomes[j.job_id]
                out.failed_providers.append(provider)
                if out.status is not OutcomeStatus.PENDING:  # already paid elsewhere: nothing to redo
                    continue
                give_up = out.attempts >= self.max_attempts
                attempt = max(attempt, out.attempts)
            if give_up:
                self.finish(j.job_id, OutcomeStatus.FAILED, error=f"gave up after {out.attempts} attempts: {reason}")
            else:
                again.append(j)
                if self.on_reauction:
                    self.on_reauction(j, provider, reason)
        if again:
            self.metrics.count("requeued", len(again))
            self.sizing.add_backlog(len(again))
            now = self.clock()
            self.retry.append(make_batch(b.key, again, now, now, FlushReason.REQUEUE, attempt))

    def crash(self, exc: StageCrashed) -> None:
        """A stage thread died: remember why and wake every waiter."""
        self.crashed = exc
        with self.cv:
            self.cv.notify_all()

    def wait(self, job_ids: Iterable[str], timeout_s: float) -> dict[str, JobOutcome]:
        """Block until every job is closed or ``timeout_s`` passes; return their outcomes.

        Raises:
            StageCrashed: a stage thread died (the jobs would never finish).
        """
        ids = list(job_ids)
        end = time.monotonic() + timeout_s
        with self.cv:
            while any(self.outcomes[j].status is OutcomeStatus.PENDING for j in ids):
                if self.crashed is not None:
                    raise self.crashed
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.cv.wait(timeout=min(left, 0.5))
            return {j: self.outcomes[j] for j in ids}


@dataclass
class StageContext:
    """What every stage is wired with; built once by :class:`~market.pipeline.runtime.ProvingPipeline`.

    Attributes:
        settings, circuits (by id), metrics, clock (seconds), stop (set when the pipeline stops),
        book, sizing, store (provenance, or None), and the queues between the stages:
        intake_q (jobs), prove_q (batches), verify_q (proved batches), pay_q (verified jobs and slashes).
    """

    settings: PipelineSettings
    circuits: dict[str, CircuitSpec]
    metrics: PipelineMetrics
    clock: Callable[[], float]
    stop: threading.Event
    book: JobBook
    sizing: Sizing
    store: ProvenanceStore | None
    intake_q: BoundedQueue[ProofJob]
    prove_q: BoundedQueue[Batch]
    verify_q: BoundedQueue[Any]
    pay_q: BoundedQueue[Any]

    def put_blocking(self, q: BoundedQueue[Any], item: Any) -> None:
        """Put with back-pressure that still notices ``stop``."""
        while not self.stop.is_set():
            try:
                q.put(item, timeout_s=0.1)
                return
            except QueueFull:  # keep waiting: this is the back-pressure
                continue
