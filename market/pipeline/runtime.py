"""The Ray adapter of the proving pipeline: prover actors pinned to provider nodes, stage threads.

:class:`ProvingPipeline` runs four stages in the driver, one thread each, joined by bounded queues
(:mod:`market.pipeline.stages`)::

    submit -> [intake q] -> intake: validate, window, size -> [prove q] -> dispatch: place on
    provider actors, collect -> [verify q] -> verify: merge batches, batch-verify, bisect ->
    [pay q] -> pay: idempotent payment / slash, settlement batches

Prover actors (:class:`providers.prover_worker.ProverWorker`, made an actor in
:func:`prover_actor_class` only) are keyed by (provider, circuit): one per provider per circuit,
pinned with the node's custom resource ``provider:<name>``, created with the proving key passed
as ONE object-store reference, so each actor loads the key once and keeps it for every batch.
Actors have ``max_restarts=0`` and calls ``max_task_retries=0`` (FIELD-NOTES: retries on a dead
pinned node hang forever): the pipeline, not Ray, decides what happens to a failed batch.

Fault handling:

* a worker that dies mid-batch (actor killed, node lost) or raises: the batch's jobs go back to
  the front of the prove queue as a new batch (``attempt + 1``) that excludes that provider
  (re-auction among the remaining providers); a dead actor's slot is dropped. No slash: a crash
  may be an infrastructure fault (MISSION: no unfair slashing).
* a worker slower than ``batch_timeout_factor * predicted latency + batch_timeout_grace_s``:
  its batch is re-auctioned the same way and its late result ignored.
* a proof that fails verification: isolated by bisection, its provider slashed through
  :class:`~market.pipeline.stages.Payments` (``wrong_result``) and quarantined, the job
  re-auctioned; the rest of the batch is paid.
* payments are idempotent per job id (``pay:<job_id>``), and the pay stage pays a job only once,
  so a job completed twice is never paid twice.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from market.pipeline.batching import (
    Batch,
    BatchingWindows,
    BatchSizeController,
    ControllerConfig,
    FlushReason,
    ProofJob,
    WindowPolicy,
    make_batch,
)
from market.pipeline.errors import InvalidJob, NoProviders, PipelineConfigError, QueueFull, StageCrashed
from market.pipeline.metrics import PipelineMetrics, write_snapshot
from market.pipeline.placement import ProviderSlot, choose_provider
from market.pipeline.provenance import (
    BatchRecord,
    JobRecord,
    ProvenanceStore,
    canonical_hash,
    code_version,
    inputs_hash,
)
from market.pipeline.stages import (
    BoundedQueue,
    BatchVerifier,
    CircuitSpec,
    JobOutcome,
    OutcomeStatus,
    Payments,
    VerifiedJob,
    chunk_bounds,
    find_invalid_proofs,
    intake_check,
)
from providers.prover_worker import ProvedBatch, ProverWorker

log = logging.getLogger(__name__)

_TICK_S = 0.005


@dataclass(frozen=True)
class PipelineSettings:
    """Settings of a :class:`ProvingPipeline` (validated once, passed down).

    Attributes:
        window: batching windows (``window_s``: the longest a job waits for company).
        controller: the adaptive batch-size controller.
        intake_capacity, prove_capacity, verify_capacity, pay_capacity: queue bounds (jobs,
            batches, proved batches, verified jobs).
        verify_batch_max: most proofs merged into one verification batch (level 2 of the hierarchy).
        verify_window_s: how long the verify stage waits to merge more proved batches.
        max_attempts: dispatches of a job before it is given up (``failed``).
        batch_timeout_factor, batch_timeout_grace_s: a batch running longer than
            ``factor * predicted latency + grace`` seconds is re-auctioned.
        blinding: ``"derived"`` (replayable proofs, seed kept in provenance) or ``"fresh"``.
        prover: prover backend of the workers (``"fast"`` numba, default, or ``"ref"`` py_ecc).
        actor_num_cpus: logical CPUs each prover actor reserves on its node.
        prover_threads: numba threads per prover actor (match the CPUs it may use; None = numba's default).
        quarantine_on_bad_proof: stop placing work on a provider once it delivered a bad proof.
        data_dir: where provenance and ``metrics.json`` go (None: neither is written).
        metrics_interval_s: how often the metrics snapshot is written.
        settle_batch_max: most verified jobs per settlement batch handed to ``on_settled``.
        benchmark_proofs: when > 0, each provider's worker proves this many throw-away witnesses
            at start and its measured speed replaces the given ``proofs_per_s`` (0: trust the
            speeds the provider agent benchmarked).
        verify_workers: verifier actors on the coordinator's node that check chunks of a
            verification batch in parallel (0: verify in the driver's verify thread).
    """

    window: WindowPolicy = field(default_factory=WindowPolicy)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    intake_capacity: int = 1024
    prove_capacity: int = 8
    verify_capacity: int = 16
    pay_capacity: int = 1024
    verify_batch_max: int = 64
    verify_window_s: float = 0.02
    max_attempts: int = 3
    batch_timeout_factor: float = 4.0
    batch_timeout_grace_s: float = 30.0
    blinding: str = "derived"
    prover: str = "fast"
    actor_num_cpus: float = 0.0
    prover_threads: int | None = 1
    quarantine_on_bad_proof: bool = True
    data_dir: Path | None = None
    metrics_interval_s: float = 0.5
    settle_batch_max: int = 256
    benchmark_proofs: int = 0
    verify_workers: int = 0

    def __post_init__(self) -> None:
        for name in ("intake_capacity", "prove_capacity", "verify_capacity", "pay_capacity",
                     "verify_batch_max", "max_attempts", "settle_batch_max"):
            if getattr(self, name) < 1:
                raise PipelineConfigError(name, "must be >= 1")
        if self.blinding not in ("derived", "fresh"):
            raise PipelineConfigError("blinding", "must be 'derived' (replayable) or 'fresh'")
        if self.batch_timeout_factor < 1 or self.batch_timeout_grace_s < 0:
            raise PipelineConfigError("batch_timeout_factor", "needs factor >= 1 and grace >= 0 seconds")


def prover_actor_class(worker_cls: type = ProverWorker) -> Any:
    """``worker_cls`` as a Ray actor class: the one place a worker becomes an actor.

    No restarts and no task retries (FIELD-NOTES): a failed batch is re-auctioned by the pipeline.
    """
    import ray

    return ray.remote(max_restarts=0, max_task_retries=0)(worker_cls)


def verifier_actor_class() -> Any:
    """:class:`~market.pipeline.stages.BatchVerifier` as a Ray actor class (no restarts, no retries)."""
    import ray

    return ray.remote(max_restarts=0, max_task_retries=0)(BatchVerifier)


def spawn_verifiers(n: int, vks: dict[str, Any]) -> list[Any]:
    """``n`` verifier actors pinned to THIS node (the market's side: never on a provider's node)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    cls = verifier_actor_class()
    return [cls.options(num_cpus=0, scheduling_strategy=here).remote(vks) for _ in range(n)]


def spawn_worker(actor_cls: Any, provider: str, circuit_id: str, pk_ref: Any, prover: str,
                 num_cpus: float, threads: int | None = 1) -> Any:
    """Start a prover actor on provider ``provider``'s node (custom resource ``provider:<name>``)."""
    return actor_cls.options(resources={f"provider:{provider}": 1}, num_cpus=num_cpus).remote(
        provider, circuit_id, pk_ref, prover, threads)


@dataclass
class _Inflight:
    batch: Batch
    provider: str
    seed: str | None
    started_s: float
    due_s: float


@dataclass
class _Proved:
    batch: Batch
    result: ProvedBatch
    seed: str | None


@dataclass(frozen=True)
class _Slash:
    job: ProofJob
    provider: str
    batch_id: str


def _padded(p: _Proved) -> list[Any]:
    """The worker's proofs, one per job: missing ones are None (then invalid, and slashed)."""
    proofs = list(p.result.proofs)[: p.batch.size]
    return proofs + [None] * (p.batch.size - len(proofs))


def _each_invalid(spec: CircuitSpec, publics: Sequence[Sequence[int]], proofs: Sequence[Any]) -> list[str | None]:
    out: list[str | None] = []
    for x, proof in zip(publics, proofs):
        try:
            bad = find_invalid_proofs(spec.pk.vk, [x], [proof])
            out.append(bad[0] if bad else None)
        except Exception as exc:  # noqa: BLE001
            out.append(f"{type(exc).__name__}: {exc}")
    return out


class ProvingPipeline:
    """The proving pipeline on a Ray cluster (see the module docstring).

    Args:
        circuits: the circuits it accepts (one prover actor per provider per circuit).
        providers: the matched providers and their benchmarked speeds.
        payments: where money moves (the ledger adapter, or :class:`~market.pipeline.stages.InMemoryPayments`).
        settings: :class:`PipelineSettings`.
        worker_cls: the worker class (a subclass can inject faults in tests).
        on_settled: called from the pay thread with each settlement batch (list of
            :class:`~market.pipeline.stages.VerifiedJob`): the attestation / Merkle settlement hook.
        on_reauction: called with ``(job, provider, reason)`` whenever a job is re-auctioned.
        clock: monotonic seconds (the clock of ``ProofJob.submitted_s`` / ``deadline_s``).
    """

    def __init__(self, circuits: Sequence[CircuitSpec], providers: Sequence[ProviderSlot], payments: Payments,
                 settings: PipelineSettings | None = None, *, worker_cls: type = ProverWorker,
                 on_settled: Callable[[list[VerifiedJob]], None] | None = None,
                 on_reauction: Callable[[ProofJob, str, str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not circuits or not providers:
            raise PipelineConfigError("circuits/providers", "need at least one circuit and one provider")
        self.settings = settings or PipelineSettings()
        self.circuits = {c.circuit_id: c for c in circuits}
        self.payments = payments
        self.worker_cls = worker_cls
        self.on_settled = on_settled
        self.on_reauction = on_reauction
        self.clock = clock
        self.metrics = PipelineMetrics(clock)
        self.store = ProvenanceStore(self.settings.data_dir) if self.settings.data_dir else None
        s = self.settings
        self.intake_q: BoundedQueue[ProofJob] = BoundedQueue("intake", s.intake_capacity, self.metrics)
        self.prove_q: BoundedQueue[Batch] = BoundedQueue("prove", s.prove_capacity, self.metrics)
        self.verify_q: BoundedQueue[_Proved] = BoundedQueue("verify", s.verify_capacity, self.metrics)
        self.pay_q: BoundedQueue[Any] = BoundedQueue("pay", s.pay_capacity, self.metrics)
        self.windows = BatchingWindows(s.window)
        self.controllers = {cid: BatchSizeController(s.controller) for cid in self.circuits}
        self._ctl_lock = threading.Lock()
        self.slots: dict[str, ProviderSlot] = {p.name: p for p in providers}
        self.workers: dict[tuple[str, str], Any] = {}
        self.quarantined: frozenset[str] = frozenset()  # replaced, never mutated (read by other threads)
        self._retry: collections.deque[Batch] = collections.deque()
        self.outcomes: dict[str, JobOutcome] = {}
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_metrics_s = 0.0
        self._backlog = 0  # jobs past intake and not yet dispatched (windows, prove queue, retries)
        self._inflight_view: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.crashed: StageCrashed | None = None
        self.verifiers: list[Any] = []

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, ready_timeout_s: float = 120.0) -> "ProvingPipeline":
        """Start one prover actor per (provider, circuit), wait until all answer, start the stage threads.

        Raises:
            ray.exceptions.GetTimeoutError: the actors did not come up within ``ready_timeout_s``.
        """
        import ray

        actor_cls = prover_actor_class(self.worker_cls)
        for spec in self.circuits.values():
            pk_ref = ray.put(spec.pk)  # one copy in the object store; each actor fetches it once
            if self.store:
                self.store.save_key(spec.pk, spec.pk_hash)
            for name in self.slots:
                self.workers[(name, spec.circuit_id)] = spawn_worker(
                    actor_cls, name, spec.circuit_id, pk_ref, self.settings.prover, self.settings.actor_num_cpus,
                    self.settings.prover_threads)
        ray.get([w.ping.remote() for w in self.workers.values()], timeout=ready_timeout_s)
        if self.settings.verify_workers:
            self.verifiers = spawn_verifiers(self.settings.verify_workers,
                                             {c.circuit_id: c.pk.vk for c in self.circuits.values()})
        if self.settings.benchmark_proofs:
            self._benchmark_providers()
        for target, name in ((self._intake_loop, "intake"), (self._dispatch_loop, "prove"),
                             (self._verify_loop, "verify"), (self._pay_loop, "pay")):
            t = threading.Thread(target=self._guard(name, target), name=f"pipeline-{name}", daemon=True)
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
        import ray

        actor_cls = prover_actor_class(self.worker_cls)
        fresh = {}
        for spec in self.circuits.values():
            fresh[(slot.name, spec.circuit_id)] = spawn_worker(
                actor_cls, slot.name, spec.circuit_id, ray.put(spec.pk), self.settings.prover,
                self.settings.actor_num_cpus, self.settings.prover_threads)
        try:
            ray.get([w.ping.remote() for w in fresh.values()], timeout=ready_timeout_s)
        except Exception:
            for w in fresh.values():
                ray.kill(w)
            raise
        self.slots[slot.name] = slot
        self.workers.update(fresh)

    def _benchmark_providers(self) -> None:
        """Hardware-aware placement from measurement: each provider's worker proves
        ``benchmark_proofs`` throw-away witnesses; its speed (proofs/s) replaces the given one."""
        import ray

        handles = {n: w for (n, _), w in self.workers.items()}
        speeds = ray.get([w.benchmark.remote(self.settings.benchmark_proofs) for w in handles.values()],
                         timeout=300)
        for name, speed in zip(handles, speeds):
            self.slots[name] = dataclasses.replace(self.slots[name], proofs_per_s=max(speed, 1e-3))

    def _guard(self, stage: str, loop: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                loop()
            except Exception as exc:  # a crashed stage must be visible, not silent
                log.exception("pipeline stage %s crashed", stage)
                self.metrics.count("stage_crashes")
                self.crashed = StageCrashed(stage, exc)
                with self._cv:
                    self._cv.notify_all()
        return run

    def stop(self, kill_workers: bool = True) -> None:
        """Stop the stage threads (pending work is dropped) and, by default, kill the prover actors."""
        import ray

        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        if kill_workers:
            for w in list(self.workers.values()) + self.verifiers:
                try:
                    ray.kill(w)
                except Exception:  # noqa: BLE001 - already dead
                    pass
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
        with self._cv:
            if job.job_id in self.outcomes:
                raise InvalidJob(job.job_id, "job_id", "was already submitted (job ids must be unique)")
            self.outcomes[job.job_id] = JobOutcome(job)
        try:
            self.intake_q.put(job, timeout_s)
        except QueueFull:
            with self._cv:  # not accepted: the client may retry with the same id
                del self.outcomes[job.job_id]
            raise
        self.metrics.count("submitted")

    def wait(self, job_ids: Iterable[str], timeout_s: float) -> dict[str, JobOutcome]:
        """Block until every job is paid, rejected or failed, or ``timeout_s`` passes; return their outcomes.

        Raises:
            StageCrashed: a stage thread died (the jobs would never finish).
        """
        ids = list(job_ids)
        end = time.monotonic() + timeout_s
        with self._cv:
            while any(self.outcomes[j].status is OutcomeStatus.PENDING for j in ids):
                if self.crashed is not None:
                    raise self.crashed
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(timeout=min(left, 0.5))
            return {j: self.outcomes[j] for j in ids}

    def worker(self, provider: str, circuit_id: str) -> Any:
        """The actor handle of ``provider``'s worker for ``circuit_id`` (tests kill it with ``ray.kill``)."""
        return self.workers[(provider, circuit_id)]

    def inflight(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Batches being proved now: ``{batch_id: (provider, job_ids)}`` (a copy)."""
        return dict(self._inflight_view)

    def _finish(self, job_id: str, status: OutcomeStatus, **fields: Any) -> None:
        with self._cv:
            out = self.outcomes[job_id]
            if out.status is not OutcomeStatus.PENDING:
                return
            out.status = status
            for k, v in fields.items():
                setattr(out, k, v)
            self._cv.notify_all()
        if status in (OutcomeStatus.REJECTED, OutcomeStatus.FAILED):
            if status is OutcomeStatus.FAILED:
                self.metrics.count("failed")
            try:
                self.payments.refund(out.job, fields.get("error") or status.value)
            except Exception:  # the ledger refused the refund: visible in the log, job stays failed
                log.exception("refund of %s failed", job_id)

    # ---- intake ------------------------------------------------------------------------------

    def _intake_loop(self) -> None:
        while not self._stop.is_set():
            now = self.clock()
            due = self.windows.next_due_s()
            wait_s = _TICK_S * 4 if due is None else max(0.0, min(_TICK_S * 4, due - now))
            job = self.intake_q.get(wait_s)
            batches = self._intake(job) if job is not None else []
            batches += self.windows.poll(self.clock(), self._expected_latency_s())
            for b in batches:
                self._put_blocking(self.prove_q, b)
            self._write_metrics()

    def _intake(self, job: ProofJob) -> list[Batch]:
        self.metrics.entered("intake")
        t0 = time.perf_counter()
        try:
            intake_check(job, self.circuits)
        except InvalidJob as exc:
            self.metrics.count("rejected")
            self.metrics.batch_done("intake", 1, time.perf_counter() - t0, failed=1)
            self._finish(job.job_id, OutcomeStatus.REJECTED, error=str(exc))
            return []
        now = self.clock()
        n_workers = max(1, len(self._live_slots(job.circuit_id, ())))
        with self._ctl_lock:
            ctl = self.controllers[job.circuit_id]
            slack = job.deadline_s - now - self.settings.window.deadline_margin_s
            self._backlog += 1
            target = ctl.target(len(self.intake_q) + self._backlog, n_workers, max(0.0, slack))
            expected = ctl.predicted_latency_s(target)
        self.metrics.batch_done("intake", 1, time.perf_counter() - t0)
        return self.windows.add(job, now, target, expected)

    def _expected_latency_s(self) -> float:
        with self._ctl_lock:
            return max((c.predicted_latency_s(1) for c in self.controllers.values()), default=0.0)

    def _put_blocking(self, q: BoundedQueue[Any], item: Any) -> None:
        """Put with back-pressure that still notices ``stop``."""
        while not self._stop.is_set():
            try:
                q.put(item, timeout_s=0.1)
                return
            except QueueFull:  # keep waiting: this is the back-pressure
                continue

    # ---- prove (dispatch and collect) --------------------------------------------------------

    def _live_slots(self, circuit_id: str, exclude: Iterable[str]) -> list[ProviderSlot]:
        ex = set(exclude) | self.quarantined
        return [s for n, s in self.slots.items() if (n, circuit_id) in self.workers and n not in ex]

    def _dispatch_loop(self) -> None:
        pending: collections.deque[Batch] = collections.deque()
        inflight: dict[Any, _Inflight] = {}
        while not self._stop.is_set():
            while self._retry:
                pending.appendleft(self._retry.pop())
            if not pending:
                b = self.prove_q.get(_TICK_S if inflight else _TICK_S * 4)
                if b is not None:
                    pending.append(b)
            self._place(pending, inflight)
            self._collect(inflight)

    def _place(self, pending: collections.deque[Batch], inflight: dict[Any, _Inflight]) -> None:
        while pending:
            b = pending[0]
            excluded = {p for j in b.jobs for p in self.outcomes[j.job_id].failed_providers}
            live = self._live_slots(b.key.circuit_id, excluded)
            by_p = collections.Counter(f.provider for f in inflight.values())
            proofs = collections.Counter()
            for f in inflight.values():
                proofs[f.provider] += f.batch.size
            try:
                slot = choose_provider(live, b.size, proofs, by_p, circuit_id=b.key.circuit_id)
            except NoProviders as exc:
                pending.popleft()
                with self._ctl_lock:
                    self._backlog -= b.size
                for j in b.jobs:
                    self._finish(j.job_id, OutcomeStatus.FAILED, error=str(exc))
                continue
            if slot is None:
                return
            pending.popleft()
            self._dispatch(b, slot.name, inflight)

    def _dispatch(self, b: Batch, provider: str, inflight: dict[Any, _Inflight]) -> None:
        seed = secrets.token_hex(16) if self.settings.blinding == "derived" else None
        worker = self.workers[(provider, b.key.circuit_id)]
        ref = worker.prove_batch.remote(b.batch_id, [j.job_id for j in b.jobs], [j.witness for j in b.jobs], seed)
        now = self.clock()
        with self._ctl_lock:
            predicted = self.controllers[b.key.circuit_id].predicted_latency_s(b.size)
        pending_ahead = sum(f.batch.size for f in inflight.values() if f.provider == provider)
        predicted += pending_ahead / self.slots[provider].proofs_per_s
        due = now + self.settings.batch_timeout_factor * predicted + self.settings.batch_timeout_grace_s
        inflight[ref] = _Inflight(b, provider, seed, now, due)
        self._inflight_view[b.batch_id] = (provider, tuple(j.job_id for j in b.jobs))
        with self._ctl_lock:
            self._backlog -= b.size
        for j in b.jobs:
            with self._cv:
                self.outcomes[j.job_id].attempts += 1
        self.metrics.entered("prove", b.size)

    def _collect(self, inflight: dict[Any, _Inflight]) -> None:
        import ray

        if not inflight:
            return
        ready, _ = ray.wait(list(inflight), num_returns=len(inflight), timeout=_TICK_S)
        for ref in ready:
            f = inflight.pop(ref)
            self._inflight_view.pop(f.batch.batch_id, None)
            self._completed(ref, f)
        now = self.clock()
        for ref in [r for r, f in inflight.items() if now > f.due_s]:
            f = inflight.pop(ref)
            self._inflight_view.pop(f.batch.batch_id, None)
            self._update_speed(f.provider, f.batch.size, now - f.started_s)  # it is at most this fast
            self.metrics.batch_done("prove", f.batch.size, now - f.started_s, failed=f.batch.size)
            self._requeue(f.batch, f.provider, "slow worker: batch past its timeout")

    def _completed(self, ref: Any, f: _Inflight) -> None:
        import ray
        from ray.exceptions import RayActorError, RayError

        try:
            result: ProvedBatch = ray.get(ref, timeout=30)
        except RayError as exc:
            if isinstance(exc, RayActorError):  # the actor (or its node) is gone
                self.workers.pop((f.provider, f.batch.key.circuit_id), None)
            self.metrics.count("worker_failures")
            self.metrics.batch_done("prove", f.batch.size, self.clock() - f.started_s, failed=f.batch.size)
            self._requeue(f.batch, f.provider, f"worker failed: {type(exc).__name__}")
            return
        with self._ctl_lock:
            self.controllers[f.batch.key.circuit_id].observe(f.batch.size, result.prove_s)
        self._update_speed(f.provider, f.batch.size, result.prove_s)
        self.metrics.batch_done("prove", f.batch.size, result.prove_s)
        self._put_blocking(self.verify_q, _Proved(f.batch, result, f.seed))

    def _update_speed(self, provider: str, n: int, prove_s: float, alpha: float = 0.3) -> None:
        """Refine the provider's benchmarked speed with what it measured (EWMA of proofs/s)."""
        slot = self.slots.get(provider)
        if slot is None or prove_s <= 0:
            return
        measured = n / prove_s
        self.slots[provider] = dataclasses.replace(slot, proofs_per_s=(1 - alpha) * slot.proofs_per_s
                                                   + alpha * measured)

    def _requeue(self, b: Batch, provider: str, reason: str, jobs: Sequence[ProofJob] | None = None) -> None:
        """Re-auction ``jobs`` (default: all of ``b``) away from ``provider``; give up after max_attempts."""
        again, attempt = [], b.attempt + 1
        for j in (b.jobs if jobs is None else jobs):
            with self._cv:
                out = self.outcomes[j.job_id]
                out.failed_providers.append(provider)
                if out.status is not OutcomeStatus.PENDING:  # already paid elsewhere: nothing to redo
                    continue
                give_up = out.attempts >= self.settings.max_attempts
                attempt = max(attempt, out.attempts)
            if give_up:
                self._finish(j.job_id, OutcomeStatus.FAILED, error=f"gave up after {out.attempts} attempts: {reason}")
            else:
                again.append(j)
                if self.on_reauction:
                    self.on_reauction(j, provider, reason)
        if again:
            self.metrics.count("requeued", len(again))
            with self._ctl_lock:
                self._backlog += len(again)
            now = self.clock()
            self._retry.append(make_batch(b.key, again, now, now, FlushReason.REQUEUE, attempt))

    # ---- verify ------------------------------------------------------------------------------

    def _verify_loop(self) -> None:
        while not self._stop.is_set():
            first = self.verify_q.get(_TICK_S * 4)
            if first is None:
                continue
            group = [first]
            end = time.monotonic() + self.settings.verify_window_s
            while sum(p.batch.size for p in group) < self.settings.verify_batch_max:
                nxt = self.verify_q.get(max(0.0, end - time.monotonic()))
                if nxt is None:
                    break
                group.append(nxt)
            by_circuit: dict[str, list[_Proved]] = collections.defaultdict(list)
            for p in group:
                by_circuit[p.batch.key.circuit_id].append(p)
            for cid, items in by_circuit.items():
                self._verify_group(self.circuits[cid], items)

    def _verify_group(self, spec: CircuitSpec, items: list[_Proved]) -> None:
        t0 = time.perf_counter()
        jobs = [(p, j, proof) for p in items for j, proof in zip(p.batch.jobs, _padded(p), strict=True)]
        self.metrics.entered("verify", len(jobs))
        publics = [spec.public_signals(j.witness) for _, j, _ in jobs]
        try:
            bad = self._find_invalid(spec, publics, [proof for _, _, proof in jobs])
        except Exception as exc:  # noqa: BLE001 - a proof so broken the verifier cannot even screen it
            log.warning("verification batch unscreenable (%s): checking proofs one by one", exc)
            bad = {i: str(e) for i, e in enumerate(_each_invalid(spec, publics, [x for _, _, x in jobs])) if e}
        ok = [i not in bad for i in range(len(jobs))]
        vb_id = canonical_hash([p.batch.batch_id for p in items])[:32]
        self.metrics.batch_done("verify", len(jobs), time.perf_counter() - t0, failed=ok.count(False))
        for (p, j, proof), good in zip(jobs, ok):
            if good:
                item: Any = VerifiedJob(j, p.result.provider, p.batch.batch_id, vb_id, proof, canonical_hash(proof))
            else:
                self.metrics.count("bad_proofs")
                item = _Slash(j, p.result.provider, p.batch.batch_id)
            self._put_blocking(self.pay_q, item)
        for p in items:
            flags = [good for (q, _, _), good in zip(jobs, ok) if q is p]
            self._record(spec, p, flags)

    def _find_invalid(self, spec: CircuitSpec, publics: list[list[int]], proofs: list[Any]) -> dict[int, str]:
        """Invalid proofs of a verification batch: in parallel chunks on the verifier actors if any."""
        import ray
        from ray.exceptions import RayError

        bounds = chunk_bounds(len(proofs), len(self.verifiers)) if self.verifiers else [(0, len(proofs))]
        if len(bounds) == 1:
            return find_invalid_proofs(spec.pk.vk, publics, proofs)
        refs = [v.find_invalid.remote(spec.circuit_id, publics[a:b], proofs[a:b])
                for v, (a, b) in zip(self.verifiers, bounds)]
        bad: dict[int, str] = {}
        for ref, (a, b) in zip(refs, bounds):
            try:
                part = ray.get(ref, timeout=600)
            except RayError:  # a verifier died: check its chunk here instead
                part = find_invalid_proofs(spec.pk.vk, publics[a:b], proofs[a:b])
            bad.update({a + i: reason for i, reason in part.items()})
        return bad

    def _record(self, spec: CircuitSpec, p: _Proved, verified: list[bool]) -> None:
        if self.store is None:
            return
        jobs = [JobRecord(j.job_id, canonical_hash(list(j.witness)), spec.public_signals(j.witness),
                          canonical_hash(proof), good)
                for j, proof, good in zip(p.batch.jobs, _padded(p), verified)]
        with self._ctl_lock:
            model = self.controllers[spec.circuit_id].state()
        params = {"batch_size": p.batch.size, "flush_reason": p.batch.reason.value,
                  "window_s": self.settings.window.window_s, "opened_s": p.batch.opened_s,
                  "flushed_s": p.batch.flushed_s, "controller": model, "per_job_s": p.result.per_job_s}
        rec = BatchRecord(p.batch.batch_id, p.batch.attempt, spec.circuit_id, spec.pk_hash, p.result.provider,
                          p.result.hardware, p.result.prover, self.settings.blinding, p.seed, params,
                          code_version(), p.result.code, jobs, inputs_hash([r.witness_sha256 for r in jobs]),
                          p.result.prove_s)
        self.store.save(rec, [j.witness for j in p.batch.jobs])

    # ---- pay and attest ----------------------------------------------------------------------

    def _pay_loop(self) -> None:
        settle: list[VerifiedJob] = []
        while not self._stop.is_set():
            item = self.pay_q.get(_TICK_S * 4)
            if item is not None:
                t0 = time.perf_counter()
                self.metrics.entered("pay")
                paid = self._pay_item(item)
                self.metrics.batch_done("pay", 1, time.perf_counter() - t0, failed=0 if paid else 1)
                if paid:
                    settle.append(item)
            if settle and (item is None or len(settle) >= self.settings.settle_batch_max):
                if self.on_settled:
                    self.on_settled(settle)
                settle = []

    def _pay_item(self, item: Any) -> bool:
        if isinstance(item, _Slash):
            self._slash(item)
            return False
        assert isinstance(item, VerifiedJob)
        with self._cv:
            if self.outcomes[item.job.job_id].status is not OutcomeStatus.PENDING:
                self.metrics.count("duplicate_results")
                return False
        try:
            if not self.payments.pay(item.job, item.provider, item.proof_sha256, item.batch_id):
                self.metrics.count("duplicate_results")  # the ledger had it paid already: not paid again
        except Exception as exc:  # the ledger refused: the job is not paid, say why
            log.exception("payment of %s failed", item.job.job_id)
            self._finish(item.job.job_id, OutcomeStatus.FAILED, error=f"payment failed: {exc}")
            return False
        now = self.clock()
        self._finish(item.job.job_id, OutcomeStatus.PAID, provider=item.provider, batch_id=item.batch_id,
                     proof=item.proof, completed_s=now)
        self.metrics.job_done(now - item.job.submitted_s)
        return True

    def _slash(self, item: _Slash) -> None:
        try:
            if self.payments.slash(item.job, item.provider, item.batch_id, "wrong_result"):
                self.metrics.count("slashed")
        except Exception:  # the ledger refused the slash: log it, still re-auction the job
            log.exception("slash of %s for %s failed", item.provider, item.job.job_id)
        if self.settings.quarantine_on_bad_proof:
            self.quarantined = self.quarantined | {item.provider}
        b = make_batch(item.job.key, [item.job], self.clock(), self.clock(), FlushReason.REQUEUE, 0)
        self._requeue(b, item.provider, "bad proof")

    # ---- metrics -----------------------------------------------------------------------------

    def _write_metrics(self, force: bool = False) -> None:
        if self.settings.data_dir is None:
            return
        now = time.monotonic()
        if force or now - self._last_metrics_s >= self.settings.metrics_interval_s:
            self._last_metrics_s = now
            snap = self.metrics.snapshot()
            snap["providers"] = {n: {"proofs_per_s": s.proofs_per_s, "quarantined": n in self.quarantined,
                                     "workers": sum(1 for (p, _) in list(self.workers) if p == n)}
                                 for n, s in self.slots.items()}
            write_snapshot(snap, Path(self.settings.data_dir))
