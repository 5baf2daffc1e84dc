"""Money on chain: Vault events applied to the ledger, reorgs that undid them, epoch roots, on-chain slashes.

Revision ID: 0005_vault
Revises: 0004_service
Create Date: 2026-12-01

Hand-written to match ``market/settlement/vault_models.py`` (constraint names from
``market.db.base.NAMING_CONVENTION``). The ledger's new accounts (``vault``, ``claimable:<address>``,
``debt:<address>``, ``stake:<address>``) use the existing kinds ``world`` / ``other``: no ledger table changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_vault"
down_revision = "0004_service"
branch_labels = None
depends_on = None

WEI = sa.Numeric(78, 0)
HASH = sa.String(66)
ADDRESS = sa.String(42)


def upgrade() -> None:
    op.create_table(
        "vault_events",
        sa.Column("block_hash", HASH, nullable=False),
        sa.Column("tx_hash", HASH, nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("watcher", sa.String(64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("account", ADDRESS, nullable=False),
        sa.Column("amount_wei", WEI, nullable=False),
        sa.Column("op_id", sa.String(200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("block_hash", "tx_hash", "log_index", name=op.f("pk_vault_events")),
    )
    op.create_index(op.f("ix_vault_events_watcher"), "vault_events", ["watcher"])
    op.create_index(op.f("ix_vault_events_block_number"), "vault_events", ["block_number"])
    op.create_index(op.f("ix_vault_events_account"), "vault_events", ["account"])
    op.create_table(
        "vault_reorgs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("watcher", sa.String(64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", HASH, nullable=False),
        sa.Column("tx_hash", HASH, nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("account", ADDRESS, nullable=False),
        sa.Column("reverted_wei", WEI, nullable=False),
        sa.Column("shortfall_wei", WEI, nullable=False),
        sa.Column("detected_at_s", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_reorgs")),
    )
    op.create_index(op.f("ix_vault_reorgs_watcher"), "vault_reorgs", ["watcher"])
    op.create_index(op.f("ix_vault_reorgs_account"), "vault_reorgs", ["account"])
    op.create_table(
        "vault_epochs",
        sa.Column("vault", ADDRESS, nullable=False),
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", HASH, nullable=False),
        sa.Column("total_wei", WEI, nullable=False),
        sa.Column("leaves", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tx_hash", HASH, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at_s", sa.Double(), nullable=False),
        sa.CheckConstraint("status IN ('built', 'posted', 'failed')", name=op.f("ck_vault_epochs_status_known")),
        sa.PrimaryKeyConstraint("vault", "epoch", name=op.f("pk_vault_epochs")),
    )
    op.create_table(
        "vault_slashes",
        sa.Column("slash_id", sa.String(200), nullable=False),
        sa.Column("vault", ADDRESS, nullable=False),
        sa.Column("provider_address", ADDRESS, nullable=False),
        sa.Column("ref", HASH, nullable=False),
        sa.Column("amount_wei", WEI, nullable=False),
        sa.Column("burn_wei", WEI, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tx_hash", HASH, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('sent', 'failed')", name=op.f("ck_vault_slashes_status_known")),
        sa.PrimaryKeyConstraint("slash_id", name=op.f("pk_vault_slashes")),
    )
    op.create_index(op.f("ix_vault_slashes_ref"), "vault_slashes", ["ref"])


def downgrade() -> None:
    op.drop_index(op.f("ix_vault_slashes_ref"), table_name="vault_slashes")
    op.drop_table("vault_slashes")
    op.drop_table("vault_epochs")
    op.drop_index(op.f("ix_vault_reorgs_account"), table_name="vault_reorgs")
    op.drop_index(op.f("ix_vault_reorgs_watcher"), table_name="vault_reorgs")
    op.drop_table("vault_reorgs")
    op.drop_index(op.f("ix_vault_events_account"), table_name="vault_events")
    op.drop_index(op.f("ix_vault_events_block_number"), table_name="vault_events")
    op.drop_index(op.f("ix_vault_events_watcher"), table_name="vault_events")
    op.drop_table("vault_events")
