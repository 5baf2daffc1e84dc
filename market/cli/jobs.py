"""The client commands, a thin layer over the SDK (:class:`market.client.Client`):
``submit inference|proof``, ``status``, ``cancel``, ``result``, ``logs``, ``quote``, ``balance``, and the
market's view of the providers (``provider list``).

Every command talks to the exchange at ``--exchange URL`` (default: ``exchange_url`` in config.toml,
written by ``raymarket dev up``) and signs with your key (:mod:`market.cli.accounts`). ``--wait``
shows progress on stderr and prints the final job on stdout.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import click
import numpy as np
import typer
from eth_hash.auto import keccak
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from market.cli.accounts import KeyOpt, PasswordFile, load_account
from market.cli.common import DataDir, ExchangeUrl, JsonOut, emit, err, fail, out, settings
from market.cli.exit_codes import ExitCode
from market.client import Client
from market.core.jobspec import JobFile, JobSpecError, is_spec_path, load_spec, parse_size, validate_spec, wire_spec
from market.core.units import format_eth
from market.protocol import valid_id
from proving.field import FR_MODULUS

class SubmitGroup(TyperGroup):
    """``raymarket submit``: the subcommands, and ``submit JOB.toml|.json|.yaml`` (any existing file, or a name with
    a spec suffix) as the hidden ``file`` command."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and name not in self.commands and not name.startswith("-") and (is_spec_path(name)
                                                                                 or Path(name).is_file()):
            return "file", self.commands["file"], args
        return super().resolve_command(ctx, args)


submit_app = typer.Typer(cls=SubmitGroup, no_args_is_help=True,
                         help="Submit a job to the exchange (its max price is escrowed from your balance): "
                              "`submit JOB.toml` (or .json / .yaml: the spec file of market/core/jobspec.py), "
                              "`submit inference TEXT_FILE`, or `submit proof`.")
jobs_app = typer.Typer()

#: Final states of a job that count as success (``paid``: verified and paid; ``settled``: on-chain too).
SUCCESS = ("paid", "settled")

MaxPrice = Annotated[str, typer.Option("--max-price", help="Most you pay: wei, or with a unit (20gwei, 0.001eth); "
                                                           "escrowed until the result.")]
Wait = Annotated[bool, typer.Option("--wait", help="Wait until the job is paid (or fails); progress on stderr.")]
WaitTimeout = Annotated[float, typer.Option("--timeout-s", min=1.0, help="Give up waiting after this many seconds "
                                                                         "(the job keeps going).")]
Deadline = Annotated[float, typer.Option("--deadline-s", min=1.0, help="Seconds until the result is due.")]
Cpus = Annotated[int, typer.Option("--cpus", min=0, help="CPUs the job needs.")]
Gpus = Annotated[int, typer.Option("--gpus", min=0, help="GPUs the job needs.")]
GpuModel = Annotated[Optional[str], typer.Option("--gpu-model", help="Required GPU model, e.g. A100 (default: any).")]
Memory = Annotated[str, typer.Option("--memory", help="Memory the job needs: bytes, or with a unit (512MiB, 2GiB).")]
Verification = Annotated[Optional[str], typer.Option(
    "--verification", help="proof | spot-check:RATE (0 < RATE <= 1) | attest-only; prices and collateral follow "
                           "it (market/core/policy.py). Default: proof for proofs, spot-check:0.5 for inference.")]


def _job_id(value: Optional[str]) -> Optional[str]:
    """A job id as the exchange accepts it (``market.protocol.ID_PATTERN``), checked before any request."""
    if value is not None and not valid_id(value):
        raise typer.BadParameter("a job id is 1-64 of A-Z a-z 0-9 _ - (e.g. j-0123abcd)")
    return value


def _preimage(value: Optional[int]) -> Optional[int]:
    """A MiMC-7 preimage: a BN254 scalar in [0, r). The message never repeats it (it is the job's secret)."""
    if value is not None and not 0 <= value < FR_MODULUS:
        raise typer.BadParameter("must be in [0, r) with r the BN254 scalar field modulus (the value is not shown: "
                                 "it is your secret)")
    return value


def result_file_name(kind: str, data: bytes) -> str:
    """The default file name of a result: its keccak256 (never a path from a job id), ``.npy`` or ``.proof.json``."""
    return keccak(data).hex() + (".npy" if kind == "inference" else ".proof.json")


JobIdOpt = Annotated[Optional[str], typer.Option("--job-id", callback=_job_id, help="Your id for the job (a retry "
                                                 "with it is idempotent; default: the exchange picks one).")]
Collateral = Annotated[str, typer.Option("--collateral", help="Provider stake locked for this job: wei or with a "
                                         "unit (0: the verification policy's required collateral).")]
JobArg = Annotated[str, typer.Argument(callback=_job_id, help="The job id.")]

#: Spec field -> the flag of ``submit inference|proof`` that sets it (flag errors name the flag).
FLAGS = {"max_price": "--max-price", "deadline_s": "--deadline-s", "collateral": "--collateral",
         "verification": "--verification", "job_id": "--job-id", "resources.cpus": "--cpus", "resources.gpus": "--gpus",
         "resources.gpu_model": "--gpu-model", "resources.memory": "--memory", "inputs.preimage": "--preimage",
         "inputs.rounds": "--rounds", "inputs.circuit": "--circuit", "inputs.witness": "--witness",
         "inputs.public": "--public", "inputs.input": "--input", "inputs.text_file": "TEXT_FILE"}


def parse_bytes(text: str, name: str = "--memory") -> int:
    """``"2GiB"`` -> 2147483648; plain integers are bytes (:func:`market.core.jobspec.parse_size`, exact).

    Raises:
        typer.BadParameter: not a number with a known unit (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB).
    """
    try:
        return parse_size(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=name) from None


def client(exchange: str | None, key: str | None, password_file: Path | None, data_dir: Path | None, *,
           signed: bool = True) -> Client:
    """An SDK client for the command: the exchange URL from the settings, the key from the keystore."""
    s = settings(exchange_url=exchange, data_dir=data_dir)
    account = load_account(key, password_file, s) if signed else None
    return Client(s.exchange_url, account)


def describe(job: dict[str, Any]) -> str:
    """One progress line for ``job``."""
    parts = [f"job {job['job_id']}: {job['status']}"]
    if job.get("provider"):
        parts.append(f"provider {job['provider']}")
    if job.get("price_wei"):
        parts.append(f"price {job['price_wei']} wei")
    if job.get("status") == "open" and job.get("explanation"):
        parts.append(f"({job['explanation']})")
    return ", ".join(parts)


def _finish(c: Client, job: dict[str, Any], wait: bool, timeout_s: float, as_json: bool) -> None:
    if wait:
        err.print(describe(job))
        job = c.wait(job["job_id"], timeout_s=timeout_s, on_progress=lambda j: err.print(describe(j)))
    emit(job, as_json, f"{job['job_id']}  {job['status']}")
    if wait and job["status"] not in SUCCESS:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


def spec_problems(exc: JobSpecError, *, flags: bool = False, argument: bool = False) -> NoReturn:
    """Print every problem of a spec on stderr (naming the flag when it came from ``flags``) and exit: flags or an
    inline spec ``argument`` -> :attr:`ExitCode.USAGE` (a bad argument); a spec file -> :attr:`ExitCode.BAD_INPUT`."""
    for field, message in exc.problems:
        name = FLAGS.get(field, field) if flags else field
        err.print(f"[red]error[/red] (job spec) {escape(name)}: {escape(message)}", highlight=False)
    err.print(f"  hint: {escape(exc.hint)}", highlight=False)
    raise typer.Exit(int(ExitCode.USAGE if flags or argument else ExitCode.BAD_INPUT))


def _from_flags(doc: dict[str, Any]) -> JobFile:
    """The spec the flags describe (``None`` values left out: the model's defaults apply)."""
    doc = {k: v for k, v in doc.items() if v is not None}
    for section in ("inputs", "resources"):
        doc[section] = {k: v for k, v in doc.get(section, {}).items() if v is not None}
    try:
        return validate_spec(doc, base_dir=Path("."))
    except JobSpecError as exc:
        spec_problems(exc, flags=True)


def _flag_amount(text: str) -> int | str:
    """A flag's amount as the model takes it: a plain integer stays an int (wei), anything else is parsed there."""
    return int(text) if re.fullmatch(r"\s*[0-9]+\s*", text) else text


def submit_spec(c: Client, spec: JobFile) -> dict[str, Any]:
    """Submit ``spec`` (a MiMC-7 job without a preimage gets a random 128-bit one)."""
    try:
        wire = wire_spec(spec, preimage=secrets.randbits(128))
    except JobSpecError as exc:
        spec_problems(exc, flags=False)
    return c.submit(wire)


def _common_flags(max_price: str, deadline_s: float, cpus: int, gpus: int, gpu_model: str | None, memory: str,
                  job_id: str | None, collateral: str, verification: str | None) -> dict[str, Any]:
    stake = _flag_amount(collateral)
    return {"max_price": _flag_amount(max_price), "deadline_s": deadline_s, "job_id": job_id,
            "collateral": None if stake in (0, "") else stake, "verification": verification,
            "resources": {"cpus": cpus, "gpus": gpus, "gpu_model": gpu_model, "memory": _flag_amount(memory)}}


@submit_app.command("file", hidden=True)
def submit_file(
    spec_path: Annotated[Path, typer.Argument(metavar="JOB.toml", help="The job spec (TOML, JSON or YAML).")],
    wait: Wait = False, timeout_s: WaitTimeout = 600.0, exchange: ExchangeUrl = None, key: KeyOpt = None,
    password_file: PasswordFile = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Submit the job a spec file describes (`raymarket submit JOB.toml`)."""
    try:
        spec = load_spec(spec_path)
    except JobSpecError as exc:
        spec_problems(exc, flags=False)
    with client(exchange, key, password_file, data_dir) as c:
        _finish(c, submit_spec(c, spec), wait, timeout_s, as_json)


@submit_app.command("inference")
def submit_inference(
    text_file: Annotated[Path, typer.Argument(help="UTF-8 text, one sentence per line.", exists=True,
                                              dir_okay=False, readable=True)],
    max_price: MaxPrice, wait: Wait = False, timeout_s: WaitTimeout = 600.0, deadline_s: Deadline = 3600.0,
    cpus: Cpus = 1, gpus: Gpus = 0, gpu_model: GpuModel = None, memory: Memory = "0", job_id: JobIdOpt = None,
    collateral: Collateral = "0", verification: Verification = None, exchange: ExchangeUrl = None,
    key: KeyOpt = None, password_file: PasswordFile = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Submit a sentence-embedding job (all-MiniLM-L6-v2, 384 floats per line) over TEXT_FILE."""
    spec = _from_flags({"kind": "inference", "inputs": {"text_file": str(text_file)},
                        **_common_flags(max_price, deadline_s, cpus, gpus, gpu_model, memory, job_id, collateral,
                                        verification)})
    with client(exchange, key, password_file, data_dir) as c:
        _finish(c, submit_spec(c, spec), wait, timeout_s, as_json)


@submit_app.command("proof")
def submit_proof(
    max_price: MaxPrice,
    preimage: Annotated[Optional[int], typer.Option(
        "--preimage", callback=_preimage,
        help="The secret MiMC-7 preimage to prove knowledge of (default: a random one).")] = None,
    rounds: Annotated[Optional[int], typer.Option("--rounds", min=1,
                                                  help="MiMC-7 rounds of the circuit (default 91 = circomlib's).")] = None,
    circuit: Annotated[Optional[str], typer.Option(
        "--circuit", help="A registered circuit's id (`raymarket circuit add`); needs --witness or --input.")] = None,
    witness: Annotated[Optional[Path], typer.Option(
        "--witness", exists=True, dir_okay=False, readable=True,
        help="The snarkjs .wtns for --circuit (your secret: sent only to the provider that proves it).")] = None,
    input_path: Annotated[Optional[Path], typer.Option(
        "--input", exists=True, dir_okay=False, readable=True,
        help="The circuit's input.json (with --circuit registered with its wasm): the provider computes the witness.")
    ] = None,
    public: Annotated[Optional[Path], typer.Option(
        "--public", exists=True, dir_okay=False, readable=True,
        help="public.json you expect (with --witness): refused at intake when the witness's signals differ.")] = None,
    wait: Wait = False, timeout_s: WaitTimeout = 600.0, deadline_s: Deadline = 3600.0,
    cpus: Cpus = 1, gpus: Gpus = 0, gpu_model: GpuModel = None, memory: Memory = "0", job_id: JobIdOpt = None,
    collateral: Collateral = "0", verification: Verification = None, exchange: ExchangeUrl = None,
    key: KeyOpt = None, password_file: PasswordFile = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Submit a Groth16 proof job: on a registered circuit (--circuit ID with --witness W.wtns or --input
    input.json), or knowledge of a MiMC-7 preimage of a public hash (verified by the exchange against the
    circuit's verification key)."""
    if circuit is not None and circuit != "mimc7" and witness is None and input_path is None:
        raise typer.BadParameter("a registered circuit needs --witness W.wtns or --input input.json",
                                 param_hint="--circuit")
    if (witness is not None or input_path is not None) and circuit is None:
        raise typer.BadParameter("--witness / --input go with --circuit ID", param_hint="--circuit")
    inputs = {"circuit": circuit, "preimage": preimage, "rounds": rounds, "witness": witness and str(witness),
              "input": input_path and str(input_path), "public": public and str(public)}
    spec = _from_flags({"kind": "proof", "inputs": inputs,
                        **_common_flags(max_price, deadline_s, cpus, gpus, gpu_model, memory, job_id, collateral,
                                        verification)})
    with client(exchange, key, password_file, data_dir) as c:
        _finish(c, submit_spec(c, spec), wait, timeout_s, as_json)


@jobs_app.command("status")
def status(job_id: JobArg, exchange: ExchangeUrl = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Show a job: its status, price, provider, history (rounds, faults, re-auctions) and, while it is
    open, why it is not matched yet."""
    with client(exchange, None, None, data_dir, signed=False) as c:
        job = c.status(job_id)
    if as_json:
        emit(job, True)
        return
    for k in ("job_id", "kind", "status", "client", "provider", "verification", "attested_verification",
              "max_price_wei", "price_wei", "collateral_wei", "result_hash", "batch_id", "tx_hash"):
        label = "attested" if k == "attested_verification" else k  # the policy signed into the attestation
        out.print(f"{label:14} {job.get(k) if job.get(k) is not None else '-'}", highlight=False, markup=False)
    if job.get("explanation"):
        out.print(f"{'why open':14} {job['explanation']}", markup=False)
    for e in job.get("history", []):
        detail = json.dumps(e["detail"], default=str) if e.get("detail") else ""
        out.print(f"  {time.strftime('%H:%M:%S', time.localtime(e['at_s']))} {e['event']:12} -> "
                  f"{e['status']:9} {detail}", markup=False)


@jobs_app.command("cancel")
def cancel(job_id: JobArg, exchange: ExchangeUrl = None, key: KeyOpt = None, password_file: PasswordFile = None,
           data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Cancel your job: a full refund while it is open; after assignment, the exchange's rule applies."""
    with client(exchange, key, password_file, data_dir) as c:
        job = c.cancel(job_id)
    emit(job, as_json, describe(job))


def result_summary(kind: str, data: bytes) -> dict[str, Any]:
    """What the result holds: an embedding's ``shape``/``dtype`` (a ``.npy``), or a proof's fields.

    Raises:
        ValueError: an inference result that is not a 2-D float32 ``.npy`` array.
    """
    if kind == "inference":
        arr = np.load(io.BytesIO(data), allow_pickle=False)
        if arr.ndim != 2 or arr.dtype != np.float32:
            raise ValueError(f"the embedding is {arr.dtype} of shape {arr.shape}, not a 2-D float32 array")
        return {"shape": list(arr.shape), "dtype": str(arr.dtype)}
    return {"fields": sorted(json.loads(data))}


@jobs_app.command("result")
def result(
    job_id: JobArg,
    out_path: Annotated[Optional[Path], typer.Option(
        "--out", help="Where to write the result (default: <data-dir>/results/<keccak of the bytes>.npy or .proof.json).")] = None,
    exchange: ExchangeUrl = None, key: KeyOpt = None, password_file: PasswordFile = None,
    data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Download your job's result, check its bytes against the attested result hash, and write it
    (embeddings: a float32 .npy of shape (lines, 384); proofs: the proof JSON, or with --out DIR (a directory
    or a path without suffix) snarkjs DIR/proof.json and DIR/public.json)."""
    s = settings(exchange_url=exchange, data_dir=data_dir)
    with Client(s.exchange_url, load_account(key, password_file, s)) as c:
        job = c.status(job_id)
        data = c.result(job_id)  # raises ApiError("bad_result") when the bytes do not match the attested hash
    try:
        summary = result_summary(job["kind"], data)
    except ValueError as exc:
        fail(f"job {job_id}: {exc}", ExitCode.CHECK_FAILED)
    if job["kind"] == "proof" and out_path is not None and (out_path.is_dir() or not out_path.suffix):
        proof, public = json.loads(data)["proof"], json.loads(data)["public"]  # snarkjs proof.json + public.json
        out_path.mkdir(parents=True, exist_ok=True)
        (out_path / "proof.json").write_text(json.dumps(proof, indent=1) + "\n")
        (out_path / "public.json").write_text(json.dumps(public, indent=1) + "\n")
        info = {"job_id": job_id, "kind": "proof", "status": job["status"], "out": str(out_path),
                "files": ["proof.json", "public.json"], "bytes": len(data), "result_hash": job.get("result_hash"),
                "hash_checked": True}
        emit(info, as_json, f"{out_path}/proof.json, {out_path}/public.json  (hash checked)")
        return
    path = out_path or s.results_dir / result_file_name(job["kind"], data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    info = {"job_id": job_id, "kind": job["kind"], "status": job["status"], "out": str(path), "bytes": len(data),
            "result_hash": job.get("result_hash"), "hash_checked": True, **summary}
    emit(info, as_json, f"{path}  ({len(data)} bytes, hash checked" +
         (f", shape {tuple(summary['shape'])})" if "shape" in summary else ")"))


@jobs_app.command("logs")
def logs(job_id: JobArg, exchange: ExchangeUrl = None, key: KeyOpt = None, password_file: PasswordFile = None,
         data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Print the log lines your job's provider uploaded."""
    with client(exchange, key, password_file, data_dir) as c:
        lines = c.logs(job_id)
    emit({"job_id": job_id, "lines": lines}, as_json, "\n".join(lines) if lines else f"no log lines for {job_id}")


@jobs_app.command("quote")
def quote(
    spec_arg: Annotated[str, typer.Argument(metavar="JOB", help=(
        "The job: a spec file (JOB.toml, .json, .yaml; the format of `raymarket submit JOB.toml`) or inline JSON, "
        "in the file form or the API's flat form, e.g. '{\"kind\": \"proof\", \"max_price\": \"0.001eth\"}'."))],
    exchange: ExchangeUrl = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Before submitting: is this job feasible now, and if not the blocking constraint (exit 1), the collateral its
    verification policy needs, and a price estimate (p50 / p90 of recent clearing prices of its kind)."""
    inline = not (is_spec_path(spec_arg) or Path(spec_arg).is_file())
    try:
        spec = load_spec(spec_arg)
        wire = wire_spec(spec, preimage=0)  # matching does not depend on the preimage: never send a secret to quote
    except JobSpecError as exc:
        spec_problems(exc, argument=inline)
    with client(exchange, None, None, data_dir, signed=False) as c:
        q = c.quote(wire)
    q = {**q, "verification": q.get("verification") or wire["verification"]}
    if q.get("feasible"):
        emit(q, as_json, f"feasible: {q.get('explanation')}; collateral {q.get('collateral_wei')} wei "
                         f"({q['verification']}); recent clearing prices p50 {q.get('p50_wei') or '-'} / p90 "
                         f"{q.get('p90_wei') or '-'} wei")
        return
    what = f"{q.get('blocking') or 'unknown'}" + (f" ({q['resource']})" if q.get("resource") else "")
    emit(q, as_json, f"NOT feasible: blocked by {what}\nwhy: {q.get('explanation')}")
    raise typer.Exit(int(ExitCode.CHECK_FAILED))


@jobs_app.command("balance")
def balance(exchange: ExchangeUrl = None, key: KeyOpt = None, password_file: PasswordFile = None,
            data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Your balance at the exchange: free and escrowed, in ETH with the exact wei beside (``--json``: wei strings)."""
    with client(exchange, key, password_file, data_dir) as c:
        bal = c.balance()
    emit(bal, as_json, f"{bal['address']}: {format_eth(int(bal['balance_wei']))} free, "
                       f"{format_eth(int(bal['escrowed_wei']))} escrowed")


def provider_list(exchange: ExchangeUrl = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """The market's providers: name, address, hardware, offer, online, reputation, draining."""
    with client(exchange, None, None, data_dir, signed=False) as c:
        rows = c.providers()
    table = Table(title="providers")
    for col in ("name", "address", "online", "draining", "cpus", "gpus", "price/cpu-s (wei)", "reputation"):
        table.add_column(col, overflow="fold")
    for p in rows:
        offer = p.get("offer") or {}
        table.add_row(p["name"], p["address"], str(p.get("online")), str(p.get("draining")), str(offer.get("cpus")),
                      str(offer.get("gpus")), str(offer.get("price_per_cpu_s_wei")), str(p.get("reputation")))
    emit(rows, as_json, table if rows else "no providers registered")


def register(app: typer.Typer, provider_app: typer.Typer) -> None:
    """Mount the client commands on the root app and ``list`` under ``raymarket provider``."""
    app.add_typer(submit_app, name="submit")
    app.registered_commands.extend(jobs_app.registered_commands)
    provider_app.command("list")(provider_list)
