"""The commands that open the market's database directly (the in-process market of one operator).

``deposit``, ``submit inference|proof``, ``status``, ``result``, ``quote``, ``replay``, ``exchange run`` and
``demo``: the runtime is :class:`market.exchange.runner.MarketRunner`. They are replaced by the service
and its SDK (``raymarket exchange serve``, ``raymarket dev up``, client commands over ``--exchange``).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from market import exchange as ex
from market.cli.common import (DatabaseUrl, DataDir, JsonOut, RayAddress, RpcUrl, emit, engine, out, progress,
                               settings, wei)
from market.cli.exit_codes import ExitCode
from market.cli.pipeline import replay_command
from market.core.matching import replay as replay_round
from market.db.models import JobRecord, RoundRecord
from market.exchange.demo import run_demo
from market.exchange.runner import MarketRunner

local_app = typer.Typer()
submit_app = typer.Typer(help="Submit a job (its max price is escrowed from your balance).", no_args_is_help=True)
exchange_app = typer.Typer(help="Run the exchange loop (matching rounds, execution, payment, settlement).",
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Mount these commands on the root app (``submit`` and ``exchange`` as groups)."""
    app.registered_commands.extend(local_app.registered_commands)
    app.add_typer(submit_app, name="submit")
    app.add_typer(exchange_app, name="exchange")


@local_app.command()
def demo(
    as_json: JsonOut = False,
    database_url: DatabaseUrl = None,
    rpc_url: RpcUrl = None,
    ray_address: RayAddress = None,
    data_dir: DataDir = None,
    text: Annotated[Optional[Path], typer.Option(help="Text to embed, one sentence per line "
                                                       "(default: the public-domain text shipped).")] = None,
    proof_rounds: Annotated[int, typer.Option(min=1, help="MiMC-7 rounds of the proof circuit (91 = circomlib's).")] = 91,
    proof_jobs: Annotated[int, typer.Option(min=0, help="How many proof jobs to submit.")] = 2,
) -> None:
    """Run the whole market on this machine: 3 providers, an embedding job and proof jobs, settled on-chain."""
    if text is not None and not text.is_file():
        raise typer.BadParameter(f"{text} is not a file", param_hint="--text")
    s = settings(database_url=database_url, rpc_url=rpc_url, ray_address=ray_address, data_dir=data_dir)
    report = run_demo(s, text_path=text, proof_rounds=proof_rounds, proof_jobs=proof_jobs,
                      progress=progress)
    if as_json:
        emit(report, True)
        return
    table = Table(title="raymarket demo: jobs")
    for col in ("job", "kind", "provider", "cleared price (wei)", "status", "result", "settling tx"):
        table.add_column(col, overflow="fold")
    for j in report["jobs"]:
        table.add_row(j["job_id"], j["kind"], j["provider"] or "-", j["cleared_price_wei"] or "-", j["status"],
                      j["result_path"] or "-", j["settle_tx"] or "-")
    out.print(table)
    led = report["ledger"]
    out.print(f"ledger: total deposits {led['total_deposits_wei']} wei, sum of balances {led['sum_of_balances_wei']} "
              f"wei -> {'balanced' if led['balanced'] else 'NOT BALANCED'}; protocol fees {led['protocol_fees_wei']} wei")
    out.print(f"settlement contract {report['contract']} on {report['chain']} chain {report['chain_id']}")
    out.print("seconds: " + ", ".join(f"{k} {v}" for k, v in report["seconds"].items()))


# ---------------------------------------------------------------------------- clients
@local_app.command()
def deposit(client: str, amount_wei: Annotated[str, typer.Argument(help="Amount in wei.")],
            database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Deposit AMOUNT_WEI into CLIENT's balance (from outside the market)."""
    amount = wei(amount_wei, "AMOUNT_WEI")
    eng = engine(settings(database_url=database_url, data_dir=data_dir))
    with Session(eng) as s, s.begin():
        bal = ex.fund_client(s, client, amount, f"deposit:{client}:{time.time_ns()}")
    emit({"client": client, "balance_wei": str(bal)} if as_json else f"{client}: balance {bal} wei", as_json)


@submit_app.command("inference")
def submit_inference(
    text_file: Annotated[Path, typer.Argument(help="UTF-8 text, one sentence per line.")],
    max_price: Annotated[str, typer.Option("--max-price", help="Max price in wei (escrowed).")],
    client: Annotated[str, typer.Option(help="Your client account.")] = "default",
    job_id: Annotated[Optional[str], typer.Option(help="Your id for the job (retries are idempotent).")] = None,
    deadline_s: Annotated[float, typer.Option(min=1.0, help="Seconds until the result is due.")] = 3600.0,
    database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Submit a sentence-embedding job (all-MiniLM-L6-v2) over TEXT_FILE."""
    if not text_file.is_file():
        raise typer.BadParameter(f"{text_file} does not exist or is not a file", param_hint="TEXT_FILE")
    price = wei(max_price, "--max-price")
    runner = MarketRunner(settings(database_url=database_url, data_dir=data_dir), progress)
    runner.start_database()
    jid = runner.submit_inference(client, text_file, max_price_wei=price, job_id=job_id, deadline_s=deadline_s)
    emit({"job_id": jid, "status": "open"} if as_json else jid, as_json)


@submit_app.command("proof")
def submit_proof(
    preimage: Annotated[int, typer.Option(help="The secret MiMC-7 preimage to prove knowledge of (an integer).")],
    max_price: Annotated[str, typer.Option("--max-price", help="Max price in wei (escrowed).")],
    rounds: Annotated[int, typer.Option(min=1, help="MiMC-7 rounds of the circuit.")] = 91,
    client: Annotated[str, typer.Option(help="Your client account.")] = "default",
    job_id: Annotated[Optional[str], typer.Option(help="Your id for the job.")] = None,
    deadline_s: Annotated[float, typer.Option(min=1.0, help="Seconds until the result is due.")] = 3600.0,
    database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Submit a Groth16 proof job: knowledge of a MiMC-7 preimage of a public hash."""
    price = wei(max_price, "--max-price")
    runner = MarketRunner(settings(database_url=database_url, data_dir=data_dir), progress)
    runner.start_database()
    jid = runner.submit_proof(client, preimage, rounds=rounds, max_price_wei=price, job_id=job_id,
                              deadline_s=deadline_s)
    emit({"job_id": jid, "status": "open"} if as_json else jid, as_json)


@local_app.command()
def status(job_id: Annotated[Optional[str], typer.Argument(help="A job id; omit to list all jobs.")] = None,
           database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Show a job (with its history: rounds, faults, re-auctions) or list all jobs."""
    eng = engine(settings(database_url=database_url, data_dir=data_dir))
    with Session(eng) as s:
        if job_id is None:
            jobs = [ex.job_summary(j) for j in s.scalars(select(JobRecord).order_by(JobRecord.created_at))]
            table = Table(title="jobs")
            for col in ("job", "kind", "status", "provider", "cleared price (wei)", "attempt"):
                table.add_column(col)
            for j in jobs:
                table.add_row(j["job_id"], j["kind"], j["status"], j["provider"] or "-",
                              j["cleared_price_wei"] or "-", str(j["attempt"]))
            emit(jobs, as_json, table)
            return
        job = ex.job_summary(ex.get_job(s, job_id))
        job["history"] = [{"at_s": e.at_s, "event": e.event, "status": e.status, "detail": e.detail}
                          for e in ex.job_history(s, job_id)]
    if as_json:
        emit(job, True)
        return
    for key in ("job_id", "kind", "status", "provider", "cleared_price_wei", "attempt", "result_path", "settle_tx"):
        out.print(f"{key:18} {job[key]}")
    for e in job["history"]:
        out.print(f"  {time.strftime('%H:%M:%S', time.localtime(e['at_s']))} {e['event']:10} -> {e['status']:9} "
                  f"{json.dumps(e['detail'], default=str) if e['detail'] else ''}")


@local_app.command()
def result(job_id: str, out_path: Annotated[Optional[Path], typer.Option("--out", help="Copy the result here.")] = None,
           database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Print where JOB_ID's result is (and its hash), or copy it with --out."""
    eng = engine(settings(database_url=database_url, data_dir=data_dir))
    with Session(eng) as s:
        job = ex.get_job(s, job_id)
        if not job.result_path:
            raise ex.InvalidJob("job_id", f"job {job_id} has no result yet (status {job.status}); "
                                          f"see `raymarket status {job_id}`")
        data = {"job_id": job_id, "status": job.status, "result_path": job.result_path,
                "result_hash": job.result_hash, "attestation": job.attestation}
    if out_path:
        shutil.copyfile(data["result_path"], out_path)
        data["copied_to"] = str(out_path)
    emit(data if as_json else data["copied_to"] if out_path else data["result_path"], as_json)


# ---------------------------------------------------------------------------- exchange
@exchange_app.command("run")
def exchange_run(
    database_url: DatabaseUrl = None, rpc_url: RpcUrl = None, ray_address: RayAddress = None, data_dir: DataDir = None,
    contract: Annotated[Optional[str], typer.Option(help="Settlement contract address (default: deploy one).")] = None,
    once: Annotated[bool, typer.Option(help="Run until no job is open, then exit.")] = False,
    interval_s: Annotated[float, typer.Option(min=0.1, help="Seconds between rounds.")] = 2.0,
    as_json: JsonOut = False,
) -> None:
    """Run matching rounds on the jobs in the database with the registered providers' workers."""
    runner = MarketRunner(settings(database_url=database_url, rpc_url=rpc_url, ray_address=ray_address, data_dir=data_dir), progress)
    runner.start_database()
    runner.start_ray(runner.provider_names() or None)
    runner.start_chain(contract)
    if not runner.attach_providers():
        progress("no provider workers found: start providers with `raymarket provider start --ray-address ...` "
                  "on the same cluster; jobs stay open until one offers")
    try:
        while True:
            reports = runner.run_until_done()
            for r in reports:
                if as_json:
                    sys.stdout.write(json.dumps({"round_id": r.round_id, "matched": r.matched, "paid": r.paid,
                                                 "failed": r.failed, "unmatched": r.unmatched}) + "\n")
            if once:
                break
            time.sleep(interval_s)
    finally:
        runner.shutdown()


# ---------------------------------------------------------------------------- replay and quote
@local_app.command()
def replay(item_id: Annotated[str, typer.Argument(help="A round id (r-...) or a pipeline batch id.")],
           database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Recompute a recorded auction round (or proving batch) and show that it matches."""
    eng = engine(settings(database_url=database_url, data_dir=data_dir))
    with Session(eng) as s:
        rec = s.get(RoundRecord, item_id)
        if rec is None:  # not an auction round: a proving-pipeline batch
            replay_command(item_id, pipeline_dir_=None, data_dir=data_dir, prover=None, as_json=as_json)
            return
        inputs, in_hash, out_hash = rec.inputs, rec.input_hash, rec.output_hash
    res = replay_round(inputs)
    data = {"round_id": item_id, "input_hash": res.input_hash, "output_hash": res.output_hash,
            "recorded_input_hash": in_hash, "recorded_output_hash": out_hash,
            "matches": res.input_hash == in_hash and res.output_hash == out_hash,
            "assignments": [[a.job_id, a.provider, str(a.price_wei)] for a in res.assignments]}
    emit(data if as_json else f"round {item_id}: {'MATCHES' if data['matches'] else 'DIFFERS'} "
                               f"(input {res.input_hash[:16]}…, output {res.output_hash[:16]}…, "
                               f"{len(data['assignments'])} assignments)", as_json)
    if not data["matches"]:
        raise typer.Exit(ExitCode.CHECK_FAILED)


@local_app.command()
def quote(
    spec: Annotated[str, typer.Argument(help="Job spec: a JSON file or inline JSON, e.g. "
                                             "'{\"kind\": \"proof\", \"cpus\": 1, \"max_price_wei\": 1000000000000000}'. "
                                             "Fields: kind, cpus, gpus, gpu_model, memory_bytes, duration_estimate_s, "
                                             "max_price_wei, deadline_s (from now), collateral_wei.")],
    database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Before submitting: is this job feasible now, which constraint blocks it, and a price estimate
    (p50 / p90 of recent clearing prices of its kind)."""
    path = Path(spec)
    try:
        doc = json.loads(path.read_text(encoding="utf-8") if path.is_file() else spec)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not a JSON file nor inline JSON ({exc})", param_hint="SPEC") from None
    if not isinstance(doc, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="SPEC")
    known = {"kind", "cpus", "gpus", "gpu_model", "memory_bytes", "duration_estimate_s", "max_price_wei",
             "deadline_s", "collateral_wei"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise typer.BadParameter(f"unknown field(s) {unknown}; known: {sorted(known)}", param_hint="SPEC")
    job = ex.JobSpec(job_id="quote", client="quote", input_hash="0x", params={},
                     **{"kind": "inference", "max_price_wei": 10**15, **{k: v for k, v in doc.items()}})
    eng = engine(settings(database_url=database_url, data_dir=data_dir))
    with Session(eng) as s:
        q = ex.quote_job(s, job)
    if as_json:
        emit(q, True)
        return
    verdict = "feasible" if q["feasible"] else "NOT feasible"
    out.print(f"{verdict}: {q['feasible_offers']} of {q['offers']} offers; cheapest ask "
              f"{q['cheapest_ask_wei'] or '-'} wei; recent clearing prices p50 {q['p50_wei'] or '-'} / "
              f"p90 {q['p90_wei'] or '-'} wei ({q['samples']} samples)")
    why = q["explanation"].removeprefix("quote:").strip()
    if why:
        out.print(f"why: {why}")
