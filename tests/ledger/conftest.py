"""Fixtures of the ledger tests: migrated databases (Postgres from ``pg_url``, SQLite in tmp_path)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from market import ledger as L
from market.db import migrate
from market.db.base import make_engine

#: The revision the ledger tests run at: the latest (0001_ledger creates the ledger's schema, 0008_wei_text
#: makes its SQLite wei columns exact decimal text).
LEDGER_REVISION = "head"


def migrated_engine(url: str) -> Engine:
    """Upgrade ``url`` to the ledger revision and return an engine on it."""
    migrate.upgrade(url, LEDGER_REVISION)
    return make_engine(url)


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """A fresh Postgres database migrated to the ledger revision."""
    engine = migrated_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:
    """A fresh SQLite file migrated to the ledger revision."""
    engine = migrated_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["postgres", "sqlite"])
def engine(request) -> Engine:
    """The same test on Postgres and on SQLite (behaviour shared by both)."""
    return request.getfixturevalue("pg_engine" if request.param == "postgres" else "sqlite_engine")


@pytest.fixture
def tx(engine: Engine) -> Callable[[], Session]:
    """``with tx() as s:`` runs a block in one committed transaction (rolled back on error)."""
    from contextlib import contextmanager

    @contextmanager
    def _tx() -> Iterator[Session]:
        with Session(engine) as s, s.begin():
            yield s

    return _tx


def funded(s: Session, *, clients: dict[str, int] = {}, providers: dict[str, int] = {},  # noqa: B006
           bonds: dict[str, int] = {}) -> None:  # noqa: B006
    """Open and fund clients/providers (deposit ids ``fund:<name>``), and bond ``bonds``."""
    for name, amount in clients.items():
        L.open_client(s, name)
        if amount:
            L.deposit(s, f"fund:{name}", L.client_account(name), amount)
    for name, amount in providers.items():
        L.open_provider(s, name)
        if amount:
            L.deposit(s, f"fund:{name}", L.provider_account(name), amount)
    for name, amount in bonds.items():
        L.bond(s, f"bond:{name}", name, amount)
