"""Alembic environment of raymarket.

The database URL comes from ``config.attributes["url"]`` (set by :mod:`market.db.migrate`), else the
``sqlalchemy.url`` option of ``alembic.ini``, else ``$RAYMARKET_DATABASE_URL``, else the SQLite
default (:func:`market.db.base.resolve_database_url`). ``target_metadata`` is ``market.db.base.Base.metadata``
after importing the three model modules (exchange state, ledger, settlement), so ``alembic check`` sees all tables.
"""

from __future__ import annotations

from alembic import context

import market.db.models  # noqa: F401 (registers the tables on Base.metadata)
import market.ledger.models  # noqa: F401
import market.settlement.models  # noqa: F401
import market.settlement.vault_models  # noqa: F401
from market.db.base import Base, make_engine, resolve_database_url

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return resolve_database_url(config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or None)


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade --sql``)."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=_url().startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live connection (one given in ``config.attributes["connection"]`` or a new engine)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    fk_off = sqlite and not connection.in_transaction()
    if fk_off:
        # Batch mode rebuilds a table by copy, drop, rename; with SQLite foreign keys on, the drop fails when
        # rows reference the table. The pragma only works outside a transaction: here, before alembic's.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=sqlite, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
        if sqlite and (problems := connection.exec_driver_sql("PRAGMA foreign_key_check").all()):
            raise RuntimeError(f"foreign key violations after the migrations (rolled back): {problems[:5]}")
    if fk_off:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
