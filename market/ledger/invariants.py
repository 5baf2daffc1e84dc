"""The ledger's invariants, checked by replaying the journal (:func:`check_invariants`)."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from market.db.base import wei_sum
from market.ledger.accounts import WORLD_ACCOUNT, slashing_account, unbonding_account
from market.ledger.models import PendingSlash, PendingTransfer, Transfer, UnbondRequest


def check_invariants(s: Session) -> list[str]:
    """Check the ledger's invariants; returns one line per violation (empty when all hold).

    Checked: the sum of all balances is zero (so the non-world accounts hold exactly the net
    external deposits: deposits - withdrawals from the journal); no negative balance on an
    account not allowed one; every balance equals the replay of the journal; every holding
    account equals what its open reservations / unbonds / slashes say; every journal row
    belongs to a recorded operation. Sums are exact on both backends (:func:`market.db.base.wei_sum`).

    All reads come from one snapshot (:func:`_one_snapshot`), so a check run beside a live exchange never sees
    half of another transaction (an account read before a lock that commits before its reservation is read).
    """
    _one_snapshot(s)
    out: list[str] = []
    accts = {r[0]: (int(r[1]), bool(r[2]), r[3]) for r in
             s.execute(text("SELECT id, balance_wei, allow_negative, kind FROM ledger_accounts")).all()}
    replay: dict[str, int] = {}
    for debit, credit, amount in s.execute(
            select(Transfer.debit_account_id, Transfer.credit_account_id, wei_sum(Transfer.amount_wei))
            .group_by(Transfer.debit_account_id, Transfer.credit_account_id)).all():
        replay[debit] = replay.get(debit, 0) - int(amount)
        replay[credit] = replay.get(credit, 0) + int(amount)
    total = sum(b for b, _, _ in accts.values())
    if total != 0:
        out.append(f"sum of all balances is {total} wei, expected 0")
    world = accts.get(WORLD_ACCOUNT, (0, True, "world"))[0]
    inside = sum(b for i, (b, _, _) in accts.items() if i != WORLD_ACCOUNT)
    net_deposits = -replay.get(WORLD_ACCOUNT, 0)
    if inside != net_deposits:
        out.append(f"accounts hold {inside} wei but net external deposits are {net_deposits} wei (world {world})")
    for account_id, (bal, neg, _) in sorted(accts.items()):
        if bal < 0 and not neg:
            out.append(f"{account_id}: negative balance {bal} wei")
        if bal != replay.get(account_id, 0):
            out.append(f"{account_id}: balance {bal} wei != journal replay {replay.get(account_id, 0)} wei")
    for account_id in sorted(set(replay) - set(accts)):
        out.append(f"{account_id}: in the journal but not an account")
    out.extend(_check_holdings(s, accts))
    orphans = s.execute(text("SELECT count(*) FROM ledger_transfers t LEFT JOIN ledger_operations o "
                             "ON o.id = t.op_id WHERE o.id IS NULL")).scalar_one()
    if orphans:
        out.append(f"{orphans} journal rows without an operation")
    return out


def _one_snapshot(s: Session) -> None:
    """Make the reads that follow on ``s`` one consistent snapshot of the database, where the session allows it.

    SQLite (pysqlite) opens no transaction before a ``SELECT``, so each statement would read the newest commit;
    an explicit ``BEGIN`` makes the first read fix a WAL snapshot for the rest. Postgres runs ``READ COMMITTED``
    (a snapshot per statement); a session that has not begun yet is opened ``REPEATABLE READ`` (one snapshot per
    transaction). A session already inside a transaction keeps that transaction's isolation: its own
    uncommitted writes stay visible to the check.
    """
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        if not s.in_transaction():
            s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    elif dialect == "sqlite":
        conn = s.connection()
        raw = conn.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            conn.exec_driver_sql("BEGIN")


def _check_holdings(s: Session, accts: dict[str, tuple[int, bool, str]]) -> list[str]:
    """Holding accounts (escrow/collateral/unbonding/slashing) equal the open records they back."""
    expected: dict[str, int] = {}
    for credit, remaining in s.execute(select(PendingTransfer.credit_account_id, wei_sum(PendingTransfer.remaining_wei))
                                       .where(PendingTransfer.status == "pending")
                                       .group_by(PendingTransfer.credit_account_id)).all():
        expected[credit] = int(remaining)
    for model, account in ((UnbondRequest, unbonding_account), (PendingSlash, slashing_account)):
        for provider, amount in s.execute(select(model.provider, wei_sum(model.amount_wei))
                                          .where(model.status == "pending").group_by(model.provider)).all():
            expected[account(provider)] = int(amount)
    out = []
    for account_id, (bal, _, kind) in sorted(accts.items()):
        if kind in ("escrow", "collateral", "unbonding", "slashing") and bal != expected.get(account_id, 0):
            out.append(f"{account_id}: holds {bal} wei but its open records say {expected.get(account_id, 0)} wei")
    return out
