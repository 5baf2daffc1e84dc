"""CLI of the proving pipeline: ``raymarket pipeline stats`` and ``raymarket pipeline replay BATCH_ID``.

``stats`` prints the last metrics snapshot a running pipeline wrote to ``<pipeline dir>/metrics.json``;
``replay`` re-proves a stored batch (:func:`market.pipeline.replay.replay_batch`) and says whether it
matches its record; the root CLI also reaches it through ``raymarket replay``. The pipeline dir is
``--pipeline-dir``, default ``<data dir>/pipeline``. Data goes to stdout, diagnostics to stderr;
exit codes from :class:`~market.cli.exit_codes.ExitCode` (1 replay mismatch, 4 not found).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from market.cli.common import DataDir, JsonOut, err, fail, out, settings
from market.cli.exit_codes import ExitCode
from market.pipeline.errors import BatchNotFound, PipelineError
from market.pipeline.metrics import STAGES, read_snapshot
from market.pipeline.replay import replay_batch

pipeline_app = typer.Typer(name="pipeline", help="The proving pipeline: stage metrics and batch replay.",
                           no_args_is_help=True)

PipelineDir = Annotated[Optional[Path], typer.Option(
    "--pipeline-dir", help="The pipeline's provenance and metrics (default: <data-dir>/pipeline).",
    show_default=False)]


def pipeline_dir(pipeline_dir: Path | None, data_dir: Path | None) -> Path:
    """``pipeline_dir`` when given, else ``<data_dir>/pipeline`` of the settings."""
    return pipeline_dir or settings(data_dir=data_dir).pipeline_dir


@pipeline_app.command("stats")
def stats_command(pipeline_dir_: PipelineDir = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Print the stage metrics (queue depth, batch size, latency, throughput) of the pipeline."""
    where = pipeline_dir(pipeline_dir_, data_dir)
    snap = read_snapshot(where)
    if snap is None:
        fail(f"no metrics under {where}", ExitCode.NOT_FOUND, "is a pipeline running with this --pipeline-dir?")
    if as_json:
        typer.echo(json.dumps(snap, indent=2, sort_keys=True))
        return
    _print_stats(snap)


def _fmt(x: Any, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def _print_stats(snap: dict[str, Any]) -> None:
    table = Table(title=f"pipeline stages (uptime {snap['uptime_s']:.1f} s)")
    for col in ("stage", "queue", "maxq", "in", "out", "fail", "btch", "size", "p50 s", "p99 s", "/s"):
        table.add_column(col, justify="right")
    for name in [s for s in STAGES if s in snap["stages"]]:
        st = snap["stages"][name]
        table.add_row(name, f"{st['queue_depth']}/{st['queue_capacity']}", str(st["max_queue_depth"]),
                      str(st["items_in"]), str(st["items_out"]), str(st["failures"]), str(st["batches"]),
                      _fmt(st["mean_batch_size"], ".1f"), _fmt(st["p50_latency_s"]), _fmt(st["p99_latency_s"]),
                      _fmt(st["throughput_per_s"], ".2f"))
    out.print(table)
    jobs = snap["jobs"]
    out.print(f"jobs: {snap['counters']}  p50 {_fmt(jobs['p50_s'])} s  p99 {_fmt(jobs['p99_s'])} s  "
              f"{jobs['proofs_per_s']:.2f} proofs/s")


@pipeline_app.command("replay")
def replay_command(
    batch_id: Annotated[str, typer.Argument(help="The batch id (from provenance or `pipeline stats`).")],
    pipeline_dir_: PipelineDir = None,
    data_dir: DataDir = None,
    prover: Annotated[Optional[str], typer.Option(help="Re-prove with this backend (ref|fast).")] = None,
    as_json: JsonOut = False,
) -> None:
    """Re-prove and re-verify a batch from its provenance record; exit 1 if the outputs differ."""
    try:
        report = replay_batch(batch_id, pipeline_dir(pipeline_dir_, data_dir), prover)
    except BatchNotFound as exc:
        fail(str(exc), ExitCode.NOT_FOUND, "list the batches under <pipeline-dir>/batches/")
    except PipelineError as exc:
        fail(str(exc), ExitCode.CHECK_FAILED)
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
        err.print(f"mismatched jobs: {report.mismatches}")
        raise typer.Exit(int(ExitCode.CHECK_FAILED))
