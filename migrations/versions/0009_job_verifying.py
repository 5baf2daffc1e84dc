"""Jobs may be ``verifying`` (issue 14 finding 2): an attested inference result waits for its spot re-execution.

Revision ID: 0009_job_verifying
Revises: 0008_wei_text
Create Date: 2026-12-02

Widens the CHECK ``ck_jobs_status_known`` by the one new status. Postgres: drop and re-create the constraint.
SQLite (CHECKs cannot be altered): the ``jobs`` table is rebuilt in alembic batch mode with foreign keys
switched off (effective outside a transaction only; when they cannot be switched off and rows reference
``jobs``, the migration refuses with a message instead of failing half-way, as ``0008_wei_text`` does).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_job_verifying"
down_revision = "0008_wei_text"
branch_labels = None
depends_on = None

OLD = "status in ('open','assigned','running','verified','paid','settled','failed','cancelled')"
NEW = "status in ('open','assigned','running','verifying','verified','paid','settled','failed','cancelled')"
NAME = "ck_jobs_status_known"


def _swap(check_sql: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f(NAME), "jobs", type_="check")
        op.create_check_constraint(op.f(NAME), "jobs", check_sql)
        return
    fk_was_on = bool(bind.exec_driver_sql("PRAGMA foreign_keys").scalar())
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if bool(bind.exec_driver_sql("PRAGMA foreign_keys").scalar()):
        for table in sa.inspect(bind).get_table_names():
            refs = [fk for fk in sa.inspect(bind).get_foreign_keys(table) if fk["referred_table"] == "jobs"]
            if refs and bind.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar():
                raise RuntimeError(f"0009_job_verifying: {table} references jobs and SQLite foreign keys cannot be "
                                   "switched off inside this transaction; run the upgrade on its own")
    with op.batch_alter_table("jobs", recreate="always") as batch:
        batch.drop_constraint(op.f(NAME), type_="check")
        batch.create_check_constraint(op.f(NAME), check_sql)
    problems = bind.exec_driver_sql("PRAGMA foreign_key_check").all()
    if problems:
        raise RuntimeError(f"0009_job_verifying: foreign key violations after the rebuild: {problems[:5]}")
    if fk_was_on:
        bind.exec_driver_sql("PRAGMA foreign_keys=ON")


def upgrade() -> None:
    _swap(NEW)


def downgrade() -> None:
    if op.get_bind().exec_driver_sql("SELECT count(*) FROM jobs WHERE status = 'verifying'").scalar():
        raise RuntimeError("0009_job_verifying: jobs are verifying; let them finish before downgrading")
    _swap(OLD)
