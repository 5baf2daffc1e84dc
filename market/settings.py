"""Settings: built once (from CLI options and the environment) and passed down; nothing is read at import.

Units are in the names: ``_s`` seconds, ``_wei`` wei, ``_bps`` basis points.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


class SettingsError(ValueError):
    """A setting is out of range; the message names it and the fix."""


def default_data_dir() -> Path:
    """``$RAYMARKET_HOME`` or the user's data directory (``~/.local/share/raymarket`` on Linux)."""
    if os.environ.get("RAYMARKET_HOME"):
        return Path(os.environ["RAYMARKET_HOME"])
    from platformdirs import user_data_dir

    return Path(user_data_dir("raymarket", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """Everything the market needs to run, validated in one place.

    Attributes:
        database_url: SQLAlchemy URL; None = the SQLite file under ``data_dir``.
        rpc_url: an Ethereum JSON-RPC node (anvil); None = the in-process EVM.
        ray_address: an existing Ray cluster to join; None = start a local one.
        data_dir: results, inputs, keys and the SQLite ledger live here.
        fee_bps: protocol fee on each payment, basis points.
        job_timeout_s: how long a provider may take on one job before it is re-auctioned.
        max_attempts: auctions per job before it fails.
        settlement_batch_size: attestations per on-chain batch at most.
        settlement_window_s: a batch closes at the end of its deterministic time window, seconds.
        confirmations: blocks the watcher waits before it trusts an event.
        matching_rule: ``pay-as-bid`` | ``second-price`` (see ``market.core.pricing``).
    """

    database_url: str | None = None
    rpc_url: str | None = None
    ray_address: str | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    fee_bps: int = 100
    job_timeout_s: float = 600.0
    max_attempts: int = 3
    settlement_batch_size: int = 256
    settlement_window_s: float = 30.0
    confirmations: int = 0
    matching_rule: str = "pay-as-bid"

    def __post_init__(self) -> None:
        if not 0 <= self.fee_bps <= 10_000:
            raise SettingsError(f"fee_bps must be in [0, 10000], got {self.fee_bps}")
        if self.job_timeout_s <= 0:
            raise SettingsError(f"job_timeout_s must be > 0, got {self.job_timeout_s}")
        if self.max_attempts < 1:
            raise SettingsError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.settlement_batch_size < 1:
            raise SettingsError(f"settlement_batch_size must be >= 1, got {self.settlement_batch_size}")
        if self.matching_rule not in ("pay-as-bid", "second-price"):
            raise SettingsError(f"matching_rule must be 'pay-as-bid' or 'second-price', got {self.matching_rule!r}")

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``sqlite:///<data_dir>/ledger.db``."""
        from market.db.base import resolve_database_url

        if self.database_url or os.environ.get("RAYMARKET_DATABASE_URL"):
            return resolve_database_url(self.database_url)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.data_dir / 'ledger.db'}"

    def with_(self, **changes) -> "Settings":
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)

    @property
    def results_dir(self) -> Path:
        """Where job results are written (``<data_dir>/results``)."""
        return self.data_dir / "results"

    @property
    def inputs_dir(self) -> Path:
        """Where submitted inputs are kept, immutable, by job id (``<data_dir>/inputs``)."""
        return self.data_dir / "inputs"
