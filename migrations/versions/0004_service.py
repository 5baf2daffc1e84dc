"""The exchange service: leases, request nonces, job blobs and logs, service facts; provider presence.

Revision ID: 0004_service
Revises: 0003_settlement
Create Date: 2026-12-01

Hand-written to match ``market/db/models.py`` (constraint names from ``market.db.base.NAMING_CONVENTION``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_service"
down_revision = "0003_settlement"
branch_labels = None
depends_on = None

WEI = sa.Numeric(78, 0)


def upgrade() -> None:
    with op.batch_alter_table("providers") as batch:
        batch.add_column(sa.Column("last_seen_at", sa.Double(), nullable=True))
        batch.add_column(sa.Column("draining", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("ray_address", sa.String(256), nullable=True))
    with op.batch_alter_table("providers") as batch:
        batch.alter_column("draining", server_default=None)
    op.create_table(
        "leases",
        sa.Column("lease_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(80), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("price_wei", WEI, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("delivered_at", sa.Double(), nullable=True),
        sa.Column("closed_at", sa.Double(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.CheckConstraint("status in ('assigned','running','completed','rejected','failed','expired','revoked')",
                           name=op.f("ck_leases_status_known")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"], name=op.f("fk_leases_job_id_jobs")),
        sa.ForeignKeyConstraint(["provider"], ["providers.name"], name=op.f("fk_leases_provider_providers")),
        sa.PrimaryKeyConstraint("lease_id", name=op.f("pk_leases")),
    )
    op.create_index(op.f("ix_leases_job_id"), "leases", ["job_id"])
    op.create_index("ix_leases_provider_status", "leases", ["provider", "status"])
    op.create_index("ix_leases_status_expires_at", "leases", ["status", "expires_at"])
    op.create_table(
        "request_nonces",
        sa.Column("signer", sa.String(42), nullable=False),
        sa.Column("nonce", sa.String(20), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("expiry", sa.Double(), nullable=False),
        sa.Column("at_s", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("signer", "nonce", name=op.f("pk_request_nonces")),
    )
    op.create_index(op.f("ix_request_nonces_expiry"), "request_nonces", ["expiry"])
    op.create_table(
        "job_blobs",
        sa.Column("job_id", sa.String(80), nullable=False),
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"], name=op.f("fk_job_blobs_job_id_jobs")),
        sa.PrimaryKeyConstraint("job_id", "name", name=op.f("pk_job_blobs")),
    )
    op.create_table(
        "job_logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(80), nullable=False),
        sa.Column("lease_id", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("at_s", sa.Double(), nullable=False),
        sa.Column("line", sa.String(2000), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"], name=op.f("fk_job_logs_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_logs")),
    )
    op.create_index(op.f("ix_job_logs_job_id"), "job_logs", ["job_id"])
    op.create_table(
        "service_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_service_meta")),
    )


def downgrade() -> None:
    op.drop_table("service_meta")
    op.drop_index(op.f("ix_job_logs_job_id"), table_name="job_logs")
    op.drop_table("job_logs")
    op.drop_table("job_blobs")
    op.drop_index(op.f("ix_request_nonces_expiry"), table_name="request_nonces")
    op.drop_table("request_nonces")
    op.drop_index("ix_leases_status_expires_at", table_name="leases")
    op.drop_index("ix_leases_provider_status", table_name="leases")
    op.drop_index(op.f("ix_leases_job_id"), table_name="leases")
    op.drop_table("leases")
    with op.batch_alter_table("providers") as batch:
        batch.drop_column("ray_address")
        batch.drop_column("draining")
        batch.drop_column("last_seen_at")
