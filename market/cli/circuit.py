"""``raymarket circuit add|list|show``: bring your own Groth16 circuit (issue 13).

``circuit add ZKEY`` uploads a snarkjs Groth16 ``.zkey`` to the exchange, which stores it once under its sha256
(the circuit id) and derives its verification key; ``circuit show ID --vk-out verification_key.json`` writes that
key as snarkjs JSON (``snarkjs groth16 verify`` reads it). Proof jobs on the circuit:
``raymarket submit proof --circuit ID --witness witness.wtns --max-price WEI``. The witness is your secret: it is
sent only to the provider that proves it (delegated proving reveals it to that prover), never logged, and deleted
by the exchange once the job is paid or cancelled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from market.cli.accounts import KeyOpt, PasswordFile, load_account
from market.cli.common import DataDir, ExchangeUrl, JsonOut, emit, settings
from market.client import Client

circuit_app = typer.Typer(help="Register Groth16 circuits (snarkjs zkeys) and show their verification keys.",
                          no_args_is_help=True)

#: The fields ``circuit add --json`` prints.
ADD_FIELDS = ("circuit_id", "n_constraints", "n_public", "vk_sha256")


@circuit_app.command("add")
def add(
    zkey: Annotated[Path, typer.Argument(help="A snarkjs Groth16 .zkey.", exists=True, dir_okay=False,
                                         readable=True)],
    wasm: Annotated[Optional[Path], typer.Option(
        "--wasm", help="The circuit's witness calculator (circom's CIRCUIT_js/CIRCUIT.wasm): lets jobs give "
        "--input input.json instead of a witness.", exists=True, dir_okay=False, readable=True)] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="A display name (1-64 of A-Z a-z 0-9 _ -).")] = None,
    exchange: ExchangeUrl = None, key: KeyOpt = None, password_file: PasswordFile = None,
    data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Upload ZKEY (streamed; stored once by sha256; the exchange derives the verification key and registers the
    circuit's verifier on the settlement contract, so a bad proof can be challenged on chain)."""
    s = settings(exchange_url=exchange, data_dir=data_dir)
    with Client(s.exchange_url, load_account(key, password_file, s)) as c:
        rec = c.add_circuit(zkey, wasm=wasm, name=name)
    data = {k: rec[k] for k in ADD_FIELDS}
    onchain = (f"verifier {rec['verifier_address']} (tx {rec['verifier_tx']})" if rec.get("verifier_address")
               else f"verifier not registered yet: {rec.get('verifier_error') or 'pending'}")
    emit(data, as_json, f"{rec['circuit_id']}  {rec['n_constraints']} constraints, {rec['n_public']} public, "
                        f"vk sha256 {rec['vk_sha256']}" + (f", wasm {rec['wasm_sha256']}" if rec.get("wasm_sha256")
                                                           else "") + f"\n{onchain}")


@circuit_app.command("list")
def list_circuits(exchange: ExchangeUrl = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """The registered circuits."""
    s = settings(exchange_url=exchange, data_dir=data_dir)
    with Client(s.exchange_url) as c:
        rows = c.circuits()
    table = Table(title="circuits")
    for col in ("circuit_id", "name", "constraints", "public", "bytes"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["circuit_id"], r.get("name") or "", str(r["n_constraints"]), str(r["n_public"]),
                      str(r["size_bytes"]))
    emit(rows, as_json, table)


@circuit_app.command("show")
def show(
    circuit_id: Annotated[str, typer.Argument(help="The circuit id (sha256 hex of its zkey).")],
    vk_out: Annotated[Optional[Path], typer.Option(
        "--vk-out", help="Write the verification key here (snarkjs verification_key.json).")] = None,
    verifier_out: Annotated[Optional[Path], typer.Option(
        "--verifier-out", help="Write a Solidity verifier of the circuit here (Verifier.sol; snarkjs's "
        "verifyProof interface).")] = None,
    exchange: ExchangeUrl = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """One circuit; ``--vk-out`` writes its verification key as snarkjs JSON, ``--verifier-out`` a Solidity
    verifier."""
    s = settings(exchange_url=exchange, data_dir=data_dir)
    with Client(s.exchange_url) as c:
        rec = c.circuit(circuit_id)
        if verifier_out is not None:
            verifier_out.parent.mkdir(parents=True, exist_ok=True)
            verifier_out.write_text(c.circuit_verifier(circuit_id))
            rec["verifier_out"] = str(verifier_out)
    vk = rec.pop("vk")
    if vk_out is not None:
        vk_out.parent.mkdir(parents=True, exist_ok=True)
        vk_out.write_text(json.dumps(vk, indent=1) + "\n")
        rec["vk_out"] = str(vk_out)
    emit(rec, as_json, "\n".join(f"{k:14} {v}" for k, v in rec.items()))
