"""Registered Groth16 circuits (issue 13): a client uploads a snarkjs ``.zkey``; the exchange stores it once under
its sha256 (the circuit id), derives the verification key (snarkjs ``verification_key.json``) and keeps both in
``circuits`` (``market.db.models.CircuitRecord``). Proof jobs on the circuit carry a snarkjs ``.wtns``; at intake
the exchange checks its shape against the zkey and reads the public signals from it (``w[1..n_public]``), which
the delivered proof must verify for (``market.exchange.service.completion``).

Privacy: the witness is the client's secret. It is stored only as the job's ``witness`` blob, sent only in the
lease ticket of the provider that proves it (delegated proving reveals it to that prover), never logged, and
deleted once the job is paid or cancelled (:func:`drop_witness`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from market.db.models import CircuitRecord, JobBlob
from proving.errors import RaymarketError
from proving.formats.snarkjs_json import vk_from_json, vk_to_json
from proving.formats.wtns_file import parse_wtns
from proving.formats.zkey import parse_zkey
from proving.groth16.keys import VerifyingKey


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


def add(s: Session, owner: str, zkey: bytes, name: str | None, now_s: float) -> CircuitRecord:
    """Register ``zkey`` (idempotent: the same bytes are stored once, whoever adds them again).

    Raises:
        CircuitError: not a Groth16 zkey.
    """
    circuit_id = hashlib.sha256(zkey).hexdigest()
    rec = s.get(CircuitRecord, circuit_id)
    if rec is not None:
        return rec
    d = derive(zkey)
    rec = CircuitRecord(name=name, owner=owner, size_bytes=len(zkey), zkey=zkey, created_at=now_s, **d)
    s.add(rec)
    s.flush()
    return rec


def view(rec: CircuitRecord, *, with_vk: bool = False) -> dict[str, Any]:
    """The public JSON of a circuit (``vk`` = snarkjs ``verification_key.json`` when ``with_vk``)."""
    out: dict[str, Any] = {"circuit_id": rec.circuit_id, "name": rec.name, "owner": rec.owner,
                           "n_constraints": rec.n_constraints, "n_public": rec.n_public, "n_vars": rec.n_vars,
                           "vk_sha256": rec.vk_sha256, "size_bytes": rec.size_bytes, "created_at": rec.created_at}
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


def drop_witness(s: Session, job_id: str) -> None:
    """Delete the job's witness (after it is paid or cancelled); a no-op when there is none."""
    blob = s.get(JobBlob, (job_id, "witness"))
    if blob is not None:
        s.delete(blob)
