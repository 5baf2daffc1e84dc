"""Registered Groth16 circuits (issue 13): a client uploads a snarkjs ``.zkey``; the exchange stores it once under
its sha256 (the circuit id), derives the verification key (snarkjs ``verification_key.json``) and keeps both in
``circuits`` (``market.db.models.CircuitRecord``). Proof jobs on the circuit carry a snarkjs ``.wtns``; at intake
the exchange checks its shape against the zkey and reads the public signals from it (``w[1..n_public]``), which
the delivered proof must verify for (``market.exchange.service.completion``).

Privacy: the witness is the client's secret. It is stored only as the job's ``witness`` blob, sent only in the
lease ticket of the provider that proves it (delegated proving reveals it to that prover), never logged, and
deleted once the job is paid or cancelled (:func:`drop_witness`). The same holds for a circuit input
(``submit proof --input``): stored as the job's ``input_json`` blob, sent only to the prover, deleted likewise.

Witness from an input (``circuit add --wasm``): a circuit may carry its circom witness-calculator wasm (stored
once, by sha256, at most :data:`MAX_WASM_BYTES`). A job then gives the input JSON instead of a witness
(``market.core.circuit_input``); the exchange evaluates the public signals once at intake
(:func:`input_public`, bounded in time and memory, ``contracts.wasm_witness``), so the job's statement (circuit
id, public signals) is fixed before it is auctioned, exactly as for a ``.wtns``; the provider computes the
witness itself from the wasm and proves it; the proof must verify for those public signals and the circuit's
verification key before anything is paid.

On chain (:func:`register_on_chain`): each circuit's verification key is deployed as a ``KeyedGroth16Verifier``
and registered on the Settlement contract under the circuit id (bytes32 = the zkey's sha256), so a bad-proof
challenge (``Settlement.challengeProof``) works for it; the tx is recorded on the circuit.

The MiMC-7 example (``submit proof --preimage N --rounds R``) is one registered circuit per round count
(:func:`ensure_mimc`: the dev ceremony's zkey, owner ``exchange``, name ``mimc7-R``), registered on first use.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.bindings import SettlementContract, deploy, g1_words, g2_words
from contracts.wasm_witness import WitnessError, calculate_witness
from market.core.tickets import dev_proving_key
from market.db.models import CircuitRecord, JobBlob
from proving.circuits.mimc import round_constants
from proving.errors import RaymarketError
from proving.field import FR_MODULUS
from proving.formats.snarkjs_json import vk_from_json, vk_to_json
from proving.formats.wtns_file import parse_wtns, wtns_bytes
from proving.formats.zkey import parse_zkey, zkey_bytes
from proving.groth16.keys import VerifyingKey
from proving.groth16.solidity import export_verifier

#: Largest wasm accepted (bytes); the owner of the exchange-registered example circuits.
MAX_WASM_BYTES = 32 * 1024 * 1024
EXCHANGE_OWNER = "exchange"
WASM_MAGIC = b"\0asm"
#: Job blob names of a proof job's secrets (deleted once the job is paid or cancelled).
SECRET_BLOBS = ("witness", "input_json")


class CircuitError(RaymarketError, ValueError):
    """A zkey or witness does not fit (not a Groth16 zkey, wrong size, wrong public signals)."""


def derive(zkey: bytes) -> dict[str, Any]:
    """What the exchange keeps about a zkey: ``{"circuit_id", "n_vars", "n_public", "n_constraints",
    "domain_size", "vk_json", "vk_sha256"}`` (``circuit_id`` = sha256 hex of ``zkey``; ``n_constraints`` = rows of
    the A matrix less the ``n_public + 1`` rows snarkjs adds for the public inputs).

    Raises:
        CircuitError: not a Groth16 zkey (the reader's message).
    """
    try:
        pk = parse_zkey(zkey, path="<upload>")
    except Exception as exc:  # noqa: BLE001 -- the reader raises FormatError and friends; all mean "not a zkey"
        raise CircuitError(f"not a snarkjs Groth16 zkey: {type(exc).__name__}: {exc}") from None
    rows = max(pk.coef_constraint, default=-1) + 1
    vk = vk_to_json(pk.vk)
    return {"circuit_id": hashlib.sha256(zkey).hexdigest(), "n_vars": pk.n_vars, "n_public": pk.n_public,
            "n_constraints": max(0, rows - pk.n_public - 1), "domain_size": pk.domain_size, "vk_json": vk,
            "vk_sha256": hashlib.sha256(json.dumps(vk, sort_keys=True, separators=(",", ":")).encode()).hexdigest()}


def check_wasm(wasm: bytes) -> str:
    """The sha256 hex of a circom witness-calculator wasm, after the cheap checks.

    Raises:
        CircuitError: over :data:`MAX_WASM_BYTES`, or not a WebAssembly module (magic ``\\0asm``).
    """
    if len(wasm) > MAX_WASM_BYTES:
        raise CircuitError(f"the wasm is over {MAX_WASM_BYTES} bytes")
    if wasm[:4] != WASM_MAGIC:
        raise CircuitError("not a WebAssembly module (circom's CIRCUIT_js/CIRCUIT.wasm)")
    return hashlib.sha256(wasm).hexdigest()


def add(s: Session, owner: str, zkey: bytes, name: str | None, now_s: float,
        wasm: bytes | None = None) -> CircuitRecord:
    """Register ``zkey`` (idempotent: the same bytes are stored once, whoever adds them again), with its
    witness-calculator ``wasm`` when given (added to a circuit registered without one).

    Raises:
        CircuitError: not a Groth16 zkey; a bad wasm; a wasm other than the one the circuit already has.
    """
    wasm_sha = check_wasm(wasm) if wasm is not None else None
    circuit_id = hashlib.sha256(zkey).hexdigest()
    rec = s.get(CircuitRecord, circuit_id)
    if rec is None:
        d = derive(zkey)
        rec = CircuitRecord(name=name, owner=owner, size_bytes=len(zkey), zkey=zkey, created_at=now_s, **d)
        s.add(rec)
    if wasm is not None:
        if rec.wasm_sha256 not in (None, wasm_sha):
            raise CircuitError(f"circuit {circuit_id[:12]} already has another wasm (sha256 {rec.wasm_sha256})")
        rec.wasm, rec.wasm_sha256, rec.wasm_size_bytes = wasm, wasm_sha, len(wasm)
    s.flush()
    return rec


def view(rec: CircuitRecord, *, with_vk: bool = False) -> dict[str, Any]:
    """The public JSON of a circuit (``vk`` = snarkjs ``verification_key.json`` when ``with_vk``)."""
    out: dict[str, Any] = {"circuit_id": rec.circuit_id, "name": rec.name, "owner": rec.owner,
                           "n_constraints": rec.n_constraints, "n_public": rec.n_public, "n_vars": rec.n_vars,
                           "vk_sha256": rec.vk_sha256, "size_bytes": rec.size_bytes, "created_at": rec.created_at,
                           "wasm_sha256": rec.wasm_sha256, "verifier_address": rec.verifier_address,
                           "verifier_settlement": rec.verifier_settlement, "verifier_tx": rec.verifier_tx,
                           "verifier_error": rec.verifier_error}
    if with_vk:
        out["vk"] = rec.vk_json
    return out


def list_all(s: Session) -> list[CircuitRecord]:
    """Every registered circuit, oldest first."""
    return list(s.scalars(select(CircuitRecord).order_by(CircuitRecord.created_at)))


def verifying_key(rec: CircuitRecord) -> VerifyingKey:
    """The circuit's verification key (from the stored snarkjs JSON)."""
    return vk_from_json(rec.vk_json)


def witness_public(rec: CircuitRecord, wtns: bytes, claimed: list[str] | None) -> list[int]:
    """The public signals of a ``.wtns`` for this circuit (``w[1..n_public]``), checked at intake.

    Raises:
        CircuitError: not a ``.wtns``; not ``n_vars`` values; ``w[0] != 1``; ``claimed`` given and different.
    """
    try:
        w = parse_wtns(wtns, path="<witness>")
    except Exception as exc:  # noqa: BLE001 -- FormatError and friends
        raise CircuitError(f"not a snarkjs .wtns witness: {type(exc).__name__}") from None
    if len(w) != rec.n_vars:
        raise CircuitError(f"the witness has {len(w)} values; circuit {rec.circuit_id[:12]} has {rec.n_vars} signals")
    if w[0] != 1:
        raise CircuitError("the witness's first value (the constant signal) is not 1")
    public = [int(x) for x in w[1:1 + rec.n_public]]
    if claimed is not None and [int(x) for x in claimed] != public:
        raise CircuitError("the witness's public signals are not the ones given in `public`")
    return public


#: Databases (engine URLs) where a secret blob was deleted since their files were last scrubbed (SQLite: the WAL
#: still holds the deleted row's old page images until a TRUNCATE checkpoint, ``service.scrub``).
_SCRUB_PENDING: set[str] = set()
_SCRUB_LOCK = threading.Lock()


def drop_witness(s: Session, job_id: str) -> None:
    """Delete the job's witness or circuit input (once it is paid, cancelled or terminal); a no-op when there is
    none. SQLite overwrites the deleted bytes (``secure_delete``, ``market.db.base.make_engine``) and the service
    truncates the WAL after it (:func:`scrub_pending`)."""
    dropped = False
    for name in SECRET_BLOBS:
        blob = s.get(JobBlob, (job_id, name))
        if blob is not None:
            s.delete(blob)
            dropped = True
    if dropped:
        with _SCRUB_LOCK:
            _SCRUB_PENDING.add(str(s.get_bind().url))


def scrub_pending(url: str, *, done: bool = False) -> bool:
    """Whether the database at ``url`` had a secret deleted since its last scrub; ``done=True`` clears it."""
    with _SCRUB_LOCK:
        pending = url in _SCRUB_PENDING
        if done:
            _SCRUB_PENDING.discard(url)
    return pending


# ---- witness from an input (the wasm) ----------------------------------------------------------------------

_WASM_DIR: list[Path] = []
_WASM_LOCK = threading.Lock()


def wasm_file(rec: CircuitRecord) -> Path:
    """The circuit's wasm as a file (this process's private cache directory, by sha256; written once).

    Raises:
        CircuitError: the circuit has no wasm.
    """
    if rec.wasm_sha256 is None:
        raise CircuitError(f"circuit {rec.circuit_id[:12]} has no wasm: add it with "
                           "`raymarket circuit add ZKEY --wasm CIRCUIT.wasm`, or send a .wtns witness")
    with _WASM_LOCK:
        if not _WASM_DIR:
            _WASM_DIR.append(Path(tempfile.mkdtemp(prefix="raymarket-wasm-")))
        path = _WASM_DIR[0] / f"{rec.wasm_sha256}.wasm"
        if not path.exists():
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(rec.wasm or b"")
            tmp.replace(path)
    return path


def input_public(rec: CircuitRecord, inp: dict[str, Any], *, timeout_s: float = 60.0,
                 max_memory_bytes: int = 2 * 1024**3) -> list[int]:
    """The public signals (``w[1..n_public]``) the canonical input ``inp`` implies under the circuit's wasm
    (the witness is computed, read and dropped here; nothing of it is kept).

    Raises:
        CircuitError: no wasm; the input does not fit the circuit; the calculator ran out of time or memory;
            the witness does not fit the zkey (a wasm of another circuit).
    """
    wasm = wasm_file(rec)
    try:
        w = parse_wtns(calculate_witness(wasm, inp, timeout_s=timeout_s, max_memory_bytes=max_memory_bytes),
                       path="<witness>")
    except WitnessError as exc:
        raise CircuitError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 -- FormatError: the calculator wrote no .wtns
        raise CircuitError(f"the wasm wrote no snarkjs .wtns ({type(exc).__name__})") from None
    if len(w) != rec.n_vars or w[0] != 1:
        raise CircuitError(f"the wasm's witness has {len(w)} values; the zkey has {rec.n_vars} signals "
                           "(is the wasm this circuit's?)")
    return [int(x) for x in w[1:1 + rec.n_public]]


# ---- the MiMC-7 example as a registered circuit ------------------------------------------------------------


def ensure_mimc(s: Session, rounds: int, now_s: float, keys_dir: Path | None = None) -> CircuitRecord:
    """The registered circuit of the MiMC-7 example at ``rounds`` (owner ``exchange``, name ``mimc7-R``):
    registered on first use from the dev ceremony's proving key (NOT FOR PRODUCTION)."""
    name = f"mimc7-{int(rounds)}"
    rec = s.scalars(select(CircuitRecord).where(CircuitRecord.owner == EXCHANGE_OWNER,
                                                CircuitRecord.name == name)).first()
    if rec is not None:
        return rec
    return add(s, EXCHANGE_OWNER, zkey_bytes(dev_proving_key(int(rounds), keys_dir)), name, now_s)


def mimc_witness(preimage: int, rounds: int) -> bytes:
    """The ``.wtns`` of knowing ``preimage`` under the MiMC-7 example circuit: ``[1, h, x]`` then per round
    ``t2, t4, t6`` and ``t7`` (not in the last round) with ``t = x`` (round 0) or ``t7 + c_i`` -- the layout of
    ``proving.circuits.mimc.preimage_circuit`` (key 0), computed directly (no R1CS built per job)."""
    x, wires = int(preimage) % FR_MODULUS, []
    t7 = x
    constants = round_constants(int(rounds))
    for i, c in enumerate(constants):
        t = t7 if i == 0 else (t7 + c) % FR_MODULUS
        t2 = t * t % FR_MODULUS
        t4 = t2 * t2 % FR_MODULUS
        t6 = t4 * t2 % FR_MODULUS
        t7 = t6 * t % FR_MODULUS
        wires += [t2, t4, t6] + ([t7] if i < len(constants) - 1 else [])
    return wtns_bytes([1, t7, x, *wires])


# ---- on chain ----------------------------------------------------------------------------------------------


def verifier_args(vk: VerifyingKey) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """``KeyedGroth16Verifier``'s constructor arguments for ``vk``: alpha, beta, gamma, delta, flattened IC."""
    ic: list[int] = []
    for p in vk.ic:
        ic += g1_words(p)
    return g1_words(vk.alpha_g1), g2_words(vk.beta_g2), g2_words(vk.gamma_g2), g2_words(vk.delta_g2), ic


def register_on_chain(settlement: SettlementContract, operator_key: str, rec: CircuitRecord) -> None:
    """Deploy the circuit's ``KeyedGroth16Verifier`` and register it on ``settlement`` under the circuit id
    (operator = the contract's owner); records address, Settlement, tx and clears the error on ``rec``.

    Raises:
        contracts.errors.ContractsError: a deploy or the registration failed (the caller records it).
    """
    verifier = deploy(settlement.chain, "KeyedGroth16Verifier", operator_key, *verifier_args(verifying_key(rec)))
    receipt = settlement.register_verifier(operator_key, bytes.fromhex(rec.circuit_id), verifier.address,
                                           n_public=int(rec.n_public))
    tx = receipt["transactionHash"]
    rec.verifier_address, rec.verifier_settlement = verifier.address, settlement.address
    rec.verifier_tx = tx if isinstance(tx, str) else "0x" + bytes(tx).hex()
    rec.verifier_error = None


def solidity_verifier(rec: CircuitRecord) -> str:
    """Solidity source of a standalone verifier for the circuit (snarkjs's ``verifyProof`` interface and the
    generic ``verify``; ``proving.groth16.solidity``)."""
    return export_verifier(verifying_key(rec), contract_name="Groth16Verifier")
