"""``raymarket``: the command line of the market (typer).

Data goes to stdout (``--json`` wherever data is printed), progress and logs to stderr. A
user error (bad input, missing file, unreachable database or RPC) prints one line naming
the problem and the fix, and exits non-zero with a code from :class:`ExitCode`; never a
traceback. Sub-apps from the areas are composed here with ``add_typer``.
"""

from __future__ import annotations

import enum
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

err = Console(stderr=True, highlight=False, soft_wrap=True)
#: Data on stdout; when it is not a terminal (a pipe, a file) tables keep their full width.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


class ExitCode(enum.IntEnum):
    """Exit codes of every command, in one place."""

    OK = 0
    INTERNAL = 1
    USAGE = 2  # typer/click's own code for bad options
    BAD_INPUT = 3
    NOT_FOUND = 4
    UNREACHABLE = 5
    REJECTED = 6  # verification failed / contract reverted
    INSUFFICIENT_FUNDS = 7


app = typer.Typer(name="raymarket", help="A Ray-based marketplace for verifiable compute.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="Database schema (alembic).", no_args_is_help=True)
submit_app = typer.Typer(help="Submit a job (its max price is escrowed from your balance).", no_args_is_help=True)
provider_app = typer.Typer(help="Run and manage a provider.", no_args_is_help=True)
exchange_app = typer.Typer(help="Run the exchange loop (matching rounds, execution, payment, settlement).",
                           no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(submit_app, name="submit")
app.add_typer(provider_app, name="provider")
app.add_typer(exchange_app, name="exchange")

# ---------------------------------------------------------------------------- common options
DatabaseUrl = Annotated[Optional[str], typer.Option("--database-url", envvar="RAYMARKET_DATABASE_URL",
                                                    help="SQLAlchemy URL; default: a SQLite file in the data dir.")]
RpcUrl = Annotated[Optional[str], typer.Option("--rpc-url", envvar="RAYMARKET_RPC_URL",
                                               help="Ethereum JSON-RPC (e.g. anvil); default: in-process EVM.")]
RayAddress = Annotated[Optional[str], typer.Option("--ray-address", envvar="RAYMARKET_RAY_ADDRESS",
                                                   help="Join this Ray cluster; default: start a local one.")]
DataDir = Annotated[Optional[Path], typer.Option("--data-dir", envvar="RAYMARKET_HOME",
                                                 help="Results, inputs, keys and the SQLite ledger.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def _settings(database_url: str | None = None, rpc_url: str | None = None, ray_address: str | None = None,
              data_dir: Path | None = None, **kw: Any):
    from market.settings import Settings, default_data_dir

    return Settings(database_url=database_url, rpc_url=rpc_url, ray_address=ray_address,
                    data_dir=data_dir or default_data_dir(), **kw)


def _progress(msg: str) -> None:
    err.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}")


def _emit(data: Any, as_json: bool, table: Table | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif table is not None:
        out.print(table)
    else:
        out.print(data)


def _positive_wei(name: str, value: str) -> int:
    try:
        amount = int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an integer number of wei (e.g. 1000000000)", param_hint=name)
    if amount <= 0:
        raise typer.BadParameter(f"must be a positive integer number of wei, got {amount}", param_hint=name)
    return amount


def _engine(database_url: str | None, data_dir: Path | None = None, migrate: bool = True):
    from market.db.base import make_engine
    from market.db.migrate import upgrade

    url = _settings(database_url, data_dir=data_dir).resolved_database_url
    if migrate:
        upgrade(url)
    return make_engine(url)


# ---------------------------------------------------------------------------- demo
@app.command()
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
    from market.exchange.demo import run_demo

    if text is not None and not text.is_file():
        raise typer.BadParameter(f"{text} is not a file", param_hint="--text")
    settings = _settings(database_url, rpc_url, ray_address, data_dir)
    report = run_demo(settings, text_path=text, proof_rounds=proof_rounds, proof_jobs=proof_jobs,
                      progress=_progress)
    if as_json:
        _emit(report, True)
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


# ---------------------------------------------------------------------------- db
@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None, data_dir: DataDir = None,
               revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or migrate the schema to REVISION (default: head)."""
    from market.db.migrate import upgrade

    url = _settings(database_url, data_dir=data_dir).resolved_database_url
    upgrade(url, revision)
    err.print(f"database at {revision}: {url.split('@')[-1]}")


@db_app.command("downgrade")
def db_downgrade(revision: str, database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Migrate the schema down to REVISION (``base`` drops everything)."""
    from market.db.migrate import downgrade

    url = _settings(database_url, data_dir=data_dir).resolved_database_url
    downgrade(url, revision)
    err.print(f"database at {revision}")


@db_app.command("check")
def db_check(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Fail when the models and the migrations differ (``alembic check``)."""
    from market.db.migrate import check

    check(_settings(database_url, data_dir=data_dir).resolved_database_url)
    err.print("models and migrations agree")


# ---------------------------------------------------------------------------- clients
@app.command()
def deposit(client: str, amount_wei: Annotated[str, typer.Argument(help="Amount in wei.")],
            database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Deposit AMOUNT_WEI into CLIENT's balance (from outside the market)."""
    from sqlalchemy.orm import Session

    from market import exchange as ex

    amount = _positive_wei("AMOUNT_WEI", amount_wei)
    engine = _engine(database_url, data_dir)
    with Session(engine) as s, s.begin():
        bal = ex.fund_client(s, client, amount, f"deposit:{client}:{time.time_ns()}")
    _emit({"client": client, "balance_wei": str(bal)} if as_json else f"{client}: balance {bal} wei", as_json)


def _runner_settings(database_url, rpc_url, ray_address, data_dir):
    return _settings(database_url, rpc_url, ray_address, data_dir)


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
    from market.exchange.runner import MarketRunner

    if not text_file.is_file():
        raise typer.BadParameter(f"{text_file} does not exist or is not a file", param_hint="TEXT_FILE")
    price = _positive_wei("--max-price", max_price)
    runner = MarketRunner(_settings(database_url, data_dir=data_dir), _progress)
    runner.start_database()
    jid = runner.submit_inference(client, text_file, max_price_wei=price, job_id=job_id, deadline_s=deadline_s)
    _emit({"job_id": jid, "status": "open"} if as_json else jid, as_json)


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
    from market.exchange.runner import MarketRunner

    price = _positive_wei("--max-price", max_price)
    runner = MarketRunner(_settings(database_url, data_dir=data_dir), _progress)
    runner.start_database()
    jid = runner.submit_proof(client, preimage, rounds=rounds, max_price_wei=price, job_id=job_id,
                              deadline_s=deadline_s)
    _emit({"job_id": jid, "status": "open"} if as_json else jid, as_json)


@app.command()
def status(job_id: Annotated[Optional[str], typer.Argument(help="A job id; omit to list all jobs.")] = None,
           database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Show a job (with its history: rounds, faults, re-auctions) or list all jobs."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from market import exchange as ex
    from market.db.models import JobRecord

    engine = _engine(database_url, data_dir)
    with Session(engine) as s:
        if job_id is None:
            jobs = [ex.job_summary(j) for j in s.scalars(select(JobRecord).order_by(JobRecord.created_at))]
            table = Table(title="jobs")
            for col in ("job", "kind", "status", "provider", "cleared price (wei)", "attempt"):
                table.add_column(col)
            for j in jobs:
                table.add_row(j["job_id"], j["kind"], j["status"], j["provider"] or "-",
                              j["cleared_price_wei"] or "-", str(j["attempt"]))
            _emit(jobs, as_json, table)
            return
        job = ex.job_summary(ex.get_job(s, job_id))
        job["history"] = [{"at_s": e.at_s, "event": e.event, "status": e.status, "detail": e.detail}
                          for e in ex.job_history(s, job_id)]
    if as_json:
        _emit(job, True)
        return
    for key in ("job_id", "kind", "status", "provider", "cleared_price_wei", "attempt", "result_path", "settle_tx"):
        out.print(f"{key:18} {job[key]}")
    for e in job["history"]:
        out.print(f"  {time.strftime('%H:%M:%S', time.localtime(e['at_s']))} {e['event']:10} -> {e['status']:9} "
                  f"{json.dumps(e['detail'], default=str) if e['detail'] else ''}")


@app.command()
def result(job_id: str, out_path: Annotated[Optional[Path], typer.Option("--out", help="Copy the result here.")] = None,
           database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Print where JOB_ID's result is (and its hash), or copy it with --out."""
    import shutil

    from sqlalchemy.orm import Session

    from market import exchange as ex

    engine = _engine(database_url, data_dir)
    with Session(engine) as s:
        job = ex.get_job(s, job_id)
        if not job.result_path:
            raise ex.InvalidJob("job_id", f"job {job_id} has no result yet (status {job.status}); "
                                          f"see `raymarket status {job_id}`")
        data = {"job_id": job_id, "status": job.status, "result_path": job.result_path,
                "result_hash": job.result_hash, "attestation": job.attestation}
    if out_path:
        shutil.copyfile(data["result_path"], out_path)
        data["copied_to"] = str(out_path)
    _emit(data if as_json else data["copied_to"] if out_path else data["result_path"], as_json)


# ---------------------------------------------------------------------------- provider
@provider_app.command("start")
def provider_start(
    ray_address: Annotated[str, typer.Option("--ray-address", envvar="RAYMARKET_RAY_ADDRESS",
                                             help="The market's Ray cluster (head GCS address host:port).")],
    price: Annotated[str, typer.Option("--price", help="Ask in wei per CPU-second.")],
    bond: Annotated[str, typer.Option("--bond", help="Stake to bond, wei.")],
    name: Annotated[Optional[str], typer.Option(help="Provider name (default: the host name).")] = None,
    key_file: Annotated[Optional[Path], typer.Option(help="Signing key file (created if absent).")] = None,
    join: Annotated[bool, typer.Option(help="Run `ray start` to join this machine as a node first.")] = True,
    cpus: Annotated[Optional[int], typer.Option(help="CPUs to offer (default: all detected).")] = None,
    database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Join this machine to the market's Ray cluster, bond stake and post an offer."""
    from providers.agent import start_provider

    info = start_provider(ray_address=ray_address, price_per_cpu_s_wei=_positive_wei("--price", price),
                          bond_wei=_positive_wei("--bond", bond), name=name, key_file=key_file, join=join,
                          cpus=cpus, settings=_settings(database_url, None, ray_address, data_dir),
                          progress=_progress)
    _emit(info, as_json)


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
    from market.exchange.runner import MarketRunner

    runner = MarketRunner(_settings(database_url, rpc_url, ray_address, data_dir), _progress)
    runner.start_database()
    runner.start_ray(runner.provider_names() or None)
    runner.start_chain(contract)
    if not runner.attach_providers():
        _progress("no provider workers found: start providers with `raymarket provider start --ray-address ...` "
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
@app.command()
def replay(item_id: Annotated[str, typer.Argument(help="A round id (r-...) or a pipeline batch id.")],
           database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Recompute a recorded auction round (or proving batch) and show that it matches."""
    from sqlalchemy.orm import Session

    from market.db.models import RoundRecord
    from market.core.matching import replay as replay_round

    engine = _engine(database_url, data_dir)
    with Session(engine) as s:
        rec = s.get(RoundRecord, item_id)
        if rec is None:  # not an auction round: a proving-pipeline batch
            from market.cli.pipeline import replay_command

            replay_command(item_id, data_dir=(data_dir / "pipeline") if data_dir else None, prover=None,
                           as_json=as_json)
            return
        inputs, in_hash, out_hash = rec.inputs, rec.input_hash, rec.output_hash
    res = replay_round(inputs)
    data = {"round_id": item_id, "input_hash": res.input_hash, "output_hash": res.output_hash,
            "recorded_input_hash": in_hash, "recorded_output_hash": out_hash,
            "matches": res.input_hash == in_hash and res.output_hash == out_hash,
            "assignments": [[a.job_id, a.provider, str(a.price_wei)] for a in res.assignments]}
    _emit(data if as_json else f"round {item_id}: {'MATCHES' if data['matches'] else 'DIFFERS'} "
                               f"(input {res.input_hash[:16]}…, output {res.output_hash[:16]}…, "
                               f"{len(data['assignments'])} assignments)", as_json)
    if not data["matches"]:
        raise typer.Exit(ExitCode.REJECTED)


@app.command()
def quote(
    spec: Annotated[str, typer.Argument(help="Job spec: a JSON file or inline JSON, e.g. "
                                             "'{\"kind\": \"proof\", \"cpus\": 1, \"max_price_wei\": 1000000000000000}'. "
                                             "Fields: kind, cpus, gpus, gpu_model, memory_bytes, duration_estimate_s, "
                                             "max_price_wei, deadline_s (from now), collateral_wei.")],
    database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Before submitting: is this job feasible now, which constraint blocks it, and a price estimate
    (p50 / p90 of recent clearing prices of its kind)."""
    from sqlalchemy.orm import Session

    from market import exchange as ex

    path = Path(spec)
    try:
        doc = json.loads(path.read_text(encoding="utf-8") if path.is_file() else spec)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not a JSON file nor inline JSON ({exc})", param_hint="SPEC")
    if not isinstance(doc, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="SPEC")
    known = {"kind", "cpus", "gpus", "gpu_model", "memory_bytes", "duration_estimate_s", "max_price_wei",
             "deadline_s", "collateral_wei"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise typer.BadParameter(f"unknown field(s) {unknown}; known: {sorted(known)}", param_hint="SPEC")
    job = ex.JobSpec(job_id="quote", client="quote", input_hash="0x", params={},
                     **{"kind": "inference", "max_price_wei": 10**15, **{k: v for k, v in doc.items()}})
    engine = _engine(database_url, data_dir)
    with Session(engine) as s:
        q = ex.quote_job(s, job)
    if as_json:
        _emit(q, True)
        return
    verdict = "feasible" if q["feasible"] else "NOT feasible"
    out.print(f"{verdict}: {q['feasible_offers']} of {q['offers']} offers; cheapest ask "
              f"{q['cheapest_ask_wei'] or '-'} wei; recent clearing prices p50 {q['p50_wei'] or '-'} / "
              f"p90 {q['p90_wei'] or '-'} wei ({q['samples']} samples)")
    why = q["explanation"].removeprefix("quote:").strip()
    if why:
        out.print(f"why: {why}")


def _mount_optional() -> None:
    """Mount the areas' command sets (each is optional while its module is being built)."""
    import importlib

    mounts = [("proving.cli", None), ("market.cli.ledger", "ledger"), ("market.cli.settlement", "settlement"),
              ("market.cli.pipeline", "pipeline"), ("market.quote_cli", None)]
    for module_name, group in mounts:
        try:
            mod = importlib.import_module(module_name)
        except ImportError:
            continue
        register = getattr(mod, "register", None)
        if register is not None:
            register(app, provider_app)
        elif group and hasattr(mod, f"{group}_app"):
            app.add_typer(getattr(mod, f"{group}_app"), name=group)
            if group == "settlement" and hasattr(mod, "watch"):
                app.command("watch")(mod.watch)
        elif hasattr(mod, "app"):
            app.registered_commands.extend(mod.app.registered_commands)


# ---------------------------------------------------------------------------- errors
def _error_map() -> list[tuple[type, ExitCode, str]]:
    """(exception type, exit code, hint) in match order; imports lazily so a broken area never breaks the CLI."""
    entries: list[tuple[type, ExitCode, str]] = []

    def add(path: str, name: str, code: ExitCode, hint: str) -> None:
        try:
            mod = __import__(path, fromlist=[name])
            entries.append((getattr(mod, name), code, hint))
        except (ImportError, AttributeError):
            pass

    add("market.ledger.errors", "InsufficientFunds", ExitCode.INSUFFICIENT_FUNDS,
        "deposit first: raymarket deposit CLIENT AMOUNT_WEI")
    add("market.ledger.errors", "UnknownAccount", ExitCode.NOT_FOUND, "deposit first to open the account")
    add("market.ledger.errors", "LedgerError", ExitCode.BAD_INPUT, "")
    add("market.exchange", "UnknownJob", ExitCode.NOT_FOUND, "")
    add("market.exchange", "ExchangeError", ExitCode.BAD_INPUT, "")
    add("market.settings", "SettingsError", ExitCode.BAD_INPUT, "")
    add("market.core.orders", "MatchingError", ExitCode.BAD_INPUT, "")
    add("market.exchange.verification", "ResultRejected", ExitCode.REJECTED, "")
    add("proving.errors", "ProvingError", ExitCode.REJECTED, "")
    add("contracts.errors", "ChainUnreachable", ExitCode.UNREACHABLE, "start the node or fix --rpc-url")
    add("contracts.errors", "ContractsError", ExitCode.REJECTED, "")
    add("contracts.tools", "ToolNotFound", ExitCode.NOT_FOUND, "")
    add("sqlalchemy.exc", "OperationalError", ExitCode.UNREACHABLE,
        "check --database-url / RAYMARKET_DATABASE_URL and that the server is up")
    add("providers.inference", "InferenceInputError", ExitCode.BAD_INPUT, "")
    entries.append((FileNotFoundError, ExitCode.NOT_FOUND, ""))
    entries.append((PermissionError, ExitCode.BAD_INPUT, ""))
    entries.append((ConnectionError, ExitCode.UNREACHABLE, "is the service running?"))
    return entries


def main() -> None:
    """Entry point: run the app; map known errors to one line on stderr and an exit code."""
    _mount_optional()
    try:
        rc = app(standalone_mode=False)  # click returns the code of a typer.Exit instead of raising it
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the one place that maps errors to exit codes
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):  # click/typer usage errors
            exc.show()
            sys.exit(exc.exit_code)
        for etype, code, hint in _error_map():
            if isinstance(exc, etype):
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                err.print(f"[red]error[/red] ({type(exc).__name__}): {first}" + (f"\n  hint: {hint}" if hint else ""))
                sys.exit(int(code))
        raise


if __name__ == "__main__":
    main()
