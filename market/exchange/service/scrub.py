"""After a client's secret (a witness, a circuit input) is deleted, make sure it is gone from the database's files.

On SQLite the row is deleted with ``secure_delete`` on (``market.db.base.make_engine``: the freed cells and pages
are zeroed), but in WAL mode the write-ahead log still holds the page images written while the job ran, until a
checkpoint copies the zeroed pages back and the log is reset. :func:`step` (a loop step) runs
``PRAGMA wal_checkpoint(TRUNCATE)`` once a secret was deleted (``circuits.drop_witness`` notes it), under the
service's write lock, with a short busy timeout; a checkpoint that readers kept from completing is retried on the
next tick. Postgres is not scrubbed here: a deleted row is invisible at once, and its bytes stay in the table's
pages until (auto)vacuum reuses them and in the server's WAL until it is recycled (run it on an encrypted volume).
"""

from __future__ import annotations

from market.exchange import circuits
from market.exchange.service.runtime import Runtime

#: Busy timeout of the scrub's checkpoint, milliseconds (it must not hold the write lock long).
CHECKPOINT_BUSY_MS = 2000


def step(rt: Runtime, now_s: float) -> bool:
    """Truncate the SQLite WAL when a secret was deleted since the last scrub. Returns True when it did."""
    url = str(rt.engine.url)
    if rt.engine.dialect.name != "sqlite" or not circuits.scrub_pending(url):
        return False
    with rt.write_lock, rt.engine.connect() as conn:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={CHECKPOINT_BUSY_MS}")
        try:
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()[0]
        finally:
            conn.exec_driver_sql("PRAGMA busy_timeout=30000")  # the engine's default (connect timeout 30 s)
    if busy:
        return False
    circuits.scrub_pending(url, done=True)
    return True
