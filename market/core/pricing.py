"""Pricing rules of a matching round, and the reverse Dutch auction's lock lifecycle.

Which provider serves a job is decided by :func:`market.core.matching.clear_round` (welfare-maximising
assignment under the constraints); the rule decides (a) the price cap an ask must meet and (b) what the
client pays. All amounts are wei (``int``), times are seconds.

* ``"pay-as-bid"`` — discriminatory reverse auction: the job pays the winning provider's ask.
  Cap: ``max_price_wei``.
* ``"second-price"`` — Vickrey (W. Vickrey, "Counterspeculation, Auctions, and Competitive Sealed
  Tenders", J. Finance 16(1), 1961), as a reverse auction per job (the form Succinct's prover network
  describes: lowest bidder wins): the job pays the lowest ask among the *other* offers that could serve
  it (every constraint met, capacity at round start), clamped to ``[winning ask, max_price_wei]``; with
  no other feasible offer it pays ``max_price_wei`` (the reserve acts as the second bid).
  Cap: ``max_price_wei``.
* ``"reverse-dutch"`` — RISC Zero Boundless's request auction (Boundless docs, "Reverse Dutch auction"
  / proof lifecycle): the offered price ramps linearly from ``min_price_wei`` at ``bidding_start_s`` to
  ``max_price_wei`` at ``bidding_start_s + ramp_period_s``; a provider whose ask the current price meets
  locks the job by posting ``collateral_wei`` and is paid the price at lock time. A lock not fulfilled
  within ``lock_timeout_s`` is slashed and the job re-opens (see :func:`lock`, :func:`fulfil`,
  :func:`expire`). In a batch round at ``now_s`` every ask <= ``ramp_price_wei(now_s)`` is eligible and
  the assigned job pays that ramp price.

Units of work and measured speed (issue 14, finding 10): a proof job's work is its constraint count, an
inference job's its sentence count (:func:`work_units`); offers may quote per unit
(:func:`market.core.orders.unit_ask_wei`). The ``speed`` the matching reads is the exchange's *measured* speed
(:func:`effective_speed`: the median of the provider's last :data:`SPEED_WINDOW` timed challenges,
:func:`challenge_speed`), never the provider's claim alone: an unmeasured claim counts at most
:data:`UNMEASURED_SPEED_CAP`, and a provider whose last challenge failed or timed out counts
:data:`FAILED_SPEED` (only jobs with a deadline that loose can go to it).
"""

from __future__ import annotations

import enum
import math
import statistics
from dataclasses import dataclass, replace
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from market.core.orders import JobOrder, MatchingError

Rule = Literal["pay-as-bid", "second-price", "reverse-dutch"]
RULES: tuple[str, ...] = ("pay-as-bid", "second-price", "reverse-dutch")


class UnknownRule(MatchingError, ValueError):
    """``rule`` is not one of :data:`RULES`."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        super().__init__(f"rule={rule!r}: choose one of {', '.join(RULES)}")


class InvalidTransition(MatchingError):
    """A lock lifecycle step that the current state does not allow (``state``, ``action``)."""

    def __init__(self, job_id: str, state: str, action: str, why: str) -> None:
        self.job_id, self.state, self.action = job_id, state, action
        super().__init__(f"job {job_id!r} is {state}: cannot {action} ({why})")


def check_rule(rule: str) -> str:
    """Return ``rule`` if it is a known pricing rule.

    Raises:
        UnknownRule: otherwise.
    """
    if rule not in RULES:
        raise UnknownRule(rule)
    return rule


def ramp_price_wei(min_price_wei: int, max_price_wei: int, bidding_start_s: float, ramp_period_s: float,
                   now_s: float) -> int:
    """Boundless's linear ramp: ``min`` before ``bidding_start_s``, ``max`` after the ramp, linear between.

    The elapsed fraction is taken in whole milliseconds so the price is an exact integer:
    ``min + (max - min) * elapsed_ms // ramp_ms``.
    """
    if ramp_period_s <= 0:
        return max_price_wei if now_s >= bidding_start_s else min_price_wei
    ramp_ms = max(1, round(ramp_period_s * 1000))
    elapsed_ms = min(ramp_ms, max(0, math.floor((now_s - bidding_start_s) * 1000)))
    return min_price_wei + (max_price_wei - min_price_wei) * elapsed_ms // ramp_ms


def price_caps(rule: str, max_price: np.ndarray, min_price: np.ndarray, bidding_start_s: np.ndarray,
               ramp_period_s: np.ndarray, now_s: float) -> np.ndarray:
    """Per-job cap (int64 wei) an ask must not exceed under ``rule`` at ``now_s``.

    Raises:
        UnknownRule: unknown ``rule``.
    """
    check_rule(rule)
    if rule != "reverse-dutch":
        return max_price.copy()
    caps = np.where(now_s >= bidding_start_s + ramp_period_s, max_price, min_price).astype(np.int64)
    ramping = np.nonzero((now_s > bidding_start_s) & (now_s < bidding_start_s + ramp_period_s))[0]
    for j in ramping.tolist():
        caps[j] = ramp_price_wei(int(min_price[j]), int(max_price[j]), float(bidding_start_s[j]),
                                 float(ramp_period_s[j]), now_s)
    return caps


def clearing_prices(rule: str, asks: np.ndarray, caps: np.ndarray, second: np.ndarray | None) -> np.ndarray:
    """What each assigned job pays (int64 wei) under ``rule``.

    Args:
        asks: winning asks; caps: the jobs' caps (:func:`price_caps`); second: for ``"second-price"``,
            the lowest other feasible ask per job (-1 = none).
    """
    check_rule(rule)
    if rule == "pay-as-bid":
        return asks.copy()
    if rule == "reverse-dutch":
        return caps.copy()
    assert second is not None
    other = np.where(second >= 0, second, caps)
    return np.maximum(asks, np.minimum(other, caps))


# ---------------------------------------------------------------------------------------------
# Reverse Dutch auction: the lock lifecycle as pure state transitions (money moves in the ledger)
# ---------------------------------------------------------------------------------------------


class LockStatus(str, enum.Enum):
    """Lifecycle of a job under the reverse Dutch auction."""

    OPEN = "open"
    LOCKED = "locked"
    FULFILLED = "fulfilled"
    EXPIRED = "expired"  # past the job's deadline, nobody delivered


@dataclass(frozen=True, slots=True)
class DutchJob:
    """State of one job in the reverse Dutch auction.

    ``provider``/``price_wei``/``collateral_wei``/``lock_expires_s`` describe the current lock (or the
    fulfilment); ``slashed`` lists the providers whose locks timed out (never re-matched to this job).
    """

    job_id: str
    status: LockStatus = LockStatus.OPEN
    provider: str | None = None
    price_wei: int = 0
    collateral_wei: int = 0
    lock_expires_s: float = 0.0
    slashed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Slash:
    """A lock timed out: the ledger takes ``collateral_wei`` from ``provider``'s bond, burns
    ``burn_wei`` and holds ``reward_wei`` for whoever fulfils the job before its deadline (Boundless:
    part of the slashed collateral is burned, the rest rewards the prover who steps in)."""

    job_id: str
    provider: str
    collateral_wei: int
    burn_wei: int
    reward_wei: int


def open_job(job: JobOrder) -> DutchJob:
    """The initial state of ``job`` in the reverse Dutch auction (open, no lock)."""
    return DutchJob(job_id=job.job_id, slashed=tuple(sorted(job.exclude_providers)))


def lock(state: DutchJob, *, provider: str, price_wei: int, collateral_wei: int, now_s: float,
         lock_timeout_s: float) -> DutchJob:
    """``provider`` locks the open job at ``price_wei`` (the ramp price now), posting ``collateral_wei``.

    Raises:
        InvalidTransition: the job is not open, or ``provider`` was slashed on it before.
    """
    if state.status is not LockStatus.OPEN:
        raise InvalidTransition(state.job_id, state.status.value, "lock", "only an open job can be locked")
    if provider in state.slashed:
        raise InvalidTransition(state.job_id, state.status.value, "lock", f"{provider} was slashed on this job")
    return replace(state, status=LockStatus.LOCKED, provider=provider, price_wei=price_wei,
                   collateral_wei=collateral_wei, lock_expires_s=now_s + lock_timeout_s)


def fulfil(state: DutchJob, *, provider: str, now_s: float) -> DutchJob:
    """The locking ``provider`` delivers before its lock expires.

    Raises:
        InvalidTransition: not locked, locked by someone else, or the lock has expired (call
            :func:`expire` first: the job re-opens).
    """
    if state.status is not LockStatus.LOCKED or state.provider != provider:
        raise InvalidTransition(state.job_id, state.status.value, "fulfil", f"not locked by {provider}")
    if now_s > state.lock_expires_s:
        raise InvalidTransition(state.job_id, state.status.value, "fulfil", "lock expired; expire() it first")
    return replace(state, status=LockStatus.FULFILLED)


def expire(state: DutchJob, *, now_s: float, deadline_s: float, burn_fraction: float = 0.5) -> tuple[DutchJob, Slash | None]:
    """Time passes: a lock past ``lock_expires_s`` is slashed and the job re-opens (if ``now_s`` is before
    ``deadline_s``) or expires (after it). Returns the new state and the :class:`Slash` to book (or None).
    ``burn_fraction`` of the collateral is burned, the rest is the rescuer's reward (Boundless: half).
    """
    if state.status is LockStatus.LOCKED and now_s > state.lock_expires_s:
        burn = int(state.collateral_wei * burn_fraction)
        slash = Slash(state.job_id, state.provider or "", state.collateral_wei, burn, state.collateral_wei - burn)
        status = LockStatus.OPEN if now_s < deadline_s else LockStatus.EXPIRED
        return replace(state, status=status, provider=None, price_wei=0, collateral_wei=0, lock_expires_s=0.0,
                       slashed=tuple(sorted(set(state.slashed) | {slash.provider}))), slash
    if state.status is LockStatus.OPEN and now_s >= deadline_s:
        return replace(state, status=LockStatus.EXPIRED), None
    return state, None


# ---------------------------------------------------------------------------------------------
# Units of work and measured speed
# ---------------------------------------------------------------------------------------------

#: The unit of work of each job kind.
WORK_UNIT: dict[str, str] = {"proof": "constraint", "inference": "sentence"}
#: Units per second of the reference machine (speed 1.0): Groth16 constraints proved (numba prover, MiMC-7,
#: including the dispatch overhead of a small proof) and sentences embedded (MiniLM, CPU).
REFERENCE_UNITS_PER_S: dict[str, float] = {"proof": 400.0, "inference": 20.0}
#: MiMC-7 rounds of a speed challenge (4 constraints each; ``market.exchange.service.challenges``), here so that
#: the provider agent can build its proving key ahead of the first, timed, challenge.
CHALLENGE_ROUNDS = 91
#: How many recent challenge measurements the measured speed is the median of.
SPEED_WINDOW = 5
#: The most an unmeasured speed claim counts for (the reference machine).
UNMEASURED_SPEED_CAP = 1.0
#: The speed of a provider whose last challenge failed or timed out (the floor of ``Offer.speed``).
FAILED_SPEED = 0.001
#: Measured speeds are kept to this many significant digits (a jitter below it does not move prices).
SPEED_DIGITS = 2


def work_units(kind: str, params: Mapping[str, Any]) -> int:
    """The units of work of a job from its stored params: ``n_constraints`` of a proof (else 4 per MiMC-7
    round), ``n_sentences`` of an inference; 0 when unknown."""
    if kind == "proof":
        if params.get("n_constraints") is not None:
            return max(0, int(params["n_constraints"]))
        return 4 * max(0, int(params.get("rounds") or 0))
    if kind == "inference":
        return max(0, int(params.get("n_sentences") or 0))
    return 0


def reference_seconds(kind: str, units: int) -> int:
    """Seconds ``units`` of ``kind`` take on the reference machine (at least 1): the duration estimate."""
    rate = REFERENCE_UNITS_PER_S.get(kind)
    return max(1, math.ceil(units / rate)) if rate and units > 0 else 1


def quantise_speed(speed: float) -> float:
    """``speed`` to :data:`SPEED_DIGITS` significant digits, within ``[FAILED_SPEED, 1e6]``."""
    if not speed > 0 or math.isnan(speed):
        return FAILED_SPEED
    digits = SPEED_DIGITS - 1 - math.floor(math.log10(speed))
    return min(1e6, max(FAILED_SPEED, round(speed, digits)))


def challenge_speed(kind: str, units: int, elapsed_s: float) -> float:
    """The speed factor a challenge of ``units`` of ``kind`` answered in ``elapsed_s`` seconds shows:
    ``units / elapsed_s / REFERENCE_UNITS_PER_S[kind]``, quantised (:func:`quantise_speed`)."""
    return quantise_speed(units / max(elapsed_s, 1e-3) / REFERENCE_UNITS_PER_S[kind])


def effective_speed(claimed: float, measured: Sequence[float], last_failed: bool = False) -> float:
    """The speed the matching uses for a provider (see the module docstring): :data:`FAILED_SPEED` after a
    failed challenge, else the median of the last :data:`SPEED_WINDOW` ``measured`` speeds, else the claim
    capped at :data:`UNMEASURED_SPEED_CAP`."""
    if last_failed:
        return FAILED_SPEED
    if measured:
        return quantise_speed(statistics.median(list(measured)[-SPEED_WINDOW:]))
    return quantise_speed(min(float(claimed), UNMEASURED_SPEED_CAP))


def offer_unit_prices(hardware: Mapping[str, Any] | None) -> dict[str, int]:
    """The per-unit quotes the exchange noted for a provider (``hardware["exchange"]``, set at registration by
    :mod:`market.exchange.service.challenges`) as :class:`market.core.orders.Offer` keyword arguments."""
    n = (hardware or {}).get("exchange") or {}
    return {k: int(n.get(k) or 0) for k in ("price_per_constraint_wei", "price_per_sentence_wei")}
