"""The service's own limits and timings (on top of :class:`market.settings.Settings`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

MIB = 1024 * 1024
#: Default seconds between two timed speed challenges of one provider (issue 14 finding 10: on by default; a
#: challenge is a ~1 reference-second proof, so this costs a provider well under 1 % of its time).
DEFAULT_CHALLENGE_INTERVAL_S = 300.0


@dataclass(frozen=True)
class ServiceConfig:
    """How the exchange service runs.

    Attributes:
        lease_s: an assignment's lease lifetime, seconds (a heartbeat or a poll extends it).
        round_interval_s: seconds between two background ticks (round, lease expiry, settlement, watcher).
        dev: accept development-only requests (``/v1/dev/faucet``). Never in production.
        contract: a Settlement contract address to use (None: the one remembered in the database, else deploy).
        operator_key: the operator's settlement key (hex); None = the chain's first dev key (development).
        max_body_bytes: largest request body accepted (413 ``too_large`` above).
        max_input_bytes: largest inference input text, bytes.
        max_result_bytes: largest uploaded result, bytes.
        max_proof_rounds: largest MiMC-7 round count a proof job may ask for.
        nonce_prune_s: how often expired request nonces are deleted, seconds.
        pricing_hooks: provider name -> pricing hook spec (``"module:function"`` / ``"path.py:function"``) the
            operator installed for it; run in a worker process each round (:mod:`market.exchange.pricing_hooks`).
        pricing_hook_timeout_s: seconds each hook call may take (the worker is killed past it).
        challenge_interval_s: seconds between two speed challenges of one provider (default
            :data:`DEFAULT_CHALLENGE_INTERVAL_S`; ``None`` or 0: no challenges, the self-reported speed then counts,
            capped at the reference machine's, :mod:`.challenges`). Settings ``challenge_interval_s`` /
            ``--challenge-interval-s`` (0 = off).
        challenge_deadline_s: seconds a provider has to answer a challenge.
        challenge_grace_s: no challenge in a provider's first seconds after registering (its agent builds the
            challenge's proving key meanwhile, off the clock).
        challenge_retry_s: after a failed (wrong or late) challenge, the next one is due this soon (at most
            ``challenge_interval_s``): the provider counts at the floor speed until it passes one.
    """

    lease_s: float = 30.0
    round_interval_s: float = 0.5
    dev: bool = False
    contract: str | None = None
    operator_key: str | None = None
    max_body_bytes: int = 48 * MIB
    max_input_bytes: int = 8 * MIB
    max_result_bytes: int = 32 * MIB
    max_proof_rounds: int = 364
    nonce_prune_s: float = 60.0
    pricing_hooks: Mapping[str, str] = field(default_factory=dict)
    pricing_hook_timeout_s: float = 0.25
    challenge_interval_s: float | None = DEFAULT_CHALLENGE_INTERVAL_S
    challenge_deadline_s: float = 120.0
    challenge_grace_s: float = 30.0
    challenge_retry_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.lease_s > 0 or not self.round_interval_s > 0:
            raise ValueError(f"lease_s and round_interval_s must be > 0 s, got {self.lease_s}, {self.round_interval_s}")
        if self.max_result_bytes * 4 // 3 + 65_536 > self.max_body_bytes:
            raise ValueError("max_body_bytes must hold a base64 result of max_result_bytes")
        if self.challenge_interval_s is not None and not self.challenge_interval_s >= 0:
            raise ValueError(f"challenge_interval_s must be >= 0 s (0 or None: off), got {self.challenge_interval_s}")
        if not self.challenge_deadline_s > 0 or not self.challenge_grace_s >= 0 or not self.challenge_retry_s >= 0:
            raise ValueError("challenge_deadline_s must be > 0 s, challenge_grace_s and challenge_retry_s >= 0 s")

    @property
    def challenges_on(self) -> bool:
        """Whether the exchange issues timed speed challenges (``challenge_interval_s`` set and > 0)."""
        return bool(self.challenge_interval_s)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> "ServiceConfig":
        """Take ``lease_s``, ``round_interval_s``, ``dev``, ``contract``, ``pricing_hooks`` and
        ``challenge_interval_s`` (0 = off) from ``settings`` when it has them; ``overrides`` that are not None win."""
        base = cls()
        picked = {k: getattr(settings, k) for k in ("lease_s", "round_interval_s", "dev", "contract", "pricing_hooks",
                                                    "challenge_interval_s")
                  if getattr(settings, k, None) is not None}
        return replace(base, **{**picked, **{k: v for k, v in overrides.items() if v is not None}})
