"""Circuit artifacts (issue 13): the circuit's witness-calculator wasm (stored once, by sha256) and its on-chain
verifier registration (the KeyedGroth16Verifier address, the Settlement it is registered on, the tx, the last error).

Revision ID: 0007_circuit_artifacts
Revises: 0006_circuits
Create Date: 2026-12-02

Hand-written to match ``market.db.models.CircuitRecord``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_circuit_artifacts"
down_revision = "0006_circuits"
branch_labels = None
depends_on = None

COLUMNS = (
    ("wasm", sa.LargeBinary()), ("wasm_sha256", sa.String(64)), ("wasm_size_bytes", sa.BigInteger()),
    ("verifier_address", sa.String(42)), ("verifier_settlement", sa.String(42)), ("verifier_tx", sa.String(66)),
    ("verifier_error", sa.String(500)),
)


def upgrade() -> None:
    with op.batch_alter_table("circuits") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("circuits") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
