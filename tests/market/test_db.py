"""Wei columns keep every wei: exact ints on Postgres (NUMERIC(78,0)) and SQLite (decimal text), uint256 on both."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from market.db.base import MAX_WEI, make_engine
from market.db.models import JobRecord
from market.db.migrate import upgrade


def _job(job_id: str, wei: int) -> JobRecord:
    return JobRecord(job_id=job_id, client="c", kind="proof", status="open", spec={}, input_hash="0x",
                     max_price_wei=wei, collateral_wei=0, deadline_s=1.0, created_at=1.0, updated_at=1.0)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_wei_round_trips_exactly(backend, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'w.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url)
    engine = make_engine(url)
    values = [1, 2**53 + 1, 10**18 + 1, 929803702044585487, 2**63 - 1, 2**63, 2**200 + 3, MAX_WEI]  # any uint256
    with Session(engine) as s, s.begin():
        for i, v in enumerate(values):
            s.add(_job(f"j{i}", v))
    with Session(engine) as s:
        got = [s.get(JobRecord, f"j{i}").max_price_wei for i in range(len(values))]
    assert got == values and all(type(v) is int for v in got)
    engine.dispose()


def test_sqlite_refuses_beyond_uint256_and_floats_everywhere(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)
    engine = make_engine(url)
    with pytest.raises(Exception, match="outside the wei range"), Session(engine) as s, s.begin():
        s.add(_job("big", MAX_WEI + 1))
    with pytest.raises(Exception, match="must be int"), Session(engine) as s, s.begin():
        s.add(_job("float", 1.5))  # type: ignore[arg-type]
    engine.dispose()
