"""Registered Groth16 circuits (issue 13): the zkey stored once by sha256, the derived verification key.

Revision ID: 0006_circuits
Revises: 0005_vault
Create Date: 2026-12-01

Hand-written to match ``market.db.models.CircuitRecord`` (constraint names from
``market.db.base.NAMING_CONVENTION``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_circuits"
down_revision = "0005_vault"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "circuits",
        sa.Column("circuit_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=True),
        sa.Column("owner", sa.String(42), nullable=False),
        sa.Column("n_vars", sa.BigInteger(), nullable=False),
        sa.Column("n_public", sa.BigInteger(), nullable=False),
        sa.Column("n_constraints", sa.BigInteger(), nullable=False),
        sa.Column("domain_size", sa.BigInteger(), nullable=False),
        sa.Column("vk_json", sa.JSON(), nullable=False),
        sa.Column("vk_sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("zkey", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("circuit_id", name=op.f("pk_circuits")),
    )


def downgrade() -> None:
    op.drop_table("circuits")
