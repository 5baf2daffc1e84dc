"""CLI of the proving pipeline: ``raymarket pipeline stats`` and batch replay.

``pipeline_app`` (typer) holds ``stats`` (the last metrics snapshot a running pipeline wrote to
``<data_dir>/metrics.json``; ``--json`` for machines) and ``replay BATCH_ID``; the root CLI may
also mount :func:`replay_command` as ``raymarket replay``. :func:`replay_batch` is the function
behind it: it re-proves a stored batch in-process with the same worker code and re-verifies it.
Data goes to stdout, diagnostics to stderr; exit codes: 0 ok, 1 replay mismatch, 2 not found.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from market.pipeline.errors import BatchNotFound, PipelineError
from market.pipeline.metrics import STAGES, read_snapshot
from market.pipeline.provenance import ProvenanceStore, canonical_hash

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_NOT_FOUND = 2

pipeline_app = typer.Typer(name="pipeline", help="The proving pipeline: stage metrics and batch replay.",
                           no_args_is_help=True)


def default_data_dir() -> Path:
    """``<user data dir>/raymarket/pipeline``: where a pipeline writes provenance and metrics by default."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("raymarket", appauthor=False)) / "pipeline"


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


def replay_batch(batch_id: str, data_dir: Path | str | None = None, prover: str | None = None) -> ReplayReport:
    """Re-prove and re-verify a stored batch; report whether the outputs match its record.

    Args:
        batch_id: the batch (see ``<data_dir>/batches/``).
        data_dir: the pipeline's data dir (default :func:`default_data_dir`).
        prover: backend to re-prove with (default: the one recorded).

    Raises:
        BatchNotFound: no record or key; ProvenanceMismatch: stored inputs or key do not hash as recorded.
    """
    import time

    from market.pipeline.stages import find_invalid_proofs
    from providers.prover_worker import ProverWorker

    t0 = time.perf_counter()
    store = ProvenanceStore(data_dir or default_data_dir())
    record, witnesses = store.load(batch_id)
    pk = store.load_key(record.pk_hash)
    worker = ProverWorker(f"replay-of-{record.provider}", record.circuit_id, pk, prover or record.prover,
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


DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Pipeline data dir (provenance, metrics).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")]


@pipeline_app.command("stats")
def stats_command(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Print the stage metrics (queue depth, batch size, latency, throughput) of the pipeline."""
    snap = read_snapshot(data_dir or default_data_dir())
    if snap is None:
        typer.echo(f"no metrics under {data_dir or default_data_dir()}: is a pipeline running "
                   f"with this --data-dir?", err=True)
        raise typer.Exit(EXIT_NOT_FOUND)
    if as_json:
        typer.echo(json.dumps(snap, indent=2, sort_keys=True))
        return
    _print_stats(snap)


def _fmt(x: Any, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def _print_stats(snap: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"pipeline stages (uptime {snap['uptime_s']:.1f} s)")
    for col in ("stage", "queue", "maxq", "in", "out", "fail", "btch", "size", "p50 s", "p99 s", "/s"):
        table.add_column(col, justify="right")
    for name in [s for s in STAGES if s in snap["stages"]]:
        st = snap["stages"][name]
        table.add_row(name, f"{st['queue_depth']}/{st['queue_capacity']}", str(st["max_queue_depth"]),
                      str(st["items_in"]), str(st["items_out"]), str(st["failures"]), str(st["batches"]),
                      _fmt(st["mean_batch_size"], ".1f"), _fmt(st["p50_latency_s"]), _fmt(st["p99_latency_s"]),
                      _fmt(st["throughput_per_s"], ".2f"))
    console = Console()
    console.print(table)
    jobs = snap["jobs"]
    console.print(f"jobs: {snap['counters']}  p50 {_fmt(jobs['p50_s'])} s  p99 {_fmt(jobs['p99_s'])} s  "
                  f"{jobs['proofs_per_s']:.2f} proofs/s")


@pipeline_app.command("replay")
def replay_command(
    batch_id: Annotated[str, typer.Argument(help="The batch id (from provenance or `pipeline stats`).")],
    data_dir: DataDirOpt = None,
    prover: Annotated[str | None, typer.Option(help="Re-prove with this backend (ref|fast).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-prove and re-verify a batch from its provenance record; exit 1 if the outputs differ."""
    try:
        report = replay_batch(batch_id, data_dir, prover)
    except BatchNotFound as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_NOT_FOUND) from None
    except PipelineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_MISMATCH) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        state = "MATCH" if report.outputs_match else "MISMATCH"
        typer.echo(f"batch {report.batch_id} ({len(report.jobs)} jobs, provider {report.provider}, prover "
                   f"{report.prover}, blinding {report.blinding}): {state} in {report.replay_s:.2f} s")
        for j in report.jobs:
            typer.echo(f"  {j.job_id}: recorded_verified={j.recorded_verified} proof_matches={j.proof_matches} "
                       f"replay_verified={j.replay_verified}")
    if not report.outputs_match:
        print(f"mismatched jobs: {report.mismatches}", file=sys.stderr)
        raise typer.Exit(EXIT_MISMATCH)
