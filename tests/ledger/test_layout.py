"""The ledger package's shape: one concept per module behind the facade, and one write path (``_ops.commit``)
for every operation's journal, operation and balance rows."""

from __future__ import annotations

from pathlib import Path

import market.ledger as ledger_pkg
from market import ledger

LEDGER_DIR = Path(ledger_pkg.__file__).parent
WRITES = ("INSERT INTO ledger_operations", "INSERT INTO ledger_transfers", "UPDATE ledger_accounts")


def test_only_the_commit_helper_writes_operations_journal_and_balances() -> None:
    for path in sorted(LEDGER_DIR.glob("*.py")):
        if path.name in ("_ops.py",):
            continue
        source = path.read_text()
        assert not any(w in source for w in WRITES), f"{path.name} writes money rows outside _ops.commit"
    assert all(w in (LEDGER_DIR / "_ops.py").read_text() for w in WRITES)


def test_modules_stay_small_and_the_facade_exports_what_it_lists() -> None:
    for path in LEDGER_DIR.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 330, path.name
    missing = [name for name in ledger.__all__ if not hasattr(ledger, name)]
    assert missing == []
    assert {"transfer", "post_batch", "escrow_job", "release_payment", "bond", "slash", "check_invariants",
            "LedgerError"} <= set(ledger.__all__)
