"""Settings of the proving pipeline (:class:`PipelineSettings`): validated once, passed down."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from market.pipeline.batching import ControllerConfig, WindowPolicy
from market.pipeline.errors import PipelineConfigError


@dataclass(frozen=True)
class PipelineSettings:
    """Settings of a :class:`~market.pipeline.runtime.ProvingPipeline` (validated once, passed down).

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
