"""Wei columns as exact decimal text on SQLite (issue 12): the full signed 256-bit range on both backends.

Revision ID: 0008_wei_text
Revises: 0007_circuit_artifacts
Create Date: 2026-12-02

On SQLite a ``NUMERIC(78, 0)`` column has NUMERIC affinity, which turns any integer above 2**63 - 1
into a 15-digit float, so wei amounts were capped at 2**63 - 1 there. This revision rebuilds, on
SQLite only, every table with a wei column (every ``NUMERIC(78, 0)`` column) in alembic batch mode
(create a copy, copy the rows, drop, rename) with ``VARCHAR(79)`` wei columns (TEXT affinity) that
hold canonical decimal text (:class:`market.db.base.WeiType`), and gives the three CHECKs that
compare or add two wei columns their SQLite forms (``market.ledger.models.SQLITE_CHECKS``, frozen
here). Every stored amount must be an SQLite INTEGER before (anything else stops the migration
with the offending table and column: nothing is guessed) and becomes its exact decimal text
(``CAST(x AS TEXT)``). Foreign keys are switched off for the rebuild and checked after it.

A no-op on Postgres, whose ``NUMERIC(78, 0)`` is exact. The downgrade converts back to
``NUMERIC(78, 0)`` on SQLite only when every amount fits in a signed 64-bit integer (else it refuses).

New wei columns in later migrations: ``sa.Numeric(78, 0).with_variant(sa.String(79), "sqlite")``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_wei_text"
down_revision = "0007_circuit_artifacts"
branch_labels = None
depends_on = None

NUMERIC_WEI = sa.Numeric(78, 0)
TEXT_WEI = sa.String(79)

#: (table, constraint) -> (NUMERIC form, SQLite text form); frozen copy of market.ledger.models.SQLITE_CHECKS.
CHECKS = {
    ("ledger_pendings", "remaining_in_range"): (
        "remaining_wei >= 0 AND remaining_wei <= amount_wei",
        "remaining_wei >= 0 AND (length(remaining_wei) < length(amount_wei) OR "
        "(length(remaining_wei) = length(amount_wei) AND remaining_wei <= amount_wei))"),
    ("ledger_slashes", "sources_sum"): ("from_collateral_wei + from_bond_wei = amount_wei",
                                       "wei_add(from_collateral_wei, from_bond_wei) = amount_wei"),
    ("ledger_slashes", "split_sum"): ("burn_wei + rescuer_wei + client_wei = amount_wei",
                                     "wei_add(wei_add(burn_wei, rescuer_wei), client_wei) = amount_wei"),
}


def _wei_columns(numeric: bool) -> dict[str, list[tuple[str, bool]]]:
    """Table -> [(column, nullable)] of the wei columns still in the old (``numeric``) or new (text) form."""
    insp = sa.inspect(op.get_bind())
    out: dict[str, list[tuple[str, bool]]] = {}
    for table in sorted(insp.get_table_names()):
        for col in insp.get_columns(table):
            t = col["type"]
            old = isinstance(t, sa.Numeric) and t.precision == 78 and t.scale == 0
            new = isinstance(t, sa.String) and not isinstance(t, sa.Text) and t.length == 79 and col["name"].endswith("_wei")
            if old if numeric else new:
                out.setdefault(table, []).append((col["name"], bool(col["nullable"])))
    return out


def _refuse_unless(bind: sa.engine.Connection, table: str, column: str, ok_sql: str, what: str) -> None:
    bad = bind.exec_driver_sql(f'SELECT count(*), min("{column}") FROM "{table}" '
                               f'WHERE "{column}" IS NOT NULL AND NOT ({ok_sql})').one()
    if bad[0]:
        raise RuntimeError(f"0008_wei_text: {table}.{column} has {bad[0]} value(s) that are not {what} "
                           f"(e.g. {bad[1]!r}); fix them by hand, nothing was changed")


def _refuse_referenced_rows(columns: dict[str, list[tuple[str, bool]]]) -> None:
    """With foreign keys on, dropping a rebuilt parent table fails when rows reference it: refuse clearly first."""
    bind = op.get_bind()
    insp = sa.inspect(bind)
    for table in insp.get_table_names():
        for fk in insp.get_foreign_keys(table):
            if fk["referred_table"] in columns and bind.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar():
                raise RuntimeError(f"0008_wei_text: {table} references {fk['referred_table']} and SQLite foreign "
                                   "keys cannot be switched off inside this transaction; run the upgrade on its own")


def _rebuild(columns: dict[str, list[tuple[str, bool]]], to_text: bool) -> None:
    bind = op.get_bind()
    fk_was_on = bool(bind.exec_driver_sql("PRAGMA foreign_keys").scalar())
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")  # effective outside a transaction only
    if bool(bind.exec_driver_sql("PRAGMA foreign_keys").scalar()):
        _refuse_referenced_rows(columns)  # inside one (a fresh database migrated in one go): safe when empty
    old, new = (NUMERIC_WEI, TEXT_WEI) if to_text else (TEXT_WEI, NUMERIC_WEI)
    for table, cols in columns.items():
        with op.batch_alter_table(table, recreate="always") as batch:
            for column, nullable in cols:
                batch.alter_column(column, type_=new, existing_type=old, existing_nullable=nullable)
            for (t, name), (numeric_sql, text_sql) in CHECKS.items():
                if t == table:
                    batch.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
                    batch.create_check_constraint(op.f(f"ck_{table}_{name}"), text_sql if to_text else numeric_sql)
    problems = bind.exec_driver_sql("PRAGMA foreign_key_check").all()
    if problems:
        raise RuntimeError(f"0008_wei_text: foreign key violations after the rebuild: {problems[:5]}")
    if fk_was_on:
        bind.exec_driver_sql("PRAGMA foreign_keys=ON")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    columns = _wei_columns(numeric=True)
    for table, cols in columns.items():
        for column, _ in cols:
            _refuse_unless(bind, table, column, f"typeof(\"{column}\") = 'integer'", "exact integers")
    _rebuild(columns, to_text=True)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    columns = _wei_columns(numeric=False)
    for table, cols in columns.items():
        for column, _ in cols:
            _refuse_unless(bind, table, column, f"CAST(CAST(\"{column}\" AS INTEGER) AS TEXT) = \"{column}\"",
                           "signed 64-bit integers")
    _rebuild(columns, to_text=False)
