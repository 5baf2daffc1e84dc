"""The proving pipeline on a Ray cluster: :class:`ProvingPipeline` wires the stages and serves the client.

Four stages, one driver thread each, joined by bounded queues (:mod:`market.pipeline.stages`)::

    submit -> [intake q] -> intake: validate, window, size -> [prove q] -> dispatch: place on
    provider actors, collect -> [verify q] -> verify: merge batches, batch-verify, bisect ->
    [pay q] -> pay: idempotent payment / slash, settlement batches

One module per job:

* :mod:`~market.pipeline.intake` -- validation and batching windows;
* :mod:`~market.pipeline.dispatch` -- placement on the providers' prover actors, collection,
  crashed and slow workers (re-auction, no slash);
* :mod:`~market.pipeline.verify` -- batched verification, isolation of bad proofs, provenance;
* :mod:`~market.pipeline.pay` -- idempotent payment, slash and quarantine of a bad prover;
* :mod:`~market.pipeline.workers` -- the providers and their prover actors (pinned with the
  node's custom resource ``provider:<name>``, no restarts, no retries);
* :mod:`~market.pipeline.state` -- what the stage threads share: job outcomes and re-auction
  (:class:`~market.pipeline.state.JobBook`), batch sizing, the wiring.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from market.pipeline.batching import ProofJob
from market.pipeline.dispatch import DispatchStage
from market.pipeline.errors import InvalidJob, PipelineConfigError, QueueFull, StageCrashed
from market.pipeline.intake import IntakeStage
from market.pipeline.metrics import PipelineMetrics, write_snapshot
from market.pipeline.pay import PayStage
from market.pipeline.placement import ProviderSlot
from market.pipeline.provenance import ProvenanceStore
from market.pipeline.settings import PipelineSettings
from market.pipeline.stages import BoundedQueue, CircuitSpec, JobOutcome, Payments, VerifiedJob
from market.pipeline.state import JobBook, Sizing, StageContext
from market.pipeline.verify import VerifyStage
from market.pipeline.workers import ProverWorkerLike, ProviderPool

__all__ = ["PipelineSettings", "ProvingPipeline"]

log = logging.getLogger(__name__)


class ProvingPipeline:
    """The proving pipeline on a Ray cluster (see the module docstring).

    Args:
        circuits: the circuits it accepts (one prover actor per provider per circuit).
        providers: the matched providers and their benchmarked speeds.
        payments: where money moves (the ledger adapter, or :class:`~market.pipeline.stages.InMemoryPayments`).
        settings: :class:`PipelineSettings`.
        worker_cls: the prover worker class made a Ray actor on each provider's node
            (:class:`~market.pipeline.workers.ProverWorkerLike`): injected, because it is provider
            code (:class:`providers.prover_worker.ProverWorker`) and ``market`` does not import
            ``providers``; a subclass can inject faults in tests.
        on_settled: called from the pay thread with each settlement batch (list of
            :class:`~market.pipeline.stages.VerifiedJob`): the attestation / Merkle settlement hook.
        on_reauction: called with ``(job, provider, reason)`` whenever a job is re-auctioned.
        clock: monotonic seconds (the clock of ``ProofJob.submitted_s`` / ``deadline_s``).

    Raises:
        PipelineConfigError: no circuit or no provider.
    """

    def __init__(self, circuits: Sequence[CircuitSpec], providers: Sequence[ProviderSlot], payments: Payments,
                 settings: PipelineSettings | None = None, *, worker_cls: type[ProverWorkerLike],
                 on_settled: Callable[[list[VerifiedJob]], None] | None = None,
                 on_reauction: Callable[[ProofJob, str, str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not circuits or not providers:
            raise PipelineConfigError("circuits/providers", "need at least one circuit and one provider")
        s = self.settings = settings or PipelineSettings()
        self.circuits = {c.circuit_id: c for c in circuits}
        self.payments = payments
        self.clock = clock
        self.metrics = PipelineMetrics(clock)
        self.store = ProvenanceStore(s.data_dir) if s.data_dir else None
        sizing = Sizing(self.circuits, s.controller)
        self.book = JobBook(payments, self.metrics, sizing, s.max_attempts, clock, on_reauction)
        self.ctx = StageContext(
            s, self.circuits, self.metrics, clock, threading.Event(), self.book, sizing, self.store,
            BoundedQueue("intake", s.intake_capacity, self.metrics), BoundedQueue("prove", s.prove_capacity, self.metrics),
            BoundedQueue("verify", s.verify_capacity, self.metrics), BoundedQueue("pay", s.pay_capacity, self.metrics))
        self.pool = ProviderPool(providers, s, worker_cls)
        self.intake = IntakeStage(self.ctx, self.pool, self._write_metrics)
        self.dispatch = DispatchStage(self.ctx, self.pool)
        self.verify = VerifyStage(self.ctx, self.pool)
        self.pay = PayStage(self.ctx, self.pool, payments, on_settled)
        self._threads: list[threading.Thread] = []
        self._last_metrics_s = 0.0

    # ---- views ---------------------------------------------------------------------------

    @property
    def outcomes(self) -> dict[str, JobOutcome]:
        """Every submitted job's outcome, by job id (the live dict: read, do not write)."""
        return self.book.outcomes

    @property
    def slots(self) -> dict[str, ProviderSlot]:
        """The providers and their current speeds, by name."""
        return self.pool.slots

    @property
    def quarantined(self) -> frozenset[str]:
        """Providers no work is placed on any more (they delivered a bad proof)."""
        return self.pool.quarantined

    @property
    def crashed(self) -> StageCrashed | None:
        """Why a stage thread died, or None."""
        return self.book.crashed

    def worker(self, provider: str, circuit_id: str) -> Any:
        """The actor handle of ``provider``'s worker for ``circuit_id`` (tests kill it with ``ray.kill``)."""
        return self.pool.workers[(provider, circuit_id)]

    def inflight(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Batches being proved now: ``{batch_id: (provider, job_ids)}`` (a copy)."""
        return dict(self.dispatch.inflight_view)

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, ready_timeout_s: float = 120.0) -> "ProvingPipeline":
        """Start one prover actor per (provider, circuit), wait until all answer, start the stage threads.

        Raises:
            ray.exceptions.GetTimeoutError: the actors did not come up within ``ready_timeout_s``.
        """
        self.pool.start(self.circuits.values(), self.store, ready_timeout_s)
        for stage, name in ((self.intake, "intake"), (self.dispatch, "prove"), (self.verify, "verify"),
                            (self.pay, "pay")):
            t = threading.Thread(target=self._guard(name, stage.run), name=f"pipeline-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def add_provider(self, slot: ProviderSlot, ready_timeout_s: float = 120.0) -> None:
        """(Re)join a provider while running: start its workers (one per circuit) and place work on it.

        For a provider that joined the cluster after :meth:`start`, or whose worker died and whose
        node is back (the market's provider agent calls this on re-registration). Its previous
        failures on pending jobs still exclude it from those jobs.

        Raises:
            ray.exceptions.GetTimeoutError: its workers did not answer within ``ready_timeout_s``
                (e.g. no node carries ``provider:<name>``); nothing is placed on it then.
        """
        self.pool.add_provider(slot, self.circuits.values(), ready_timeout_s)

    def _guard(self, stage: str, loop: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                loop()
            except Exception as exc:  # a crashed stage must be visible, not silent
                log.exception("pipeline stage %s crashed", stage)
                self.metrics.count("stage_crashes")
                self.book.crash(StageCrashed(stage, exc))
        return run

    def stop(self, kill_workers: bool = True) -> None:
        """Stop the stage threads (pending work is dropped) and, by default, kill the prover actors."""
        self.ctx.stop.set()
        for t in self._threads:
            t.join(timeout=10)
        if kill_workers:
            self.pool.kill_all()
        self._write_metrics(force=True)

    def __enter__(self) -> "ProvingPipeline":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- client side -------------------------------------------------------------------------

    def now(self) -> float:
        """The pipeline clock (seconds)."""
        return self.clock()

    def new_job(self, job_id: str, circuit_id: str, witness: Sequence[int], *, deadline_in_s: float,
                price_wei: int = 0, client: str = "") -> ProofJob:
        """A :class:`ProofJob` stamped with the pipeline clock and the circuit's key hash.

        Raises:
            InvalidJob: the circuit is not registered.
        """
        spec = self.circuits.get(circuit_id)
        if spec is None:
            raise InvalidJob(job_id, "circuit_id", f"{circuit_id!r} is not registered")
        now = self.clock()
        return ProofJob(job_id, circuit_id, spec.pk_hash, tuple(witness), now, now + deadline_in_s, price_wei,
                        client)

    def submit(self, job: ProofJob, timeout_s: float | None = None) -> None:
        """Queue ``job`` for proving; blocks while the intake queue is full (back-pressure).

        Raises:
            QueueFull: the intake queue stayed full for ``timeout_s``.
            InvalidJob: the job id was already submitted.
        """
        self.book.register(job)
        try:
            self.ctx.intake_q.put(job, timeout_s)
        except QueueFull:
            self.book.unregister(job.job_id)  # not accepted: the client may retry with the same id
            raise
        self.metrics.count("submitted")

    def wait(self, job_ids: Iterable[str], timeout_s: float) -> dict[str, JobOutcome]:
        """Block until every job is paid, rejected or failed, or ``timeout_s`` passes; return their outcomes.

        Raises:
            StageCrashed: a stage thread died (the jobs would never finish).
        """
        return self.book.wait(job_ids, timeout_s)

    # ---- metrics -----------------------------------------------------------------------------

    def _write_metrics(self, force: bool = False) -> None:
        if self.settings.data_dir is None:
            return
        now = time.monotonic()
        if force or now - self._last_metrics_s >= self.settings.metrics_interval_s:
            self._last_metrics_s = now
            snap = self.metrics.snapshot()
            snap["providers"] = self.pool.summary()
            write_snapshot(snap, Path(self.settings.data_dir))
