"""Settlement leaves carry the verification policy their provider signed (issue 13: the policy is in the attestation).

Revision ID: 0011_leaf_policy
Revises: 0010_proof_batches
Create Date: 2026-12-02

Adds ``settlement_leaves.verification`` (SMALLINT, 0 proof / 1 spot-check / 2 attest-only) and
``settlement_leaves.sample_rate_ppm`` (BIGINT, the spot-check rate in parts per million, else 0), both NOT NULL
with server default 0, and their CHECKs. Rows from before (signed under the struct without these fields) keep 0
/ 0; such a leaf no longer hashes as it was signed, so a database with unsettled pre-policy leaves must settle
them on the old contract before upgrading (a dev data dir is simply recreated). SQLite: the table is rebuilt in
alembic batch mode (nothing references ``settlement_leaves``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_leaf_policy"
down_revision = "0010_proof_batches"
branch_labels = None
depends_on = None

TABLE = "settlement_leaves"
CHECKS = {"ck_settlement_leaves_verification_known": "verification IN (0, 1, 2)",
          "ck_settlement_leaves_sample_rate_ppm_range": "sample_rate_ppm >= 0 AND sample_rate_ppm <= 1000000"}


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("verification", sa.SmallInteger(), server_default="0", nullable=False))
        batch.add_column(sa.Column("sample_rate_ppm", sa.BigInteger(), server_default="0", nullable=False))
        for name, sql in CHECKS.items():
            batch.create_check_constraint(op.f(name), sql)


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        for name in CHECKS:
            batch.drop_constraint(op.f(name), type_="check")
        batch.drop_column("sample_rate_ppm")
        batch.drop_column("verification")
