"""Circuit routes (issue 13): register a snarkjs Groth16 zkey (signed), list and show circuits, fetch a zkey, a
wasm or a Solidity verifier by circuit id (public: a zkey, its wasm and its verification key are no secret).

- ``POST /v1/circuits/upload`` (``circuit.upload``, streamed): the signed request in the header
  ``X-Raymarket-Request``; the body is the zkey bytes then the wasm bytes, read in chunks into a private spool
  file (never whole in memory, at most :data:`MAX_UPLOAD_BYTES`; sizes and sha256 checked against the signed
  payload) -> the circuit (as ``GET``). What ``raymarket circuit add`` uses.
- ``POST /v1/circuits`` (``circuit.add``): ``{"zkey_b64", "wasm_b64"?, "name"?}`` in a JSON body (small keys).
- Both are idempotent: the same zkey bytes are stored once (``market.exchange.circuits``). Then the circuit's
  verifier is deployed and registered on the Settlement contract (operator tx; :func:`register`); a failure is
  recorded on the circuit (``verifier_error``) and retried by the loop (:func:`step`).
- ``GET /v1/circuits`` -> ``[circuit]``; ``GET /v1/circuits/{id}`` -> circuit + ``"vk"`` (snarkjs
  ``verification_key.json``); ``GET /v1/circuits/{id}/zkey`` -> ``{"circuit_id", "zkey_b64"}`` (providers);
  ``GET /v1/circuits/{id}/wasm`` -> the wasm bytes (``application/wasm``; providers computing witnesses);
  ``GET /v1/circuits/{id}/verifier.sol`` -> Solidity source of a standalone verifier.
A circuit is ``{"circuit_id", "name", "owner", "n_constraints", "n_public", "n_vars", "vk_sha256", "size_bytes",
"created_at", "wasm_sha256", "verifier_address", "verifier_settlement", "verifier_tx", "verifier_error"}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import tempfile
import time
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import or_, select
from starlette.concurrency import run_in_threadpool

from market.db.models import CircuitRecord
from market.exchange import circuits
from market.exchange.service.auth import check_envelope, consume_nonce
from market.exchange.service.errors import ServiceError, invalid, not_found
from market.exchange.service.runtime import Runtime
from market.protocol import UPLOAD_REQUEST_HEADER, Action, ErrorCode, SignedRequest

log = logging.getLogger("raymarket.exchange")

CIRCUIT_ID = r"^[0-9a-f]{64}$"
#: Largest streamed upload (zkey + wasm), bytes; read in chunks of at most 1 MiB.
MAX_UPLOAD_BYTES = 1024**3
#: Seconds between two registration attempts of a circuit whose registration failed.
RETRY_S = 30.0

_last_attempt: dict[str, float] = {}


def register(rt: Runtime, circuit_id: str, now_s: float | None = None) -> None:
    """Deploy and register the circuit's verifier on the service's Settlement contract unless it already is
    (chain txs serialised with the settler's under the write lock); a failure is recorded, never raised."""
    now_s = time.time() if now_s is None else now_s
    _last_attempt[circuit_id] = now_s
    contract = rt.chain.contract
    with rt.write_lock:
        with rt.read() as s:
            rec = s.get(CircuitRecord, circuit_id)
            if rec is None or rec.verifier_settlement == contract.address:
                return
            s.expunge(rec)
        try:
            circuits.register_on_chain(contract, rt.chain.operator_key, rec)
        except Exception as exc:  # noqa: BLE001 -- chain down, not the owner, a revert: recorded, retried
            log.warning("registering the verifier of circuit %s failed: %s", circuit_id[:12], exc)
            rec.verifier_error = f"{type(exc).__name__}: {exc}"[:500]
        with rt.tx() as s:
            row = s.get(CircuitRecord, circuit_id)
            if row is not None:
                for k in ("verifier_address", "verifier_settlement", "verifier_tx", "verifier_error"):
                    setattr(row, k, getattr(rec, k))


def step(rt: Runtime, now_s: float) -> int:
    """Register every circuit not yet registered on the current Settlement contract (the MiMC example's, added
    at first use; a circuit whose registration failed, every :data:`RETRY_S`). Returns attempts made."""
    with rt.read() as s:
        pending = list(s.scalars(select(CircuitRecord.circuit_id).where(or_(
            CircuitRecord.verifier_settlement.is_(None),
            CircuitRecord.verifier_settlement != rt.chain.contract.address))))
    n = 0
    for cid in pending:
        if now_s - _last_attempt.get(cid, 0.0) >= RETRY_S:
            register(rt, cid, now_s)
            n += 1
    return n


def _get(rt: Runtime, circuit_id: str) -> CircuitRecord:
    with rt.read() as s:
        rec = s.get(CircuitRecord, circuit_id)
        if rec is None:
            raise not_found("circuit", circuit_id)
        return rec


def _store(rt: Runtime, req: SignedRequest, signer: str, zkey: bytes, wasm: bytes | None, name: str | None,
           now: float) -> dict[str, Any]:
    with rt.tx() as s:
        consume_nonce(s, req, now)
        try:
            rec = circuits.add(s, signer, zkey, name, now, wasm=wasm)
        except circuits.CircuitError as exc:
            raise invalid("wasm" if "wasm" in str(exc) else "zkey", str(exc)) from None
        cid = rec.circuit_id
    register(rt, cid, now)
    with rt.read() as s:
        return circuits.view(s.get(CircuitRecord, cid))


def _header_request(request: Request) -> SignedRequest:
    raw = request.headers.get(UPLOAD_REQUEST_HEADER)
    if raw is None:
        raise ServiceError(ErrorCode.INVALID, f"header {UPLOAD_REQUEST_HEADER}: missing",
                           "send the signed circuit.upload request in this header (the SDK does)")
    try:
        return SignedRequest.model_validate_json(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "request"
        raise invalid(f"{UPLOAD_REQUEST_HEADER}.{field}", str(err["msg"])) from None


def router(rt: Runtime) -> APIRouter:
    """The circuit routes over ``rt``."""
    r = APIRouter()

    @r.post("/v1/circuits")
    def add(req: SignedRequest) -> dict[str, Any]:
        now = time.time()
        signer, p = check_envelope(req, Action.CIRCUIT_ADD, rt.domain, now)
        if len(p.zkey_b64) > rt.config.max_body_bytes:
            raise ServiceError(ErrorCode.TOO_LARGE, f"zkey over {rt.config.max_body_bytes * 3 // 4} bytes",
                               "upload it streamed (POST /v1/circuits/upload; `raymarket circuit add` does)")
        try:
            zkey = base64.b64decode(p.zkey_b64, validate=True)
            wasm = None if p.wasm_b64 is None else base64.b64decode(p.wasm_b64, validate=True)
        except (binascii.Error, ValueError):
            raise invalid("zkey_b64" if p.wasm_b64 is None else "zkey_b64/wasm_b64", "not base64") from None
        return _store(rt, req, signer, zkey, wasm, p.name, now)

    @r.post("/v1/circuits/upload")
    async def upload(request: Request) -> dict[str, Any]:
        now = time.time()
        req = _header_request(request)
        signer, p = check_envelope(req, Action.CIRCUIT_UPLOAD, rt.domain, now)
        total = p.zkey_size + p.wasm_size
        if total > MAX_UPLOAD_BYTES or p.wasm_size > circuits.MAX_WASM_BYTES:
            raise ServiceError(ErrorCode.TOO_LARGE, f"upload of {total} bytes: at most {MAX_UPLOAD_BYTES} bytes "
                               f"(a wasm at most {circuits.MAX_WASM_BYTES})", "")
        with tempfile.TemporaryFile(prefix="raymarket-upload-") as spool:
            hz, hw, seen = hashlib.sha256(), hashlib.sha256(), 0
            async for chunk in request.stream():
                if seen + len(chunk) > total:
                    raise ServiceError(ErrorCode.TOO_LARGE, f"the body is longer than the {total} bytes signed", "")
                cut = max(0, min(len(chunk), p.zkey_size - seen))
                hz.update(chunk[:cut])
                hw.update(chunk[cut:])
                spool.write(chunk)
                seen += len(chunk)
            if seen != total:
                raise invalid("body", f"{seen} bytes; the signed request says {total}")
            if hz.hexdigest() != p.zkey_sha256:
                raise invalid("zkey_sha256", "the body's zkey bytes do not hash to it")
            if p.wasm_sha256 is not None and hw.hexdigest() != p.wasm_sha256:
                raise invalid("wasm_sha256", "the body's wasm bytes do not hash to it")
            spool.seek(0)
            zkey = spool.read(p.zkey_size)  # the zkey reader needs the bytes (and the DB row holds them)
            wasm = spool.read(p.wasm_size) if p.wasm_size else None
        return await run_in_threadpool(_store, rt, req, signer, zkey, wasm, p.name, now)

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

    @r.get("/v1/circuits/{circuit_id}/wasm")
    def wasm(circuit_id: str = Path(pattern=CIRCUIT_ID)) -> Response:
        with rt.read() as s:
            rec = s.get(CircuitRecord, circuit_id)
            if rec is None or rec.wasm is None:
                raise not_found("circuit wasm", circuit_id)
            return Response(rec.wasm, media_type="application/wasm")

    @r.get("/v1/circuits/{circuit_id}/verifier.sol")
    def verifier_sol(circuit_id: str = Path(pattern=CIRCUIT_ID)) -> Response:
        return Response(circuits.solidity_verifier(_get(rt, circuit_id)), media_type="text/plain")

    return r
