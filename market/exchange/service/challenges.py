"""Timed speed challenges: the exchange measures a provider's speed instead of taking its word for it.

A provider's agent that announces support (``hardware["challenges"]`` at registration; the agent in
:mod:`providers.agent` does) gets, with a lease poll, at most one outstanding challenge every
``ServiceConfig.challenge_interval_s`` seconds (on by default, every 300 s; 0 turns them off: settings
``challenge_interval_s``, ``--challenge-interval-s``): a Groth16 proof of MiMC-7 over :data:`CHALLENGE_ROUNDS`
rounds for a fresh random preimage (so no answer can be prepared in advance), under the dev proving key
both sides build from the same seed. It answers with ``challenge.answer`` (the canonical proof bytes)
before ``deadline_at``. The exchange checks the public signal (MiMC-7 of the preimage, computed here) and the
pairing, then records ``units / elapsed`` (:func:`market.core.pricing.challenge_speed`; ``elapsed`` from the
poll's answer to the upload, so a slow network counts against the provider, never for it).

What the measurement changes (:func:`market.core.pricing.effective_speed`): ``ProviderRecord.speed`` (what
every round's :class:`market.core.orders.Offer` reads) becomes the median of the last few measured speeds;
an unmeasured claim counts at most the reference machine; a wrong answer (lower reputation, as a wrong
result) or a missed deadline (lower reputation, as a fault) sets it to ``FAILED_SPEED`` until the next
passed challenge, so the provider is not matched for jobs whose deadline needs speed. The exchange's notes
live in ``ProviderRecord.hardware["exchange"]`` (``speed_claimed``, ``speed_measured``, ``challenge_failed``,
``challenges``); a provider's own ``"exchange"`` key is dropped at registration.

Outstanding challenges are kept in memory (:class:`ChallengeBook`): a restarted exchange just issues new ones.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from fastapi import APIRouter, Path
from sqlalchemy.orm import Session

from market.core import policy
from market.core.pricing import CHALLENGE_ROUNDS, SPEED_WINDOW, challenge_speed, effective_speed
from market.core.tickets import DEV_SETUP_SEED, MIMC_CIRCUIT, parse_proof_bytes, proof_public_hash
from market.db.models import ProviderRecord
from market.exchange.service.auth import check_envelope, consume_nonce
from market.exchange.service.completion import verifying_key_cache
from market.exchange.service.errors import invalid, not_found, not_owner
from market.protocol import ID_PATTERN, Action, SignedRequest
from proving.errors import ProvingError
from proving.field import FR_MODULUS
from proving.formats.snarkjs_json import proof_from_json, public_from_json
from proving.groth16.verifier import verify

#: Constraints of a challenge (MiMC-7, 4 per round; ``CHALLENGE_ROUNDS`` from ``market.core.pricing``).
CHALLENGE_UNITS = 4 * CHALLENGE_ROUNDS
#: Largest answer accepted, bytes (a Groth16 proof with one public signal is under 2 KiB).
MAX_ANSWER_BYTES = 16 * 1024
#: Reputation regained by a passed challenge (capped at 1).
REPUTATION_GAIN = 0.02
NOTES = "exchange"


@dataclass(frozen=True)
class Challenge:
    """One issued challenge: prove knowledge of ``preimage`` under MiMC-7 of ``rounds`` rounds (public
    ``public``), ``units`` constraints, issued at ``issued_at``, due by ``deadline_at`` (Unix seconds)."""

    challenge_id: str
    provider: str
    rounds: int
    preimage: int
    public: int
    units: int
    issued_at: float
    deadline_at: float

    def view(self) -> dict[str, Any]:
        """What the poll hands the provider (a proof ticket of the old MiMC form plus the deadline)."""
        return {"challenge_id": self.challenge_id, "kind": "proof", "circuit": MIMC_CIRCUIT, "rounds": self.rounds,
                "preimage": str(self.preimage), "public": [str(self.public)], "setup_seed": DEV_SETUP_SEED,
                "units": self.units, "deadline_at": self.deadline_at}


@dataclass
class ChallengeBook:
    """Outstanding challenges by id and when each provider was last challenged (this process's memory)."""

    outstanding: dict[str, Challenge] = field(default_factory=dict)
    last_issued: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def supports(rec: ProviderRecord) -> bool:
    """The provider's agent said it answers challenges (``hardware["challenges"]``)."""
    return bool((rec.hardware or {}).get("challenges"))


def notes(rec: ProviderRecord) -> dict[str, Any]:
    """A copy of the exchange's notes on ``rec`` (see the module docstring)."""
    return dict((rec.hardware or {}).get(NOTES) or {})


def _set_notes(rec: ProviderRecord, n: dict[str, Any]) -> None:
    rec.hardware = {**(rec.hardware or {}), NOTES: n}  # a new dict: the JSON column sees the change
    rec.speed = effective_speed(float(n.get("speed_claimed", 1.0)), n.get("speed_measured", []),
                                bool(n.get("challenge_failed")))


def on_register(rec: ProviderRecord, kept: dict[str, Any], offer: Any) -> None:
    """After (re-)registration: drop the provider's own ``"exchange"`` key from its hardware, keep the exchange's
    notes from before (``kept``), remember the claimed speed and the per-unit quotes of ``offer`` (a
    :class:`market.protocol.Offer`), and set ``rec.speed`` to the effective (measured) speed."""
    rec.hardware = {k: v for k, v in (rec.hardware or {}).items() if k != NOTES}
    _set_notes(rec, {**kept, "speed_claimed": float(offer.speed),
                     "price_per_constraint_wei": str(int(offer.price_per_constraint_wei)),
                     "price_per_sentence_wei": str(int(offer.price_per_sentence_wei))})


def issue(book: ChallengeBook, rec: ProviderRecord, now_s: float, *, interval_s: float | None,
          deadline_s: float, grace_s: float = 0.0, retry_s: float | None = None) -> Challenge | None:
    """A fresh challenge for ``rec`` when one is due (supported, registered at least ``grace_s`` ago so its agent
    could build the key, none outstanding, the last one at least ``interval_s`` ago -- or ``retry_s`` when the
    last one failed, so that a provider at the failed-challenge floor, e.g. after one overloaded minute, is measured
    again soon; ``None`` or 0 disables challenges), else ``None``."""
    if not interval_s or not supports(rec) or now_s - float(rec.registered_at or 0.0) < grace_s:
        return None
    if retry_s is not None and notes(rec).get("challenge_failed"):
        interval_s = min(interval_s, retry_s)
    with book.lock:
        if any(c.provider == rec.name for c in book.outstanding.values()):
            return None
        if now_s - book.last_issued.get(rec.name, -1e18) < interval_s:
            return None
        preimage = secrets.randbelow(FR_MODULUS - 1) + 1
        ch = Challenge(f"c-{uuid.uuid4().hex[:24]}", rec.name, CHALLENGE_ROUNDS, preimage,
                       proof_public_hash(preimage, CHALLENGE_ROUNDS), CHALLENGE_UNITS, now_s, now_s + deadline_s)
        book.outstanding[ch.challenge_id] = ch
        book.last_issued[rec.name] = now_s
        return ch


def check_answer(ch: Challenge, answer: bytes, vk_for: Callable[[int], Any]) -> str:
    """``""`` when ``answer`` is a valid proof of ``ch``, else why not (malformed, wrong public, pairing)."""
    try:
        proof_json, public_json = parse_proof_bytes(answer)
        public = public_from_json(public_json)
        proof = proof_from_json(proof_json)
    except (ProvingError, KeyError, TypeError, ValueError) as exc:
        return f"malformed proof: {exc}"[:300]
    if tuple(public) != (ch.public,):
        return "the proof is for another statement (public signal differs)"
    try:
        verify(vk_for(ch.rounds), public, proof)
    except ProvingError as exc:
        return f"proof rejected: {type(exc).__name__}: {exc}"[:300]
    return ""


def record(rec: ProviderRecord, *, speed: float | None, wrong: bool = False) -> None:
    """Book one outcome: a measured ``speed`` (passed), or a failure (``speed=None``; ``wrong``: a wrong
    answer, else a missed deadline) with the reputation lowered as :func:`market.core.policy.lowered_reputation`."""
    n = notes(rec)
    n["challenges"] = int(n.get("challenges", 0)) + 1
    if speed is None:
        n["challenge_failed"] = True
        n["failures"] = int(n.get("failures", 0)) + 1
        rec.reputation = policy.lowered_reputation(rec.reputation, wrong_result=wrong)
    else:
        n["challenge_failed"] = False
        n["speed_measured"] = [*list(n.get("speed_measured", [])), speed][-SPEED_WINDOW:]
        rec.reputation = min(1.0, round(rec.reputation + REPUTATION_GAIN, 6))
    _set_notes(rec, n)


def answer(s: Session, book: ChallengeBook, rec: ProviderRecord, challenge_id: str, data: bytes, now_s: float,
           vk_for: Callable[[int], Any]) -> dict[str, Any]:
    """Judge ``rec``'s answer to ``challenge_id`` (arrived at ``now_s``) and book it.

    Returns:
        ``{"challenge_id", "passed", "reason", "speed", "effective_speed"}``.

    Raises:
        ServiceError: ``not_found`` (unknown, already answered, or another provider's challenge).
    """
    with book.lock:
        ch = book.outstanding.get(challenge_id)
        if ch is None or ch.provider != rec.name:
            raise not_found("challenge", challenge_id)
        del book.outstanding[challenge_id]
    why = "deadline passed" if now_s > ch.deadline_at else check_answer(ch, data, vk_for)
    speed = None if why else challenge_speed("proof", ch.units, now_s - ch.issued_at)
    record(rec, speed=speed, wrong=bool(why) and why != "deadline passed")
    return {"challenge_id": challenge_id, "passed": not why, "reason": why, "speed": speed,
            "effective_speed": rec.speed}


def expire(s: Session, book: ChallengeBook, now_s: float) -> list[str]:
    """Fail every outstanding challenge past its deadline (a missed deadline); returns their ids."""
    with book.lock:
        late = [c for c in book.outstanding.values() if c.deadline_at < now_s]
        for c in late:
            del book.outstanding[c.challenge_id]
    for c in late:
        rec = s.get(ProviderRecord, c.provider)
        if rec is not None:
            record(rec, speed=None, wrong=False)
    return [c.challenge_id for c in late]


def step(rt: Any, now_s: float) -> None:
    """The loop's step: expire late challenges."""
    if rt.challenges.outstanding:
        with rt.tx() as s:
            expire(s, rt.challenges, now_s)


def router(rt: Any) -> APIRouter:
    """``POST /v1/challenges/{challenge_id}/answer`` (signed ``challenge.answer``)."""
    r = APIRouter()

    @r.post("/v1/challenges/{challenge_id}/answer")
    def answer_route(req: SignedRequest, challenge_id: str = Path(pattern=ID_PATTERN)) -> dict[str, Any]:
        now = time.time()
        signer, p = check_envelope(req, Action.CHALLENGE_ANSWER, rt.domain, now)
        if p.challenge_id != challenge_id:
            raise invalid("payload.challenge_id", f"{p.challenge_id!r} is not the challenge in the path")
        if len(p.result_b64) > MAX_ANSWER_BYTES * 4 // 3 + 4:
            raise invalid("payload.result_b64", f"over {MAX_ANSWER_BYTES} bytes")
        try:
            data = base64.b64decode(p.result_b64, validate=True)
        except (binascii.Error, ValueError):
            raise invalid("payload.result_b64", "not base64") from None
        vk_for = verifying_key_cache(rt.verifying_keys, rt.settings.data_dir / "keys")
        vk_for(CHALLENGE_ROUNDS)  # built (once) before the write lock; the answer is timed at its arrival
        with rt.tx() as s:
            consume_nonce(s, req, now)
            rec = s.get(ProviderRecord, p.name)
            if rec is None:
                raise not_found("provider", p.name)
            if rec.address != signer:
                raise not_owner("provider", p.name)
            return answer(s, rt.challenges, rec, challenge_id, data, now, vk_for)

    return r


def claim_view(rt: Any, s: Session, name: str, now_s: float) -> list[dict[str, Any]]:
    """The challenges to hand ``name`` with this poll (zero or one)."""
    rec = s.get(ProviderRecord, name)
    if rec is None:
        return []
    ch = issue(rt.challenges, rec, now_s, interval_s=rt.config.challenge_interval_s,
               deadline_s=rt.config.challenge_deadline_s, grace_s=rt.config.challenge_grace_s,
               retry_s=rt.config.challenge_retry_s)
    return [ch.view()] if ch is not None else []

