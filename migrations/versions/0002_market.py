"""Market: providers and their offers, jobs and their history, auction rounds.

Revision ID: 0002_market
Revises: 0001_ledger
Create Date: 2026-11-21

Hand-written from ``market/market_models.py``. Money columns are NUMERIC(78, 0) (wei).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_market"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None

WEI = sa.Numeric(78, 0)


def upgrade() -> None:
    op.create_table(
        "providers",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("cpus", sa.Integer(), nullable=False),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("gpu_model", sa.String(64), nullable=True),
        sa.Column("price_per_cpu_s_wei", WEI, nullable=False),
        sa.Column("price_per_gpu_s_wei", WEI, nullable=False),
        sa.Column("speed", sa.Double(), nullable=False),
        sa.Column("reputation", sa.Double(), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("registered_at", sa.Double(), nullable=False),
        sa.Column("hardware", sa.JSON(), nullable=False),
        sa.CheckConstraint("cpus >= 0", name=op.f("ck_providers_cpus_nonnegative")),
        sa.CheckConstraint("gpus >= 0", name=op.f("ck_providers_gpus_nonnegative")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_providers")),
    )
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(80), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("input_hash", sa.String(66), nullable=False),
        sa.Column("max_price_wei", WEI, nullable=False),
        sa.Column("collateral_wei", WEI, nullable=False),
        sa.Column("deadline_s", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("cleared_price_wei", WEI, nullable=True),
        sa.Column("round_id", sa.String(80), nullable=True),
        sa.Column("result_path", sa.String(1024), nullable=True),
        sa.Column("result_hash", sa.String(66), nullable=True),
        sa.Column("attestation", sa.JSON(), nullable=True),
        sa.Column("batch_id", sa.String(80), nullable=True),
        sa.Column("settle_tx", sa.String(66), nullable=True),
        sa.Column("error", sa.String(2000), nullable=True),
        sa.CheckConstraint("max_price_wei > 0", name=op.f("ck_jobs_max_price_positive")),
        sa.CheckConstraint("attempt >= 1", name=op.f("ck_jobs_attempt_positive")),
        sa.CheckConstraint(
            "status in ('open','assigned','running','verified','paid','settled','failed','cancelled')",
            name=op.f("ck_jobs_status_known"),
        ),
        sa.ForeignKeyConstraint(["provider"], ["providers.name"], name=op.f("fk_jobs_provider_providers")),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_status"), "jobs", ["status"], unique=False)
    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(80), nullable=False),
        sa.Column("at_s", sa.Double(), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"], name=op.f("fk_job_events_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_events")),
    )
    op.create_index(op.f("ix_job_events_job_id"), "job_events", ["job_id"], unique=False)
    op.create_table(
        "rounds",
        sa.Column("round_id", sa.String(80), nullable=False),
        sa.Column("at_s", sa.Double(), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("input_hash", sa.String(66), nullable=False),
        sa.Column("output_hash", sa.String(66), nullable=False),
        sa.Column("n_jobs", sa.Integer(), nullable=False),
        sa.Column("n_offers", sa.Integer(), nullable=False),
        sa.Column("n_matched", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("round_id", name=op.f("pk_rounds")),
    )
    op.create_index("ix_rounds_at_s", "rounds", ["at_s"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_rounds_at_s", table_name="rounds")
    op.drop_table("rounds")
    op.drop_index(op.f("ix_job_events_job_id"), table_name="job_events")
    op.drop_table("job_events")
    op.drop_index(op.f("ix_jobs_status"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_table("providers")
