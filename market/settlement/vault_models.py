"""Tables of the money side of the chain (migration ``0005_vault``): the Vault events the deposit watcher applied,
the reorgs that undid applied events, the epoch roots of cumulative claimable wei, and the ledger slashes carried
out on chain.

The watcher's checkpoint and the hashes of the blocks it relied on live in the settlement watcher's generic tables
(``settlement_checkpoints``, ``settlement_seen_blocks``) under the watcher name ``vault:<address>``.
Wei columns are :data:`market.db.base.Wei` (``NUMERIC(78, 0)``; Python ``int``).
"""

from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, CheckConstraint, Double, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from market.db.base import Base, Wei

HASH = String(66)
ADDRESS = String(42)
OP_ID = String(200)


class VaultEvent(Base):
    """One Vault log applied to the ledger, keyed by ``(block_hash, tx_hash, log_index)`` (applied at most once).

    ``op_id`` is the ledger operation that applied it (its reversal is ``reorg:<op_id>``); ``account`` the
    address the event names; ``amount_wei`` its amount; ``payload`` the decoded arguments (wei as decimal text).
    """

    __tablename__ = "vault_events"

    block_hash: Mapped[str] = mapped_column(HASH, primary_key=True)
    tx_hash: Mapped[str] = mapped_column(HASH, primary_key=True)
    log_index: Mapped[int] = mapped_column(primary_key=True)
    watcher: Mapped[str] = mapped_column(String(64), index=True)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    event: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(ADDRESS, index=True)
    amount_wei: Mapped[Wei]
    op_id: Mapped[str] = mapped_column(OP_ID)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class VaultReorg(Base):
    """An applied Vault event that a reorg removed: its ledger effect was debited back (``reverted_wei``);
    ``shortfall_wei`` of it could not be taken from the account and is owed (``debt:<address>``)."""

    __tablename__ = "vault_reorgs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    watcher: Mapped[str] = mapped_column(String(64), index=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(HASH)
    tx_hash: Mapped[str] = mapped_column(HASH)
    log_index: Mapped[int]
    event: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(ADDRESS, index=True)
    reverted_wei: Mapped[Wei]
    shortfall_wei: Mapped[Wei]
    detected_at_s: Mapped[float] = mapped_column(Double)


class VaultEpoch(Base):
    """One epoch root of cumulative claimable wei: ``leaves`` maps checksummed address -> cumulative wei
    (decimal text, exact); ``status`` is ``built`` (not yet on chain), ``posted`` (transaction mined) or
    ``failed`` (refused on chain; ``error`` says why)."""

    __tablename__ = "vault_epochs"
    __table_args__ = (
        CheckConstraint("status IN ('built', 'posted', 'failed')", name="status_known"),
    )

    vault: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[str] = mapped_column(HASH)
    total_wei: Mapped[Wei]
    leaves: Mapped[dict[str, str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    tx_hash: Mapped[Optional[str]] = mapped_column(HASH)
    error: Mapped[Optional[str]] = mapped_column(Text)
    created_at_s: Mapped[float] = mapped_column(Double)


class VaultSlash(Base):
    """A final ledger slash carried out on chain by ``Vault.slash`` (``ref`` = keccak of the slash id):
    ``status`` ``sent`` (mined) or ``failed`` (refused; ``error``)."""

    __tablename__ = "vault_slashes"
    __table_args__ = (
        CheckConstraint("status IN ('sent', 'failed')", name="status_known"),
    )

    slash_id: Mapped[str] = mapped_column(OP_ID, primary_key=True)
    vault: Mapped[str] = mapped_column(ADDRESS)
    provider_address: Mapped[str] = mapped_column(ADDRESS)
    ref: Mapped[str] = mapped_column(HASH, index=True)
    amount_wei: Mapped[Wei]
    burn_wei: Mapped[Wei]
    status: Mapped[str] = mapped_column(String(16))
    tx_hash: Mapped[Optional[str]] = mapped_column(HASH)
    error: Mapped[Optional[str]] = mapped_column(Text)
