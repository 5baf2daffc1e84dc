"""CLI of the proving pipeline: ``raymarket pipeline stats`` and ``raymarket pipeline replay BATCH_ID``.

``stats`` prints the stage metrics of the exchange's proving pipeline (``GET /v1/pipeline/stats`` of the
exchange: ``--exchange``, default from the config), or, with ``--pipeline-dir``, the last snapshot a standalone
pipeline (``market.pipeline.runtime``) wrote to ``<pipeline dir>/metrics.json`` (also the fallback when the
exchange cannot be reached). ``replay`` checks a batch against its record: an exchange proof batch (``pb-...``,
read from the exchange's database) is re-verified from its stored proofs
(:func:`market.pipeline.records.reverify_batch`: the exchange keeps no witness); a standalone pipeline's batch
is re-proved from its stored witnesses (:func:`market.pipeline.replay.replay_batch`). The root CLI also reaches
it through ``raymarket replay``. Data goes to stdout, diagnostics to stderr; exit codes from
:class:`~market.cli.exit_codes.ExitCode` (1 replay mismatch, 4 not found: no such batch, or
no metrics from the exchange nor a snapshot).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import httpx
import typer
from rich.table import Table
from sqlalchemy.orm import Session

from market.cli.common import DatabaseUrl, DataDir, ExchangeUrl, JsonOut, engine, err, fail, out, settings
from market.cli.exit_codes import ExitCode
from market.pipeline.errors import BatchNotFound, PipelineError
from market.pipeline.metrics import STAGES, read_snapshot
from market.pipeline.records import ReverifyReport, reverify_batch
from market.pipeline.replay import replay_batch

#: Prefix of the exchange's proof-batch ids (``market.exchange.service.batches``).
SERVICE_BATCH_PREFIX = "pb-"

pipeline_app = typer.Typer(name="pipeline", help="The proving pipeline: stage metrics and batch replay.",
                           no_args_is_help=True)

PipelineDir = Annotated[Optional[Path], typer.Option(
    "--pipeline-dir", help="The pipeline's provenance and metrics (default: <data-dir>/pipeline).",
    show_default=False)]


def pipeline_dir(pipeline_dir: Path | None, data_dir: Path | None) -> Path:
    """``pipeline_dir`` when given, else ``<data_dir>/pipeline`` of the settings."""
    return pipeline_dir or settings(data_dir=data_dir).pipeline_dir


@pipeline_app.command("stats")
def stats_command(pipeline_dir_: PipelineDir = None, exchange: ExchangeUrl = None, data_dir: DataDir = None,
                  as_json: JsonOut = False) -> None:
    """Print the proving pipeline's stage metrics (queue depth, batch size, latency, throughput): the exchange's
    (default), or a standalone pipeline's snapshot with --pipeline-dir."""
    snap = None
    if pipeline_dir_ is None:
        s = settings(exchange_url=exchange, data_dir=data_dir)
        try:
            resp = httpx.get(s.exchange_url.rstrip("/") + "/v1/pipeline/stats", timeout=30)
            resp.raise_for_status()
            snap = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            snap = read_snapshot(s.pipeline_dir)
            if snap is None:
                fail(f"no pipeline metrics: the exchange at {s.exchange_url} did not answer ({type(exc).__name__}) and "
                     f"there is no snapshot under {s.pipeline_dir}", ExitCode.NOT_FOUND,
                     "start it (`raymarket dev up`) or pass --exchange URL / --pipeline-dir DIR")
            err.print(f"exchange unreachable; showing the snapshot under {s.pipeline_dir}")
    else:
        snap = read_snapshot(pipeline_dir_)
        if snap is None:
            fail(f"no metrics under {pipeline_dir_}", ExitCode.NOT_FOUND, "is a pipeline running with this --pipeline-dir?")
    if as_json:
        typer.echo(json.dumps(snap, indent=2, sort_keys=True))
        return
    _print_stats(snap)


def _fmt(x: Any, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def _print_stats(snap: dict[str, Any]) -> None:
    source = snap.get("source", "pipeline")
    table = Table(title=f"{source} proving pipeline stages (uptime {snap['uptime_s']:.1f} s; latency per "
                        f"{'job' if source == 'exchange' else 'batch'})")
    for col in ("stage", "queue", "maxq", "in", "out", "fail", "btch", "size", "p50 s", "p99 s", "/s"):
        table.add_column(col, justify="right")
    for name in [s for s in snap.get("stage_order", STAGES) if s in snap["stages"]]:
        st = snap["stages"][name]
        table.add_row(name, f"{st['queue_depth']}/{st['queue_capacity']}", str(st["max_queue_depth"]),
                      str(st["items_in"]), str(st["items_out"]), str(st["failures"]), str(st["batches"]),
                      _fmt(st["mean_batch_size"], ".1f"), _fmt(st["p50_latency_s"]), _fmt(st["p99_latency_s"]),
                      _fmt(st["throughput_per_s"], ".2f"))
    out.print(table)
    jobs = snap["jobs"]
    out.print(f"jobs: {snap['counters']}  p50 {_fmt(jobs['p50_s'])} s  p99 {_fmt(jobs['p99_s'])} s  "
              f"{jobs['proofs_per_s']:.2f} proofs/s")
    if "recent_proofs_per_s" in snap:
        rec = snap.get("recorded", {})
        out.print(f"last minute: {snap['recent_proofs_per_s']:.2f} proofs/s; recorded batches: {rec.get('batches', 0)} "
                  f"({rec.get('jobs', 0)} jobs: {rec.get('ok', 0)} ok, {rec.get('rejected', 0)} rejected, "
                  f"{rec.get('lost', 0)} lost; {rec.get('verify_checks', 0)} verification checks)")


def print_reverify(report: ReverifyReport, as_json: bool) -> None:
    """Show a service batch's re-verification; exit 1 when it does not match its record."""
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        state = "MATCH" if report.outputs_match else "MISMATCH"
        typer.echo(f"batch {report.batch_id} ({len(report.jobs)} jobs, provider {report.provider}, circuit "
                   f"{report.circuit_id[:12]}, round {report.round_id}): {state} (stored proofs re-verified: "
                   f"{report.pairing_checks} combined checks; verification key {'matches' if report.vk_matches else 'DIFFERS'}, "
                   f"record hash {'matches' if report.record_matches else 'DIFFERS'}) in {report.replay_s:.2f} s")
        for j in report.jobs:
            typer.echo(f"  {j.job_id}: recorded={j.recorded_verdict} replay={j.replay_verdict}"
                       + ("" if j.matches else f"  MISMATCH: {'; '.join(j.why)}"))
    if not report.outputs_match:
        err.print(f"mismatched jobs: {report.mismatches}" if report.mismatches else
                  "the batch's record or verification key differs from what was recorded")
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


def reverify_service_batch(batch_id: str, database_url: str | None, data_dir: Path | None, as_json: bool) -> bool:
    """Re-verify the exchange's proof batch ``batch_id`` from its database and print it (exit 1 on a mismatch);
    False when the database has no such batch."""
    eng = engine(settings(database_url=database_url, data_dir=data_dir))
    try:
        with Session(eng) as s:
            try:
                report = reverify_batch(s, batch_id)
            except BatchNotFound:
                return False
    finally:
        eng.dispose()
    print_reverify(report, as_json)
    return True


@pipeline_app.command("replay")
def replay_command(
    batch_id: Annotated[str, typer.Argument(help="The batch id: an exchange proof batch (pb-...) or a standalone "
                                                 "pipeline's (from its provenance).")],
    pipeline_dir_: PipelineDir = None,
    data_dir: DataDir = None,
    prover: Annotated[Optional[str], typer.Option(help="Re-prove with this backend (ref|fast).")] = None,
    as_json: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Check a batch against its record: re-verify an exchange batch's stored proofs, or re-prove a standalone
    pipeline's batch from its witnesses; exit 1 if the outputs differ, 4 if there is no such batch."""
    if batch_id.startswith(SERVICE_BATCH_PREFIX) and pipeline_dir_ is None:
        if reverify_service_batch(batch_id, database_url, data_dir, as_json):
            return
        fail(f"no proof batch {batch_id} in the exchange's database", ExitCode.NOT_FOUND,
             "batch ids come with each proof lease (batch_id) and in `raymarket pipeline stats` (latest_batches)")
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
