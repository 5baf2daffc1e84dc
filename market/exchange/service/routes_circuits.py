"""Circuit routes (issue 13): register a snarkjs Groth16 zkey (signed ``circuit.add``), list and show circuits
and fetch a zkey by its sha256 (public: a zkey and its verification key are no secret).

- ``POST /v1/circuits`` (``circuit.add``): ``{"zkey_b64", "name"?}`` -> the circuit (as ``GET``). Idempotent:
  the same zkey bytes are stored once (``market.exchange.circuits``).
- ``GET /v1/circuits`` -> ``[circuit]``; ``GET /v1/circuits/{id}`` -> circuit + ``"vk"`` (snarkjs
  ``verification_key.json``); ``GET /v1/circuits/{id}/zkey`` -> ``{"circuit_id", "zkey_b64"}`` (providers).
A circuit is ``{"circuit_id", "name", "owner", "n_constraints", "n_public", "n_vars", "vk_sha256", "size_bytes",
"created_at"}``.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from fastapi import APIRouter, Path

from market.db.models import CircuitRecord
from market.exchange import circuits
from market.exchange.service.auth import check_envelope, consume_nonce
from market.exchange.service.errors import ServiceError, invalid, not_found
from market.exchange.service.runtime import Runtime
from market.protocol import Action, ErrorCode, SignedRequest

CIRCUIT_ID = r"^[0-9a-f]{64}$"


def router(rt: Runtime) -> APIRouter:
    """The circuit routes over ``rt``."""
    r = APIRouter()

    @r.post("/v1/circuits")
    def add(req: SignedRequest) -> dict[str, Any]:
        now = time.time()
        signer, p = check_envelope(req, Action.CIRCUIT_ADD, rt.domain, now)
        if len(p.zkey_b64) > rt.config.max_body_bytes:
            raise ServiceError(ErrorCode.TOO_LARGE, f"zkey over {rt.config.max_body_bytes * 3 // 4} bytes", "")
        try:
            zkey = base64.b64decode(p.zkey_b64, validate=True)
        except (binascii.Error, ValueError):
            raise invalid("zkey_b64", "not base64") from None
        with rt.tx() as s:
            consume_nonce(s, req, now)
            try:
                rec = circuits.add(s, signer, zkey, p.name, now)
            except circuits.CircuitError as exc:
                raise invalid("zkey_b64", str(exc)) from None
            return circuits.view(rec)

    @r.get("/v1/circuits")
    def list_circuits() -> list[dict[str, Any]]:
        with rt.read() as s:
            return [circuits.view(c) for c in circuits.list_all(s)]

    @r.get("/v1/circuits/{circuit_id}")
    def show(circuit_id: str = Path(pattern=CIRCUIT_ID)) -> dict[str, Any]:
        with rt.read() as s:
            rec = s.get(CircuitRecord, circuit_id)
            if rec is None:
                raise not_found("circuit", circuit_id)
            return circuits.view(rec, with_vk=True)

    @r.get("/v1/circuits/{circuit_id}/zkey")
    def zkey(circuit_id: str = Path(pattern=CIRCUIT_ID)) -> dict[str, Any]:
        with rt.read() as s:
            rec = s.get(CircuitRecord, circuit_id)
            if rec is None:
                raise not_found("circuit", circuit_id)
            return {"circuit_id": circuit_id, "zkey_b64": base64.b64encode(rec.zkey).decode()}

    return r
