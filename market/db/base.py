"""Database edge: the declarative base, shared column types and engine creation.

Every table of raymarket (ledger, market, settlement) derives from :class:`Base`, so
one ``MetaData`` with one constraint naming convention covers them all and alembic
autogenerate / ``alembic check`` sees the whole schema.

Money (:class:`WeiType`, ``Mapped[Wei]``) keeps the full signed 256-bit range on both backends and
never goes through a float: ``NUMERIC(78, 0)`` on Postgres, exact canonical decimal text
(``VARCHAR(79)``) on SQLite, a Python ``int`` on the Python side. SQL that adds, sums, orders or
compares wei columns must be dialect-correct (text compares as text on SQLite): use
:func:`wei_sum` / the SQLite function ``wei_add`` registered on every SQLite connection, or read the
rows and compute with Python ints.
"""

from __future__ import annotations

import os
import sqlite3
from decimal import Decimal
from typing import Annotated, Any

from sqlalchemy import MetaData, Numeric, String, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, mapped_column
from sqlalchemy.sql.base import SchemaEventTarget
from sqlalchemy.sql.functions import FunctionElement
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


#: Largest wei amount a wei column holds (uint256); the smallest is ``-MAX_WEI`` (signed: flagged debts).
MAX_WEI = 2**256 - 1


class WeiType(TypeDecorator[int], SchemaEventTarget):
    """An integer amount of wei: ``NUMERIC(78, 0)`` on Postgres, exact decimal text on SQLite; ``int`` in Python.

    Range: ``-MAX_WEI .. MAX_WEI`` (``MAX_WEI = 2**256 - 1``) on both backends, so SQLite and Postgres
    hold and return the same values. On SQLite the value is stored as canonical signed decimal text
    (``str(int)``: no leading zeros, ``-`` for negatives) in a ``VARCHAR(79)`` column (TEXT affinity; a
    NUMERIC column would turn integers above 2^63 into 15-digit floats). Text compares as text, so on
    SQLite only comparisons against ``0`` are meaningful in SQL (``'-5' < '0' <= '7'``); for sums use
    :func:`wei_sum`, for additions the ``wei_add(a, b)`` SQL function (registered on every SQLite
    connection, see :func:`register_sqlite_functions`), else compute with Python ints.

    Args:
        field: the name used in error messages; defaults to the column's ``table.column``.

    Raises:
        TypeError: when bound a float, a bool or a fractional Decimal (money never goes through floats).
        ValueError: an amount outside ``-MAX_WEI .. MAX_WEI``, naming the field and the value.
    """

    impl = Numeric(78, 0)
    cache_ok = True

    def __init__(self, field: str | None = None) -> None:
        super().__init__()
        self.field = field
        self._column: Any = None

    def _set_parent(self, parent: Any, **kw: Any) -> None:  # SchemaEventTarget: the column this type sits on
        self._column = parent

    def _name(self) -> str:
        if self.field:
            return self.field
        col = self._column
        if col is None or col.name is None:
            return "wei amount"
        table = getattr(col, "table", None)
        return f"{table.name}.{col.name}" if table is not None and hasattr(table, "name") else col.name

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(String(79) if dialect.name == "sqlite" else Numeric(78, 0))

    def process_bind_param(self, value: Any, dialect: Any) -> Decimal | str | None:
        if value is None:
            return None
        if type(value) is not int:
            if isinstance(value, (bool, float)) or (isinstance(value, Decimal) and value != value.to_integral_value()):
                raise TypeError(f"{self._name()}: wei amounts must be int, got {type(value).__name__} {value!r}")
            value = int(value)  # an int subclass, an integral Decimal (a NUMERIC read back), a decimal str
        if not -MAX_WEI <= value <= MAX_WEI:
            raise ValueError(f"{self._name()}: {value} wei is outside the wei range -(2**256 - 1) .. 2**256 - 1")
        return str(value) if dialect.name == "sqlite" else Decimal(value)

    def process_result_value(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError(f"{self._name()}: a float in a wei column ({value!r}): migrate the database "
                            "(raymarket db upgrade)")
        return int(value)


def _wei_add(a: Any, b: Any) -> str | None:
    """SQLite ``wei_add(a, b)``: exact sum of two wei values (decimal text or integers) as decimal text."""
    if a is None or b is None:
        return None
    if isinstance(a, float) or isinstance(b, float):
        raise TypeError("wei_add: a float is not a wei amount")
    total = int(a) + int(b)
    if not -MAX_WEI <= total <= MAX_WEI:
        raise ValueError(f"wei_add: {total} wei is outside the wei range")
    return str(total)


class _WeiSum:
    """SQLite aggregate ``wei_sum(x)``: exact sum of wei values as decimal text (NULL over no non-NULL row)."""

    def __init__(self) -> None:
        self.total: int | None = None

    def step(self, value: Any) -> None:
        if value is not None:
            if isinstance(value, float):
                raise TypeError("wei_sum: a float is not a wei amount")
            self.total = (self.total or 0) + int(value)

    def finalize(self) -> str | None:
        return None if self.total is None else str(self.total)


def register_sqlite_functions(dbapi_conn: sqlite3.Connection) -> None:
    """Register ``wei_add(a, b)`` (deterministic, so CHECK constraints may use it) and the aggregate
    ``wei_sum(x)`` on a sqlite3 connection. Done for every SQLite connection of every engine in this
    process (a listener on :class:`~sqlalchemy.engine.Engine`)."""
    dbapi_conn.create_function("wei_add", 2, _wei_add, deterministic=True)
    dbapi_conn.create_aggregate("wei_sum", 1, _WeiSum)  # type: ignore[arg-type]


@event.listens_for(Engine, "connect")
def _on_connect(dbapi_conn: Any, _record: Any) -> None:
    if isinstance(dbapi_conn, sqlite3.Connection):
        register_sqlite_functions(dbapi_conn)


class wei_sum(FunctionElement[int]):  # noqa: N801 (a SQL function, named as SQL names it)
    """``wei_sum(column)``: the exact sum of a wei column as an ``int`` (``sum`` on Postgres, the registered
    ``wei_sum`` aggregate on SQLite, where ``sum`` over text would go through floats). ``None`` over no row."""

    type = WeiType(field="wei_sum")
    inherit_cache = True
    name = "wei_sum"


@compiles(wei_sum)
def _wei_sum_default(element: Any, compiler: Any, **kw: Any) -> str:
    return f"sum({compiler.process(element.clauses, **kw)})"


@compiles(wei_sum, "sqlite")
def _wei_sum_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"wei_sum({compiler.process(element.clauses, **kw)})"


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
    watcher and the exchange loop can share the file, and ``secure_delete`` (deleted content is zeroed: a
    client's witness is gone from the file once its job is done); Postgres gets ``pool_pre_ping``.
    """
    url = resolve_database_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA secure_delete=ON")  # deleted rows (a client's witness) are overwritten, not left
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)
