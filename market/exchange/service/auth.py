"""Checks of a signed request, in the contract's order: action, expiry, signature, payload, then (inside the
action's transaction) the nonce. Ownership is checked by each route against the returned signer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from market.db.models import RequestNonce
from market.exchange.service.errors import ServiceError
from market.protocol import (MAX_EXPIRY_WINDOW_S, PAYLOADS, BadRequestSignature, ErrorCode, ExchangeDomain,
                             SignedRequest, recover_request)


def check_envelope(req: SignedRequest, action: str, domain: ExchangeDomain, now_s: float) -> tuple[str, Any]:
    """Stateless checks of ``req`` for ``action``; returns ``(signer, validated payload model)``.

    Raises:
        ServiceError: ``wrong_action``, ``expired`` (expiry not in ``(now, now + 600]``), ``bad_signature``,
        ``invalid`` (payload field named).
    """
    if req.action != action:
        raise ServiceError(ErrorCode.WRONG_ACTION, f"this route takes action {action!r}, got {req.action!r}",
                           "sign the request for this route's action")
    if not now_s < req.expiry <= now_s + MAX_EXPIRY_WINDOW_S:
        raise ServiceError(ErrorCode.EXPIRED, f"expiry {req.expiry} is not in (now, now + {MAX_EXPIRY_WINDOW_S}] "
                           f"(now = {int(now_s)})", "sign again with a fresh expiry; check the clock")
    try:
        signer = recover_request(req, domain)
    except BadRequestSignature as exc:
        raise ServiceError(ErrorCode.BAD_SIGNATURE, str(exc),
                           "sign with the signer's key under this exchange's domain (GET /v1/info)") from None
    return signer, validate_payload(PAYLOADS[action], req.payload)


def validate_payload(model: type[BaseModel], payload: dict[str, Any]) -> Any:
    """``model`` from ``payload``.

    Raises:
        ServiceError: ``invalid`` naming the first bad field.
    """
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "payload"
        raise ServiceError(ErrorCode.INVALID, f"{field}: {err['msg']}", f"fix the field {field!r}") from None


def consume_nonce(s: Session, req: SignedRequest, now_s: float) -> None:
    """Record ``(signer, nonce)`` in this transaction (it commits with the action's effects).

    Raises:
        ServiceError: ``replayed_nonce`` when the signer used this nonce before.
    """
    key = (req.signer, str(req.nonce))
    if s.get(RequestNonce, key) is not None:
        raise ServiceError(ErrorCode.REPLAYED_NONCE, f"nonce {req.nonce} of {req.signer} was already used",
                           "sign again with a fresh nonce (the SDK does)")
    s.add(RequestNonce(signer=req.signer, nonce=key[1], action=req.action, expiry=float(req.expiry), at_s=now_s))
    s.flush()
