"""Settlement: batches, leaves, watcher checkpoint, seen block hashes, applied events.

Revision ID: 0003_settlement
Revises: 0002_market
Create Date: 2026-11-21

Hand-written to match ``market/settlement_models.py`` (constraint names from ``market.db.base.NAMING_CONVENTION``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_settlement"
down_revision: str | None = "0002_market"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HASH = sa.String(66)
ADDRESS = sa.String(42)
WEI = sa.Numeric(78, 0)


def upgrade() -> None:
    op.create_table(
        "settlement_batches",
        sa.Column("batch_id", HASH, nullable=False),
        sa.Column("root", HASH, nullable=False),
        sa.Column("leaf_count", sa.Integer(), nullable=False),
        sa.Column("total_paid_wei", WEI, nullable=False),
        sa.Column("window_index", sa.BigInteger(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tx_hash", HASH, nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", HASH, nullable=True),
        sa.Column("deadline_block", sa.BigInteger(), nullable=True),
        sa.Column("challenged_count", sa.Integer(), nullable=False),
        sa.Column("closed_at_s", sa.Double(), nullable=True),
        sa.CheckConstraint("leaf_count >= 0", name=op.f("ck_settlement_batches_leaf_count_nonnegative")),
        sa.CheckConstraint("total_paid_wei >= 0", name=op.f("ck_settlement_batches_total_paid_nonnegative")),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_settlement_batches")),
    )
    op.create_index(op.f("ix_settlement_batches_status"), "settlement_batches", ["status"])
    op.create_table(
        "settlement_leaves",
        sa.Column("job_id", HASH, nullable=False),
        sa.Column("job_ref", sa.String(80), nullable=True),
        sa.Column("batch_id", HASH, nullable=True),
        sa.Column("leaf_index", sa.Integer(), nullable=True),
        sa.Column("leaf_hash", HASH, nullable=False),
        sa.Column("input_hash", HASH, nullable=False),
        sa.Column("result_hash", HASH, nullable=False),
        sa.Column("provider", ADDRESS, nullable=False),
        sa.Column("price_wei", WEI, nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("signature", sa.String(132), nullable=False),
        sa.Column("proof_commitment", HASH, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contract", ADDRESS, nullable=False),
        sa.Column("added_at_s", sa.Double(), nullable=False),
        sa.Column("challenge_reason", sa.SmallInteger(), nullable=True),
        sa.CheckConstraint("kind IN (0, 1)", name=op.f("ck_settlement_leaves_kind_known")),
        sa.CheckConstraint("price_wei >= 0", name=op.f("ck_settlement_leaves_price_nonnegative")),
        sa.ForeignKeyConstraint(["batch_id"], ["settlement_batches.batch_id"],
                                name=op.f("fk_settlement_leaves_batch_id_settlement_batches")),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_settlement_leaves")),
    )
    op.create_index(op.f("ix_settlement_leaves_job_ref"), "settlement_leaves", ["job_ref"])
    op.create_index(op.f("ix_settlement_leaves_batch_id"), "settlement_leaves", ["batch_id"])
    op.create_index(op.f("ix_settlement_leaves_leaf_hash"), "settlement_leaves", ["leaf_hash"])
    op.create_index(op.f("ix_settlement_leaves_provider"), "settlement_leaves", ["provider"])
    op.create_table(
        "settlement_checkpoints",
        sa.Column("watcher", sa.String(64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", HASH, nullable=False),
        sa.PrimaryKeyConstraint("watcher", name=op.f("pk_settlement_checkpoints")),
    )
    op.create_table(
        "settlement_seen_blocks",
        sa.Column("watcher", sa.String(64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", HASH, nullable=False),
        sa.PrimaryKeyConstraint("watcher", "block_number", name=op.f("pk_settlement_seen_blocks")),
    )
    op.create_table(
        "settlement_applied_events",
        sa.Column("block_hash", HASH, nullable=False),
        sa.Column("tx_hash", HASH, nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("watcher", sa.String(64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("batch_id", HASH, nullable=False),
        sa.Column("job_id", HASH, nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("block_hash", "tx_hash", "log_index", name=op.f("pk_settlement_applied_events")),
    )
    op.create_index(op.f("ix_settlement_applied_events_watcher"), "settlement_applied_events", ["watcher"])
    op.create_index(op.f("ix_settlement_applied_events_block_number"), "settlement_applied_events",
                    ["block_number"])
    op.create_index(op.f("ix_settlement_applied_events_batch_id"), "settlement_applied_events", ["batch_id"])


def downgrade() -> None:
    op.drop_table("settlement_applied_events")
    op.drop_table("settlement_seen_blocks")
    op.drop_table("settlement_checkpoints")
    op.drop_table("settlement_leaves")
    op.drop_table("settlement_batches")
