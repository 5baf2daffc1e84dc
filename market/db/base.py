"""Database edge: the declarative base, shared column types and engine creation.

Every table of raymarket (ledger, market, settlement) derives from :class:`Base`, so
one ``MetaData`` with one constraint naming convention covers them all and alembic
autogenerate / ``alembic check`` sees the whole schema.

Money is stored as ``Numeric(78, 0)``: 78 decimal digits hold any uint256 wei amount,
and integers never go through floats (SQLAlchemy returns ``Decimal``; :class:`WeiType`
converts to and from ``int``).
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Annotated, Any

from sqlalchemy import MetaData, Numeric, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, mapped_column
from sqlalchemy.types import TypeDecorator

from market.paths import default_data_dir

#: Constraint naming convention (SQLAlchemy docs, "Configuring Constraint Naming Conventions"),
#: so that migrations name every constraint deterministically on Postgres and SQLite.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Environment variable naming the database URL (used only by the CLI's settings loader).
DATABASE_URL_ENV = "RAYMARKET_DATABASE_URL"


#: Largest wei amount SQLite can hold exactly (its INTEGER is a signed 64-bit value).
SQLITE_MAX_WEI = 2**63 - 1


class WeiType(TypeDecorator[int]):
    """An integer amount of wei stored as ``NUMERIC(78, 0)``; Python side is ``int``.

    On SQLite, whose NUMERIC processors go through a float (exact only to 2^53), the value is
    bound and read as a plain 64-bit INTEGER instead, and amounts above 2^63 - 1 wei are refused
    (SQLite stores integers exactly up to there; use Postgres for larger amounts).

    Raises:
        TypeError: when bound a float or bool (money never goes through floats).
        ValueError: on SQLite, an amount outside the signed 64-bit range (use Postgres).
    """

    impl = Numeric(78, 0)
    cache_ok = True

    def bind_processor(self, dialect: Any) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: Any) -> int | None:  # no float detour through NUMERIC's SQLite processor
            return self.process_bind_param(value, dialect)

        return process

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> int | None:
            return self.process_result_value(value, dialect)

        return process

    def process_bind_param(self, value: Any, dialect: Any) -> Decimal | int | None:
        if value is None:
            return None
        if isinstance(value, float) or isinstance(value, bool):
            raise TypeError(f"wei amounts must be int, got {type(value).__name__}")
        if dialect.name == "sqlite":
            if not -SQLITE_MAX_WEI - 1 <= int(value) <= SQLITE_MAX_WEI:
                raise ValueError(f"{value} wei does not fit SQLite's 64-bit INTEGER; use Postgres (--database-url) "
                                 f"for amounts above {SQLITE_MAX_WEI} wei")
            return int(value)
        return Decimal(int(value))

    def process_result_value(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        return int(value)


#: ``Mapped[Wei]`` annotates a wei column.
Wei = Annotated[int, mapped_column(WeiType())]


class Base(DeclarativeBase):
    """Declarative base of every raymarket table (one ``MetaData``, one naming convention)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def default_sqlite_url() -> str:
    """The embedded default: a SQLite file in the data directory (``$RAYMARKET_HOME`` or the user's
    data dir: :func:`market.paths.default_data_dir`, the one resolver).

    Returns:
        ``sqlite:///<data dir>/ledger.db`` (the directory is created).
    """
    path = default_data_dir()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / 'ledger.db'}"


def resolve_database_url(url: str | None) -> str:
    """Pick the database URL: the explicit one, else ``$RAYMARKET_DATABASE_URL``, else SQLite.

    Plain ``postgresql://`` URLs are mapped to the psycopg 3 driver.
    """
    url = url or os.environ.get(DATABASE_URL_ENV) or default_sqlite_url()
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (see :func:`resolve_database_url`).

    SQLite gets foreign keys on, WAL journaling and a busy timeout so that the
    watcher and the exchange loop can share the file; Postgres gets ``pool_pre_ping``.
    """
    url = resolve_database_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)
