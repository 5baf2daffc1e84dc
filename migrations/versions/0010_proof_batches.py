"""Proof batches of the exchange's proving pipeline (issue 13): ``proof_batches`` and ``proof_batch_jobs``.

Revision ID: 0010_proof_batches
Revises: 0009_job_verifying
Create Date: 2026-12-02

Hand-written to match ``market.db.models.ProofBatch`` / ``ProofBatchJob`` (constraint names from
``market.db.base.NAMING_CONVENTION``). New tables only: the upgrade and the downgrade touch no existing row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_proof_batches"
down_revision = "0009_job_verifying"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proof_batches",
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("round_id", sa.String(80), nullable=True),
        sa.Column("circuit_id", sa.String(64), nullable=False),
        sa.Column("pk_sha256", sa.String(64), nullable=True),
        sa.Column("vk_sha256", sa.String(64), nullable=True),
        sa.Column("n_jobs", sa.Integer(), nullable=False),
        sa.Column("n_ok", sa.Integer(), nullable=False),
        sa.Column("n_rejected", sa.Integer(), nullable=False),
        sa.Column("n_lost", sa.Integer(), nullable=False),
        sa.Column("verify_checks", sa.Integer(), nullable=False),
        sa.Column("verify_s", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("delivered_at", sa.Double(), nullable=True),
        sa.Column("uploaded_at", sa.Double(), nullable=True),
        sa.Column("verified_at", sa.Double(), nullable=True),
        sa.Column("code", sa.JSON(), nullable=False),
        sa.Column("record_sha256", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_proof_batches")),
    )
    op.create_index("ix_proof_batches_created_at", "proof_batches", ["created_at"])
    op.create_table(
        "proof_batch_jobs",
        sa.Column("lease_id", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(80), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("input_hash", sa.String(66), nullable=False),
        sa.Column("public", sa.JSON(), nullable=False),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("result_hash", sa.String(66), nullable=True),
        sa.Column("proof_sha256", sa.String(64), nullable=True),
        sa.Column("publics_sha256", sa.String(64), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("verify_group", sa.Integer(), nullable=True),
        sa.Column("verify_checks", sa.Integer(), nullable=True),
        sa.Column("verify_s", sa.Double(), nullable=True),
        sa.Column("delivered_at", sa.Double(), nullable=True),
        sa.Column("uploaded_at", sa.Double(), nullable=True),
        sa.Column("verified_at", sa.Double(), nullable=True),
        sa.CheckConstraint("verdict is null or verdict in ('ok','rejected','expired','failed','revoked')",
                           name=op.f("ck_proof_batch_jobs_verdict_known")),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.lease_id"], name=op.f("fk_proof_batch_jobs_lease_id_leases")),
        sa.ForeignKeyConstraint(["batch_id"], ["proof_batches.batch_id"],
                                name=op.f("fk_proof_batch_jobs_batch_id_proof_batches")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"], name=op.f("fk_proof_batch_jobs_job_id_jobs")),
        sa.PrimaryKeyConstraint("lease_id", name=op.f("pk_proof_batch_jobs")),
    )
    op.create_index(op.f("ix_proof_batch_jobs_batch_id"), "proof_batch_jobs", ["batch_id"])
    op.create_index(op.f("ix_proof_batch_jobs_job_id"), "proof_batch_jobs", ["job_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_proof_batch_jobs_job_id"), table_name="proof_batch_jobs")
    op.drop_index(op.f("ix_proof_batch_jobs_batch_id"), table_name="proof_batch_jobs")
    op.drop_table("proof_batch_jobs")
    op.drop_index("ix_proof_batches_created_at", table_name="proof_batches")
    op.drop_table("proof_batches")
