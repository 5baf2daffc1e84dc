"""The providers the pipeline places work on, and their prover actors on Ray.

:class:`ProviderPool` holds one prover actor per (provider, circuit), pinned with the node's custom
resource ``provider:<name>`` and created with the proving key passed as ONE object-store
reference, so each actor loads the key once and keeps it for every batch. Actors have
``max_restarts=0`` and calls ``max_task_retries=0`` (FIELD-NOTES: retries on a dead pinned node
hang forever): the pipeline, not Ray, decides what happens to a failed batch. The pool also keeps
each provider's speed (refined from measurements), the quarantined providers and the optional
verifier actors on the coordinator's node.

The worker class is injected (``worker_cls``): the prover worker is provider-side code
(:class:`providers.prover_worker.ProverWorker`, composed in by the caller: ``cli.py``, tests,
benchmarks), since ``market`` must not import ``providers``. :class:`ProverWorkerLike` is the
interface the pipeline relies on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from market.pipeline.placement import ProviderSlot
from market.pipeline.provenance import ProvenanceStore
from market.pipeline.settings import PipelineSettings
from market.pipeline.stages import BatchVerifier, CircuitSpec


class ProvedBatchLike(Protocol):
    """What a worker returns for a batch (:class:`providers.prover_worker.ProvedBatch` has this shape).

    Attributes:
        batch_id: the batch; provider: who proved it; prover: backend name.
        proofs: one proof per job, in batch order (fewer or wrong ones are caught by verification).
        prove_s: wall time of the batch (seconds); per_job_s: each job's proving time (seconds).
        hardware: what the worker runs on; code: the worker's library versions.
    """

    batch_id: str
    provider: str
    prover: str
    proofs: Sequence[Any]
    prove_s: float
    per_job_s: Sequence[float]
    hardware: dict[str, Any]
    code: dict[str, str]


class ProverWorkerLike(Protocol):
    """The prover worker the pipeline makes a Ray actor.

    Constructed as ``worker_cls(provider, circuit_id, pk, prover, threads)`` on the provider's node
    (``pk`` arrives as an object-store reference, resolved before ``__init__``); it keeps the key.
    """

    def ping(self) -> str:
        """Liveness probe: the provider's name."""
        ...

    def benchmark(self, n_proofs: int = 3) -> float:
        """Prove ``n_proofs`` throw-away witnesses; proofs per second."""
        ...

    def prove_batch(self, batch_id: str, job_ids: Sequence[str], witnesses: Sequence[Sequence[int]],
                    blinding_seed: str | None = None) -> ProvedBatchLike:
        """Prove every witness of a batch, blinding derived from ``blinding_seed`` when given."""
        ...


def prover_actor_class(worker_cls: type[ProverWorkerLike]) -> Any:
    """``worker_cls`` as a Ray actor class: the one place a worker becomes an actor.

    No restarts and no task retries (FIELD-NOTES): a failed batch is re-auctioned by the pipeline.
    """
    return ray.remote(max_restarts=0, max_task_retries=0)(worker_cls)


def verifier_actor_class() -> Any:
    """:class:`~market.pipeline.stages.BatchVerifier` as a Ray actor class (no restarts, no retries)."""
    return ray.remote(max_restarts=0, max_task_retries=0)(BatchVerifier)


def spawn_verifiers(n: int, vks: dict[str, Any]) -> list[Any]:
    """``n`` verifier actors pinned to THIS node (the market's side: never on a provider's node)."""
    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    cls = verifier_actor_class()
    return [cls.options(num_cpus=0, scheduling_strategy=here).remote(vks) for _ in range(n)]


def spawn_worker(actor_cls: Any, provider: str, circuit_id: str, pk_ref: Any, prover: str,
                 num_cpus: float, threads: int | None = 1) -> Any:
    """Start a prover actor on provider ``provider``'s node (custom resource ``provider:<name>``)."""
    return actor_cls.options(resources={f"provider:{provider}": 1}, num_cpus=num_cpus).remote(
        provider, circuit_id, pk_ref, prover, threads)


class ProviderPool:
    """The providers, their speeds and their prover actors (see the module docstring).

    Args:
        providers: the matched providers and their benchmarked speeds.
        settings: prover backend, CPUs and threads per actor, verifier actors, start-up benchmark.
        worker_cls: the worker class made an actor (:class:`ProverWorkerLike`; in production
            :class:`providers.prover_worker.ProverWorker`, a subclass can inject faults in tests).

    ``slots`` entries and ``quarantined`` are replaced, never mutated, so other threads may read them.
    """

    def __init__(self, providers: Sequence[ProviderSlot], settings: PipelineSettings,
                 worker_cls: type[ProverWorkerLike]) -> None:
        self.settings = settings
        self.worker_cls = worker_cls
        self.slots: dict[str, ProviderSlot] = {p.name: p for p in providers}
        self.workers: dict[tuple[str, str], Any] = {}
        self.quarantined: frozenset[str] = frozenset()
        self.verifiers: list[Any] = []

    def _spawn(self, provider: str, spec: CircuitSpec, pk_ref: Any, actor_cls: Any) -> Any:
        s = self.settings
        return spawn_worker(actor_cls, provider, spec.circuit_id, pk_ref, s.prover, s.actor_num_cpus,
                            s.prover_threads)

    def start(self, circuits: Iterable[CircuitSpec], store: ProvenanceStore | None, ready_timeout_s: float) -> None:
        """One prover actor per (provider, circuit); wait until all answer; the verifier actors; the
        start-up benchmark when ``settings.benchmark_proofs``.

        Raises:
            ray.exceptions.GetTimeoutError: the actors did not come up within ``ready_timeout_s``.
        """
        actor_cls = prover_actor_class(self.worker_cls)
        circuits = list(circuits)
        for spec in circuits:
            pk_ref = ray.put(spec.pk)  # one copy in the object store; each actor fetches it once
            if store:
                store.save_key(spec.pk, spec.pk_hash)
            for name in self.slots:
                self.workers[(name, spec.circuit_id)] = self._spawn(name, spec, pk_ref, actor_cls)
        ray.get([w.ping.remote() for w in self.workers.values()], timeout=ready_timeout_s)
        if self.settings.verify_workers:
            self.verifiers = spawn_verifiers(self.settings.verify_workers,
                                             {c.circuit_id: c.pk.vk for c in circuits})
        if self.settings.benchmark_proofs:
            self._benchmark()

    def add_provider(self, slot: ProviderSlot, circuits: Iterable[CircuitSpec], ready_timeout_s: float) -> None:
        """(Re)join ``slot``: start its workers (one per circuit); only then is work placed on it.

        Raises:
            ray.exceptions.GetTimeoutError: its workers did not answer within ``ready_timeout_s``
                (e.g. no node carries ``provider:<name>``); they are killed, nothing changes.
        """
        actor_cls = prover_actor_class(self.worker_cls)
        fresh = {(slot.name, spec.circuit_id): self._spawn(slot.name, spec, ray.put(spec.pk), actor_cls)
                 for spec in circuits}
        try:
            ray.get([w.ping.remote() for w in fresh.values()], timeout=ready_timeout_s)
        except Exception:
            for w in fresh.values():
                ray.kill(w)
            raise
        self.slots[slot.name] = slot
        self.workers.update(fresh)

    def _benchmark(self) -> None:
        """Hardware-aware placement from measurement: each provider's worker proves
        ``benchmark_proofs`` throw-away witnesses; its speed (proofs/s) replaces the given one."""
        handles = {n: w for (n, _), w in self.workers.items()}
        speeds = ray.get([w.benchmark.remote(self.settings.benchmark_proofs) for w in handles.values()],
                         timeout=300)
        for name, speed in zip(handles, speeds):
            self.slots[name] = dataclasses.replace(self.slots[name], proofs_per_s=max(speed, 1e-3))

    def live_slots(self, circuit_id: str, exclude: Iterable[str]) -> list[ProviderSlot]:
        """Providers with a live worker for ``circuit_id``, not quarantined nor in ``exclude``."""
        ex = set(exclude) | self.quarantined
        return [s for n, s in self.slots.items() if (n, circuit_id) in self.workers and n not in ex]

    def drop_worker(self, provider: str, circuit_id: str) -> None:
        """Forget a dead worker (its actor or node is gone)."""
        self.workers.pop((provider, circuit_id), None)

    def quarantine(self, provider: str) -> None:
        """Place no more work on ``provider``."""
        self.quarantined = self.quarantined | {provider}

    def update_speed(self, provider: str, n: int, prove_s: float, alpha: float = 0.3) -> None:
        """Refine the provider's benchmarked speed with what it measured (EWMA of proofs/s)."""
        slot = self.slots.get(provider)
        if slot is None or prove_s <= 0:
            return
        measured = n / prove_s
        self.slots[provider] = dataclasses.replace(slot, proofs_per_s=(1 - alpha) * slot.proofs_per_s
                                                   + alpha * measured)

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per provider: speed (proofs/s), quarantined, live workers (for the metrics snapshot)."""
        return {n: {"proofs_per_s": s.proofs_per_s, "quarantined": n in self.quarantined,
                    "workers": sum(1 for (p, _) in list(self.workers) if p == n)}
                for n, s in self.slots.items()}

    def kill_all(self) -> None:
        """Kill every prover and verifier actor (the dead ones are skipped)."""
        for w in list(self.workers.values()) + self.verifiers:
            try:
                ray.kill(w)
            except Exception:  # noqa: BLE001 - already dead
                pass
