"""The service's own limits and timings (on top of :class:`market.settings.Settings`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

MIB = 1024 * 1024


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
        challenge_interval_s: seconds between two speed challenges of one provider (None: no challenges;
            the self-reported speed then counts, capped at the reference machine's, :mod:`.challenges`).
        challenge_deadline_s: seconds a provider has to answer a challenge.
        challenge_grace_s: no challenge in a provider's first seconds after registering (its agent builds the
            challenge's proving key meanwhile, off the clock).
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
    challenge_interval_s: float | None = None
    challenge_deadline_s: float = 120.0
    challenge_grace_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.lease_s > 0 or not self.round_interval_s > 0:
            raise ValueError(f"lease_s and round_interval_s must be > 0 s, got {self.lease_s}, {self.round_interval_s}")
        if self.max_result_bytes * 4 // 3 + 65_536 > self.max_body_bytes:
            raise ValueError("max_body_bytes must hold a base64 result of max_result_bytes")

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> "ServiceConfig":
        """Take ``lease_s``, ``round_interval_s``, ``dev``, ``contract`` and ``pricing_hooks`` from ``settings`` when
        it has them."""
        base = cls()
        picked = {k: getattr(settings, k) for k in ("lease_s", "round_interval_s", "dev", "contract", "pricing_hooks")
                  if getattr(settings, k, None) is not None}
        return replace(base, **{**picked, **{k: v for k, v in overrides.items() if v is not None}})
