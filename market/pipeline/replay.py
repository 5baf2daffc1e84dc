"""Replay of a proving batch: re-prove it in-process with the same worker code, re-verify it, and say
whether the outputs match its provenance record (``raymarket pipeline replay`` / ``raymarket replay``).

The worker class is injected like the pipeline's (``market`` does not import ``providers``): pass
``worker_cls``, or let the composition root register it once with :func:`use_worker` (``cli.py``
registers :class:`providers.prover_worker.ProverWorker`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from market.paths import default_data_dir
from market.pipeline.errors import PipelineConfigError
from market.pipeline.provenance import ProvenanceStore, canonical_hash
from market.pipeline.stages import find_invalid_proofs

_registered: dict[str, type] = {}


def use_worker(worker_cls: type) -> None:
    """Register the prover worker class replays re-prove with when none is passed (the composition
    root calls this once). It is built as ``worker_cls(provider, circuit_id, pk, prover, threads=None,
    warmup=False)`` and must have ``prover`` and ``prove_one(job_id, witness, blinding_seed)``."""
    _registered["worker_cls"] = worker_cls


@dataclass
class ReplayedJob:
    """One job of a replay.

    Attributes:
        job_id: the job.
        recorded_verified: what the pipeline's verification said of the provider's proof.
        proof_matches: the re-proved proof hashes as recorded (None when blinding was ``"fresh"``).
        replay_verified: the re-proved proof verifies for the recorded public signals.
        publics_match: the stored witness gives the recorded public signals.
    """

    job_id: str
    recorded_verified: bool | None
    proof_matches: bool | None
    replay_verified: bool
    publics_match: bool


@dataclass
class ReplayReport:
    """Result of :func:`replay_batch`.

    Attributes:
        batch_id, provider, prover, blinding: from the record.
        outputs_match: every re-proved proof is bit-identical to the recorded one (derived
            blinding) -- or, with fresh blinding, every re-proved proof verifies.
        jobs: per-job detail; mismatches lists the jobs whose outputs differ.
        replay_s: seconds the re-proving and re-verification took.
    """

    batch_id: str
    provider: str
    prover: str
    blinding: str
    outputs_match: bool
    jobs: list[ReplayedJob]
    mismatches: list[str]
    replay_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def replay_batch(batch_id: str, data_dir: Path | str | None = None, prover: str | None = None, *,
                 worker_cls: type | None = None) -> ReplayReport:
    """Re-prove and re-verify a stored batch; report whether the outputs match its record.

    Args:
        batch_id: the batch (see ``<data_dir>/batches/``).
        data_dir: the pipeline's data dir (default ``<market data dir>/pipeline``).
        prover: backend to re-prove with (default: the one recorded).
        worker_cls: the prover worker class (default: the one registered with :func:`use_worker`).

    Raises:
        BatchNotFound: no record or key; ProvenanceMismatch: stored inputs or key do not hash as recorded.
        PipelineConfigError: no worker class given nor registered.
    """
    worker_cls = worker_cls or _registered.get("worker_cls")
    if worker_cls is None:
        raise PipelineConfigError("worker_cls", "no prover worker to re-prove with: pass worker_cls or register "
                                  "one with market.pipeline.replay.use_worker (cli.py registers "
                                  "providers.prover_worker.ProverWorker)")
    t0 = time.perf_counter()
    store = ProvenanceStore(data_dir or default_data_dir() / "pipeline")
    record, witnesses = store.load(batch_id)
    pk = store.load_key(record.pk_hash)
    worker = worker_cls(f"replay-of-{record.provider}", record.circuit_id, pk, prover or record.prover,
                          threads=None, warmup=False)
    seed = record.blinding_seed if record.blinding == "derived" else None
    proofs = [worker.prove_one(job.job_id, w, seed) for job, w in zip(record.jobs, witnesses)]
    bad = find_invalid_proofs(pk.vk, [job.public_signals for job in record.jobs], proofs)
    jobs = []
    for i, (job, w, proof) in enumerate(zip(record.jobs, witnesses, proofs)):
        matches = (canonical_hash(proof) == job.proof_sha256) if seed is not None else None
        jobs.append(ReplayedJob(job.job_id, job.verified, matches, i not in bad,
                                list(w[1:1 + pk.n_public]) == job.public_signals))
    differ = [j.job_id for j in jobs
              if not (j.replay_verified and j.publics_match and j.proof_matches is not False)]
    return ReplayReport(record.batch_id, record.provider, worker.prover, record.blinding, not differ, jobs, differ,
                        time.perf_counter() - t0)
