"""Settlement tables: batches, their leaves (one per job), and the watcher's checkpoint, seen block
hashes and applied events.

Hashes, ids and addresses are stored as ``0x``-hex strings (32-byte values: 66 characters); money is wei
(``NUMERIC(78, 0)``); times are Unix seconds (float).
"""

from __future__ import annotations

import enum
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from market.db.base import Base, Wei

HASH = String(66)
ADDRESS = String(42)


class BatchStatus(enum.StrEnum):
    """Lifecycle of a settlement batch.

    ``built`` (root computed, to send) -> ``sent`` (transaction mined, event not yet confirmed) -> ``onchain``
    (the watcher applied its ``BatchSubmitted`` event) -> ``finalized`` (``BatchFinalized`` applied).
    A reorg that removes the submission sends it back to ``built`` (the settler resubmits, same id and root).
    ``external``: a batch seen on chain that this database did not build.
    """

    BUILT = "built"
    SENT = "sent"
    ONCHAIN = "onchain"
    FINALIZED = "finalized"
    EXTERNAL = "external"


class BatchRecord(Base):
    """One batch of attestations.

    Attributes:
        batch_id: 0x-hex bytes32, deterministic from the window index and sequence (retries reuse it).
        root: 0x-hex Merkle root; leaf_count; total_paid_wei: sum of the leaves' prices.
        window_index: ``floor(added_at_s / window_s)`` of its leaves; seq: batch number within the window.
        status: :class:`BatchStatus`.
        tx_hash: the submitting transaction (set by the settler, confirmed by the watcher).
        block_number, block_hash: where the watcher saw ``BatchSubmitted``.
        deadline_block: last block accepting challenges; challenged_count: leaves successfully challenged.
    """

    __tablename__ = "settlement_batches"

    batch_id: Mapped[str] = mapped_column(HASH, primary_key=True)
    root: Mapped[str] = mapped_column(HASH)
    leaf_count: Mapped[int]
    total_paid_wei: Mapped[Wei]
    window_index: Mapped[Optional[int]] = mapped_column(BigInteger)
    seq: Mapped[Optional[int]]
    status: Mapped[str] = mapped_column(String(16), index=True)
    tx_hash: Mapped[Optional[str]] = mapped_column(HASH)
    block_number: Mapped[Optional[int]] = mapped_column(BigInteger)
    block_hash: Mapped[Optional[str]] = mapped_column(HASH)
    deadline_block: Mapped[Optional[int]] = mapped_column(BigInteger)
    challenged_count: Mapped[int] = mapped_column(default=0)
    closed_at_s: Mapped[Optional[float]]

    __table_args__ = (
        CheckConstraint("leaf_count >= 0", name="leaf_count_nonnegative"),
        CheckConstraint("total_paid_wei >= 0", name="total_paid_nonnegative"),
    )


class LeafRecord(Base):
    """One attested job and its place in a batch.

    Attributes:
        job_id: 0x-hex bytes32 ``jobId`` of the attestation; job_ref: the exchange's job id (``jobs.job_id``).
        batch_id, leaf_index: set when its batch closes; leaf_hash: ``Settlement.leafHash``.
        input_hash, result_hash, provider, price_wei, kind: the attestation's fields.
        verification, sample_rate_ppm: its policy fields (0 proof, 1 spot-check, 2 attest-only; the spot-check
            rate in ppm, else 0; ``contracts.attestation.Verification``).
        signature: 0x-hex 65 bytes; proof_commitment: 0x-hex bytes32 (zero for inference).
        chain_id, contract: the EIP-712 domain it was signed under.
        added_at_s: when it was accumulated (decides its batching window).
        challenge_reason: 1 bad signature, 2 bad proof, 3 duplicate (from ``LeafChallenged``), else null.
    """

    __tablename__ = "settlement_leaves"

    job_id: Mapped[str] = mapped_column(HASH, primary_key=True)
    job_ref: Mapped[Optional[str]] = mapped_column(String(80), index=True)
    batch_id: Mapped[Optional[str]] = mapped_column(ForeignKey("settlement_batches.batch_id"), index=True)
    leaf_index: Mapped[Optional[int]]
    leaf_hash: Mapped[str] = mapped_column(HASH, index=True)
    input_hash: Mapped[str] = mapped_column(HASH)
    result_hash: Mapped[str] = mapped_column(HASH)
    provider: Mapped[str] = mapped_column(ADDRESS, index=True)
    price_wei: Mapped[Wei]
    kind: Mapped[int] = mapped_column(SmallInteger)
    verification: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    sample_rate_ppm: Mapped[int] = mapped_column(BigInteger, server_default="0")
    signature: Mapped[str] = mapped_column(String(132))
    proof_commitment: Mapped[str] = mapped_column(HASH)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(ADDRESS)
    added_at_s: Mapped[float]
    challenge_reason: Mapped[Optional[int]] = mapped_column(SmallInteger)

    __table_args__ = (
        CheckConstraint("kind IN (0, 1)", name="kind_known"),
        CheckConstraint("verification IN (0, 1, 2)", name="verification_known"),
        CheckConstraint("sample_rate_ppm >= 0 AND sample_rate_ppm <= 1000000", name="sample_rate_ppm_range"),
        CheckConstraint("price_wei >= 0", name="price_nonnegative"),
    )


class WatcherCheckpoint(Base):
    """The last block a watcher has fully applied (``watcher``: its name, by default the contract address)."""

    __tablename__ = "settlement_checkpoints"

    watcher: Mapped[str] = mapped_column(String(64), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(HASH)


class SeenBlock(Base):
    """A block hash a watcher relied on (checkpoints and blocks holding applied events), for reorg detection."""

    __tablename__ = "settlement_seen_blocks"

    watcher: Mapped[str] = mapped_column(String(64), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    block_hash: Mapped[str] = mapped_column(HASH)


class AppliedEvent(Base):
    """A contract event a watcher applied, keyed by ``(block_hash, tx_hash, log_index)`` so a replay of the
    same log is never applied twice; deleted when a reorg removes its block.

    Attributes:
        event: ``BatchSubmitted`` | ``LeafChallenged`` | ``BatchFinalized``; batch_id, job_id (challenges).
        payload: the decoded event arguments (hex strings / ints), JSON.
    """

    __tablename__ = "settlement_applied_events"

    block_hash: Mapped[str] = mapped_column(HASH, primary_key=True)
    tx_hash: Mapped[str] = mapped_column(HASH, primary_key=True)
    log_index: Mapped[int] = mapped_column(primary_key=True)
    watcher: Mapped[str] = mapped_column(String(64), index=True)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    event: Mapped[str] = mapped_column(String(32))
    batch_id: Mapped[str] = mapped_column(HASH, index=True)
    job_id: Mapped[Optional[str]] = mapped_column(HASH)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


SETTLEMENT_TABLES = [BatchRecord.__table__, LeafRecord.__table__, WatcherCheckpoint.__table__,
                     SeenBlock.__table__, AppliedEvent.__table__]
