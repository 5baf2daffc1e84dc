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
from typing import Annotated, Any, Optional

import numpy as np
import typer
from eth_hash.auto import keccak
from rich.table import Table

from market.cli.accounts import KeyOpt, PasswordFile, load_account
from market.cli.common import DataDir, ExchangeUrl, JsonOut, emit, err, fail, out, settings, wei
from market.cli.exit_codes import ExitCode
from market.client import Client
from market.core.units import format_eth
from market.protocol import valid_id
from proving.field import FR_MODULUS

submit_app = typer.Typer(help="Submit a job to the exchange (its max price is escrowed from your balance).",
                         no_args_is_help=True)
jobs_app = typer.Typer()

#: Final states of a job that count as success (``paid``: verified and paid; ``settled``: on-chain too).
SUCCESS = ("paid", "settled")

MaxPrice = Annotated[str, typer.Option("--max-price", help="Most you pay, in wei (escrowed until the result).")]
Wait = Annotated[bool, typer.Option("--wait", help="Wait until the job is paid (or fails); progress on stderr.")]
WaitTimeout = Annotated[float, typer.Option("--timeout-s", min=1.0, help="Give up waiting after this many seconds "
                                                                         "(the job keeps going).")]
Deadline = Annotated[float, typer.Option("--deadline-s", min=1.0, help="Seconds until the result is due.")]
Cpus = Annotated[int, typer.Option("--cpus", min=0, help="CPUs the job needs.")]
Gpus = Annotated[int, typer.Option("--gpus", min=0, help="GPUs the job needs.")]
GpuModel = Annotated[Optional[str], typer.Option("--gpu-model", help="Required GPU model, e.g. A100 (default: any).")]
Memory = Annotated[str, typer.Option("--memory", help="Memory the job needs: bytes, or with a unit (512MiB, 2GiB).")]
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
Collateral = Annotated[str, typer.Option("--collateral", help="Provider stake locked for this job, wei.")]
JobArg = Annotated[str, typer.Argument(callback=_job_id, help="The job id.")]

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def parse_bytes(text: str, name: str = "--memory") -> int:
    """``"2GiB"`` -> 2147483648; plain integers are bytes.

    Raises:
        typer.BadParameter: not a number with a known unit (B, kB, MB, GB, KiB, MiB, GiB, TiB).
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if m is None or m.group(2).lower() not in _UNITS:
        raise typer.BadParameter(f"{text!r} is not a size (e.g. 1000000, 512MiB, 2GiB)", param_hint=name)
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


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


@submit_app.command("inference")
def submit_inference(
    text_file: Annotated[Path, typer.Argument(help="UTF-8 text, one sentence per line.", exists=True,
                                              dir_okay=False, readable=True)],
    max_price: MaxPrice, wait: Wait = False, timeout_s: WaitTimeout = 600.0, deadline_s: Deadline = 3600.0,
    cpus: Cpus = 1, gpus: Gpus = 0, gpu_model: GpuModel = None, memory: Memory = "0", job_id: JobIdOpt = None,
    collateral: Collateral = "0", exchange: ExchangeUrl = None, key: KeyOpt = None,
    password_file: PasswordFile = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Submit a sentence-embedding job (all-MiniLM-L6-v2, 384 floats per line) over TEXT_FILE."""
    price, memory_bytes = wei(max_price, "--max-price"), parse_bytes(memory)
    with client(exchange, key, password_file, data_dir) as c:
        job = c.submit_inference(text_file, max_price_wei=price, deadline_s=deadline_s, cpus=cpus, gpus=gpus,
                                 gpu_model=gpu_model, memory_bytes=memory_bytes, job_id=job_id,
                                 collateral_wei=wei(collateral, "--collateral", allow_zero=True))
        _finish(c, job, wait, timeout_s, as_json)


@submit_app.command("proof")
def submit_proof(
    max_price: MaxPrice,
    preimage: Annotated[Optional[int], typer.Option(
        "--preimage", callback=_preimage,
        help="The secret MiMC-7 preimage to prove knowledge of (default: a random one).")] = None,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="MiMC-7 rounds of the circuit (91 = circomlib's).")] = 91,
    circuit: Annotated[Optional[str], typer.Option(
        "--circuit", help="A registered circuit's id (`raymarket circuit add`); needs --witness.")] = None,
    witness: Annotated[Optional[Path], typer.Option(
        "--witness", exists=True, dir_okay=False, readable=True,
        help="The snarkjs .wtns for --circuit (your secret: sent only to the provider that proves it).")] = None,
    public: Annotated[Optional[Path], typer.Option(
        "--public", exists=True, dir_okay=False, readable=True,
        help="public.json you expect (with --circuit): refused at intake when the witness's signals differ.")] = None,
    wait: Wait = False, timeout_s: WaitTimeout = 600.0, deadline_s: Deadline = 3600.0,
    cpus: Cpus = 1, gpus: Gpus = 0, gpu_model: GpuModel = None, memory: Memory = "0", job_id: JobIdOpt = None,
    collateral: Collateral = "0", exchange: ExchangeUrl = None, key: KeyOpt = None,
    password_file: PasswordFile = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Submit a Groth16 proof job: on a registered circuit (--circuit ID --witness W.wtns), or knowledge of a
    MiMC-7 preimage of a public hash (verified by the exchange against the circuit's verification key)."""
    price, memory_bytes = wei(max_price, "--max-price"), parse_bytes(memory)
    if (circuit is None) != (witness is None):
        raise typer.BadParameter("--circuit and --witness go together", param_hint="--circuit")
    if circuit is not None and witness is not None:
        expected = json.loads(public.read_text()) if public is not None else None
        with client(exchange, key, password_file, data_dir) as c:
            job = c.submit_proof(circuit_id=circuit, witness=witness, public=expected, max_price_wei=price,
                                 deadline_s=deadline_s, cpus=cpus, gpus=gpus, gpu_model=gpu_model,
                                 memory_bytes=memory_bytes, job_id=job_id,
                                 collateral_wei=wei(collateral, "--collateral", allow_zero=True))
            _finish(c, job, wait, timeout_s, as_json)
        return
    secret = preimage if preimage is not None else secrets.randbits(128)
    with client(exchange, key, password_file, data_dir) as c:
        job = c.submit_proof(secret, rounds=rounds, max_price_wei=price, deadline_s=deadline_s, cpus=cpus,
                             gpus=gpus, gpu_model=gpu_model, memory_bytes=memory_bytes, job_id=job_id,
                             collateral_wei=wei(collateral, "--collateral", allow_zero=True))
        _finish(c, job, wait, timeout_s, as_json)


@jobs_app.command("status")
def status(job_id: JobArg, exchange: ExchangeUrl = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Show a job: its status, price, provider, history (rounds, faults, re-auctions) and, while it is
    open, why it is not matched yet."""
    with client(exchange, None, None, data_dir, signed=False) as c:
        job = c.status(job_id)
    if as_json:
        emit(job, True)
        return
    for k in ("job_id", "kind", "status", "client", "provider", "max_price_wei", "price_wei", "result_hash",
              "batch_id", "tx_hash"):
        out.print(f"{k:14} {job.get(k) if job.get(k) is not None else '-'}", highlight=False, markup=False)
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


_QUOTE_FIELDS = {"kind", "cpus", "gpus", "gpu_model", "memory_bytes", "max_price_wei", "deadline_s",
                 "collateral_wei", "rounds", "circuit"}


@jobs_app.command("quote")
def quote(
    spec: Annotated[str, typer.Argument(help="Job spec: a JSON file or inline JSON, e.g. "
                                             "'{\"kind\": \"proof\", \"cpus\": 1, \"max_price_wei\": \"1000000000000000\"}'. "
                                             "Fields: kind, cpus, gpus, gpu_model, memory_bytes, max_price_wei, "
                                             "deadline_s, collateral_wei, rounds.")],
    exchange: ExchangeUrl = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Before submitting: is this job feasible now, why not, and a price estimate (p50 / p90 of recent
    clearing prices of its kind)."""
    path = Path(spec)
    try:
        doc = json.loads(path.read_text(encoding="utf-8") if path.is_file() else spec)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not a JSON file nor inline JSON ({exc})", param_hint="SPEC") from None
    if not isinstance(doc, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="SPEC")
    unknown = sorted(set(doc) - _QUOTE_FIELDS)
    if unknown:
        raise typer.BadParameter(f"unknown field(s) {unknown}; known: {sorted(_QUOTE_FIELDS)}", param_hint="SPEC")
    with client(exchange, None, None, data_dir, signed=False) as c:
        q = c.quote(doc)
    verdict = "feasible" if q.get("feasible") else "NOT feasible"
    emit(q, as_json, f"{verdict}; recent clearing prices p50 {q.get('p50_wei') or '-'} / p90 "
                     f"{q.get('p90_wei') or '-'} wei" + (f"\nwhy: {q['explanation']}" if q.get("explanation") else ""))


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
