"""Command line of the proving library, as snarkjs users expect it (mounted at the top level
of ``raymarket``): ``prove``, ``verify`` (one proof or ``--batch DIR``), ``export-verifier``.

Results go to stdout (``--json`` for machine-readable output); the exit code says what happened
(:class:`~market.cli.exit_codes.ExitCode`: 0 valid, 1 invalid proof, 3 unreadable or malformed
input, 8 prover backend not installed). These commands need no market: a provider uses them to
check its prover against snarkjs files. (It lives in the CLI layer: ``proving`` imports no typer.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer

from market.cli.exit_codes import ExitCode
from proving.backends import Groth16pyProver, get_backend
from proving.errors import BackendUnavailable, FormatError, ProvingError
from proving.formats.snarkjs_json import read_proof, read_public, read_verification_key, write_proof, write_public
from proving.formats.wtns_file import read_wtns
from proving.formats.zkey import read_verifying_key, read_zkey
from proving.groth16.batch import find_invalid
from proving.groth16.points import check_verifying_key
from proving.groth16.solidity import export_verifier
from proving.groth16.verifier import verify as verify_proof

app = typer.Typer(help="Groth16 (BN254) proving and verification, snarkjs-compatible.", no_args_is_help=True)


def _fail(err: Exception, code: ExitCode, as_json: bool) -> NoReturn:
    """Report ``err`` (stdout for an invalid proof or with ``--json``, else stderr) and exit with ``code``."""
    if as_json:
        typer.echo(json.dumps({"valid": False, "error": type(err).__name__, "reason": str(err)}))
    elif code == ExitCode.CHECK_FAILED:
        typer.echo(f"INVALID: {type(err).__name__}: {err}")
    else:
        typer.echo(f"error: {type(err).__name__}: {err}", err=True)
    raise typer.Exit(int(code))


@app.command()
def prove(
    zkey: Annotated[Path, typer.Argument(help="snarkjs Groth16 proving key (.zkey)")],
    witness: Annotated[Path, typer.Argument(help="witness (.wtns), e.g. from `snarkjs wtns calculate`")],
    proof: Annotated[Path, typer.Option("--proof", help="where to write proof.json")] = Path("proof.json"),
    public: Annotated[Path, typer.Option("--public", help="where to write public.json")] = Path("public.json"),
    backend: Annotated[str, typer.Option("--backend", help="numba | reference | groth16py")] = "numba",
) -> None:
    """Prove WITNESS under ZKEY and write snarkjs proof.json and public.json."""
    try:
        prover = get_backend(backend)
        w = read_wtns(witness)
        start = time.perf_counter()
        if isinstance(prover, Groth16pyProver):
            n_public = read_verifying_key(zkey).n_public
            result = prover.prove_files(zkey, witness)
        else:
            pk = read_zkey(zkey)
            n_public = pk.n_public
            result = prover.prove(pk, w)
        elapsed_s = time.perf_counter() - start
    except (BackendUnavailable, ValueError) as e:
        _fail(e, ExitCode.UNAVAILABLE if isinstance(e, BackendUnavailable) else ExitCode.BAD_INPUT, False)
    except (ProvingError, OSError) as e:
        _fail(e, ExitCode.BAD_INPUT, False)
    write_proof(proof, result)
    write_public(public, w[1 : 1 + n_public])
    typer.echo(f"proof written to {proof}, public signals to {public} ({backend}, {elapsed_s:.3f} s)", err=True)


def _batch_items(directory: Path) -> list[tuple[str, Path, Path]]:
    """``(label, public.json, proof.json)`` pairs in DIR: ``proof_<x>.json`` + ``public_<x>.json``
    files, or subdirectories holding ``proof.json`` + ``public.json``."""
    items = []
    for proof in sorted(directory.glob("proof_*.json")):
        suffix = proof.name[len("proof_") :]
        public = directory / f"public_{suffix}"
        if not public.exists():
            raise FormatError(str(proof), f"no matching {public.name} beside it")
        items.append((proof.stem[len("proof_") :], public, proof))
    for sub in sorted(p for p in directory.iterdir() if p.is_dir()):
        if (sub / "proof.json").exists():
            if not (sub / "public.json").exists():
                raise FormatError(str(sub), "has proof.json but no public.json")
            items.append((sub.name, sub / "public.json", sub / "proof.json"))
    if not items:
        raise FormatError(str(directory), "holds no proof_*.json/public_*.json pairs nor subdirectories with proof.json")
    return items


def _verify_batch(vk_path: Optional[Path], directory: Path, as_json: bool) -> None:
    try:
        vk = read_verification_key(vk_path or directory / "verification_key.json")
        check_verifying_key(vk)
        items = _batch_items(directory)
        publics, proofs = [], []
        for _label, public, proof in items:
            publics.append(read_public(public))
            proofs.append(read_proof(proof))
    except (ProvingError, OSError) as e:
        _fail(e, ExitCode.BAD_INPUT, as_json)
    start = time.perf_counter()
    reasons = find_invalid(vk, publics, proofs)
    elapsed_s = time.perf_counter() - start
    bad = [{"index": i, "name": items[i][0], "error": type(e).__name__, "reason": str(e)} for i, e in reasons.items()]
    if as_json:
        typer.echo(json.dumps({"valid": not bad, "count": len(items), "bad": bad, "elapsed_s": round(elapsed_s, 3)}))
    elif not bad:
        typer.echo(f"OK ({len(items)} proofs)")
    else:
        for b in bad:
            typer.echo(f"INVALID {b['name']}: {b['error']}: {b['reason']}")
    raise typer.Exit(int(ExitCode.OK if not bad else ExitCode.CHECK_FAILED))


@app.command()
def verify(
    verification_key: Annotated[Optional[Path], typer.Argument(help="snarkjs verification_key.json")] = None,
    public: Annotated[Optional[Path], typer.Argument(help="public.json")] = None,
    proof: Annotated[Optional[Path], typer.Argument(help="proof.json")] = None,
    batch: Annotated[Optional[Path], typer.Option("--batch", help="verify every proof in DIR at once "
                     "(proof_X.json + public_X.json pairs, or subdirectories with proof.json + public.json; "
                     "the key is VERIFICATION_KEY or DIR/verification_key.json)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON result")] = False,
) -> None:
    """Verify a Groth16 proof: exit 0 and print OK when valid, exit 1 and the reason when not."""
    if batch is not None:
        _verify_batch(verification_key, batch, as_json)
    if verification_key is None or public is None or proof is None:
        _fail(ValueError("give VERIFICATION_KEY PUBLIC PROOF, or --batch DIR"), ExitCode.BAD_INPUT, as_json)
    try:
        vk, x, p = read_verification_key(verification_key), read_public(public), read_proof(proof)
        check_verifying_key(vk)
    except (ProvingError, OSError) as e:
        _fail(e, ExitCode.BAD_INPUT, as_json)
    try:
        verify_proof(vk, x, p)
    except ProvingError as e:
        _fail(e, ExitCode.CHECK_FAILED, as_json)
    typer.echo(json.dumps({"valid": True}) if as_json else "OK")


@app.command("export-verifier")
def export_verifier_cmd(
    verification_key: Annotated[Path, typer.Argument(help="snarkjs verification_key.json")],
    output: Annotated[Path, typer.Argument(help="Solidity file to write, e.g. Verifier.sol")],
    contract_name: Annotated[str, typer.Option("--contract-name")] = "Groth16Verifier",
) -> None:
    """Write a Solidity verifier (BN254 precompiles) for VERIFICATION_KEY."""
    try:
        source = export_verifier(read_verification_key(verification_key), contract_name=contract_name)
    except (ProvingError, ValueError, OSError) as e:
        _fail(e, ExitCode.BAD_INPUT, False)
    output.write_text(source)
    typer.echo(f"verifier contract {contract_name} written to {output}", err=True)
