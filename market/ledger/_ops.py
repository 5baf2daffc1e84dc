"""The ledger's write path, shared by every operation: context, account locks, idempotency, simulation, writes.

Each operation (1) locks the side rows it resolves, (2) locks all accounts it touches with one
``SELECT ... ORDER BY id FOR UPDATE`` (:func:`lock_accounts`), (3) checks idempotency (:func:`replay`),
(4) validates everything (:func:`simulate` applies the journal legs to the locked balances in memory),
and only then (5) writes through :func:`commit`, the one commit helper (side rows, then operation
rows with their input digests, journal legs and balance deltas: one statement on Postgres). So a
raised :class:`LedgerError` leaves the transaction unchanged by the failed operation.

Internal to :mod:`market.ledger` (the facade re-exports none of it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from market.db.base import MAX_WEI, WeiType
from market.ledger._checks import SEP
from market.ledger.accounts import SYSTEM_ACCOUNTS, open_system_accounts
from market.ledger.errors import IdempotencyConflict, InsufficientFunds, InvalidAmount, InvalidArgument, UnknownAccount



@dataclass
class Acct:
    balance: int
    allow_negative: bool


@dataclass(frozen=True)
class Leg:
    op_id: str
    leg: int
    debit: str
    credit: str
    amount: int
    kind: str
    job_id: str | None = None


@dataclass
class Ctx:
    """Per-call context: the session and whether it talks to Postgres."""

    s: Session
    pg: bool


def ctx(s: Session) -> Ctx:
    return Ctx(s, s.get_bind().dialect.name == "postgresql")


def max_wei(c: Ctx) -> int:
    """The largest balance or amount, the same on both backends: :data:`market.db.base.MAX_WEI` (2**256 - 1)."""
    return MAX_WEI


def check_amount(c: Ctx, name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidAmount(name, value)
    if value > MAX_WEI:
        raise InvalidArgument(name, value, "at most 2**256 - 1 wei (uint256)")
    return value


def wei_params(stmt: TextClause, *names: str) -> TextClause:
    """``stmt`` with its parameters ``names`` typed as :class:`~market.db.base.WeiType` (decimal text on SQLite,
    whose driver cannot bind ints above 2**63 - 1; ``NUMERIC`` on Postgres)."""
    return stmt.bindparams(*(bindparam(n, type_=WeiType(field=n)) for n in names))


_OP_GET = text("SELECT kind, inputs_sha256, result_json FROM ledger_operations WHERE id = :id")


def replay(c: Ctx, op_id: str, kind: str, digest: str) -> dict | None:
    """The stored result of ``op_id`` if it was already applied with the same inputs, else None.

    Raises:
        IdempotencyConflict: the id was used with other inputs or by another kind of operation.
    """
    row = c.s.execute(_OP_GET, {"id": op_id}).first()
    if row is None:
        return None
    if row[0] != kind or row[1] != digest:
        raise IdempotencyConflict(op_id, row[0], kind)
    return json.loads(row[2]) if row[2] else {}


_LOCK_PG = text("SELECT id, balance_wei, allow_negative FROM ledger_accounts "
                "WHERE id = ANY(string_to_array(:ids, chr(31))) ORDER BY id FOR UPDATE")
_LOCK_LITE = text("SELECT id, balance_wei, allow_negative FROM ledger_accounts WHERE id IN :ids ORDER BY id"
                  ).bindparams(bindparam("ids", expanding=True))


def lock_accounts(c: Ctx, ids: Iterable[str | None]) -> dict[str, Acct]:
    """Lock the existing accounts among ``ids`` in id order; returns id -> balance/allow_negative.

    Missing system accounts (a database made with ``create_all`` instead of the migration) are
    opened first.
    """
    wanted = sorted({i for i in ids if i is not None})
    rows = c.s.execute(_LOCK_PG, {"ids": SEP.join(wanted)}).all() if c.pg else \
        c.s.execute(_LOCK_LITE, {"ids": wanted}).all()
    got = {r[0]: Acct(int(r[1]), bool(r[2])) for r in rows}
    missing = [i for i in wanted if i not in got and i in SYSTEM_ACCOUNTS]
    if missing:
        open_system_accounts(c.s)
        rows = c.s.execute(_LOCK_PG, {"ids": SEP.join(missing)}).all() if c.pg else \
            c.s.execute(_LOCK_LITE, {"ids": missing}).all()
        got.update({r[0]: Acct(int(r[1]), bool(r[2])) for r in rows})
    return got


def require(accts: dict[str, Acct], *ids: str | None) -> None:
    for account_id in ids:
        if account_id is not None and account_id not in accts:
            raise UnknownAccount(account_id)


def simulate(c: Ctx, accts: dict[str, Acct], legs: Sequence[Leg]) -> dict[str, int]:
    """Apply ``legs`` in order to the locked balances (in memory); returns the net delta per account.

    Raises:
        UnknownAccount, InsufficientFunds, InvalidArgument: nothing is written in any case
        (``accts`` is updated only when every leg passes).
    """
    deltas: dict[str, int] = {}
    limit = max_wei(c)
    for leg in legs:
        require(accts, leg.debit, leg.credit)
        debit = accts[leg.debit].balance + deltas.get(leg.debit, 0)
        if debit < leg.amount and not accts[leg.debit].allow_negative:
            raise InsufficientFunds(leg.debit, leg.amount, debit, leg.op_id)
        deltas[leg.debit] = deltas.get(leg.debit, 0) - leg.amount
        deltas[leg.credit] = deltas.get(leg.credit, 0) + leg.amount
        if accts[leg.credit].balance + deltas[leg.credit] > limit:
            raise InvalidArgument("amount_wei", leg.amount, f"{leg.credit!r} would exceed {limit} wei")
        if accts[leg.debit].balance + deltas[leg.debit] < -limit:
            raise InvalidArgument("amount_wei", leg.amount, f"{leg.debit!r} would go below -{limit} wei")
    for account_id, delta in deltas.items():
        accts[account_id].balance += delta
    return deltas


# Postgres: arrays travel as one text each (elements joined by \x1f, '' = NULL) and are split
# server-side by string_to_array: much cheaper to send than per-element array parameters.
_INSERT_OPS_PG = text(
    "INSERT INTO ledger_operations (id, kind, inputs_sha256, result_json) "
    "SELECT * FROM unnest(string_to_array(:ids, chr(31)), string_to_array(:kinds, chr(31)), "
    "string_to_array(:digests, chr(31)), string_to_array(:results, chr(31), ''))")
_INSERT_OPS_LITE = text("INSERT INTO ledger_operations (id, kind, inputs_sha256, result_json) "
                        "VALUES (:id, :kind, :digest, :result)")
_INSERT_LEGS_PG = text(
    "INSERT INTO ledger_transfers (op_id, leg, debit_account_id, credit_account_id, amount_wei, kind, job_id) "
    "SELECT * FROM unnest(string_to_array(:op_ids, chr(31)), CAST(string_to_array(:legs, ',') AS smallint[]), "
    "string_to_array(:debits, chr(31)), string_to_array(:credits, chr(31)), "
    "CAST(string_to_array(:amounts, ',') AS numeric[]), string_to_array(:leg_kinds, chr(31)), "
    "string_to_array(:job_ids, chr(31), ''))")
_INSERT_LEGS_LITE = text(
    "INSERT INTO ledger_transfers (op_id, leg, debit_account_id, credit_account_id, amount_wei, kind, job_id) "
    "VALUES (:op_id, :leg, :debit, :credit, :amount, :kind, :job_id)")
_UPDATE_PG = text(
    "UPDATE ledger_accounts AS a SET balance_wei = a.balance_wei + d.delta "
    "FROM unnest(string_to_array(:acct_ids, chr(31)), CAST(string_to_array(:deltas, ',') AS numeric[])) "
    "AS d(id, delta) "
    "WHERE a.id = d.id")
_WRITES_PG: dict[tuple[bool, bool, bool], Any] = {}


def _write_pg(ops: bool, legs: bool, deltas: bool):
    """One statement writing operations, journal legs and balance deltas (data-modifying CTEs: one round trip)."""
    key = (ops, legs, deltas)
    if key not in _WRITES_PG:
        parts = [str(stmt) for flag, stmt in ((ops, _INSERT_OPS_PG), (legs, _INSERT_LEGS_PG), (deltas, _UPDATE_PG))
                 if flag]
        ctes = ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(parts[:-1]))
        _WRITES_PG[key] = text((f"WITH {ctes} " if ctes else "") + parts[-1])
    return _WRITES_PG[key]


# SQLite: balances are decimal text; wei_add (market.db.base, registered on every SQLite connection) adds them
# exactly in Python ints, atomically within the statement as ``+`` does on Postgres.
_UPDATE_LITE = text("UPDATE ledger_accounts SET balance_wei = wei_add(balance_wei, :delta) WHERE id = :id")


#: One ``ledger_operations`` row: (operation id, kind, SHA-256 of the canonical inputs, JSON result or None).
OpRow = tuple[str, str, str, str | None]
#: A side-table write run with the operation: (statement, parameters or a list of them).
SideWrite = tuple[Any, Any]


def op_row(op_id: str, kind: str, digest: str, result: Any = None) -> OpRow:
    """The idempotency row of one operation: ``result`` (a dataclass, or None) is stored as JSON for replays."""
    return (op_id, kind, digest, None if result is None else json.dumps(asdict(result)))


def legs_of(op_id: str, moves: Iterable[tuple[str, str, int, str]], job_id: str | None = None) -> list[Leg]:
    """Journal legs of one operation from (debit, credit, amount, kind) moves; zero amounts are dropped."""
    out = [m for m in moves if m[2] > 0]
    return [Leg(op_id, i, d, cr, a, k, job_id) for i, (d, cr, a, k) in enumerate(out)]


def commit(c: Ctx, accts: dict[str, Acct], legs: Sequence[Leg], ops: Sequence[OpRow],
           writes: Sequence[SideWrite] = ()) -> None:
    """The write step of every ledger operation (the one place money is written).

    In order: validate ``legs`` against the locked balances ``accts`` (:func:`simulate`: nothing is
    written when a leg fails), run the side-table ``writes`` (reservation / unbond / slash rows), then
    write the operation rows ``ops`` (id + input digest + result: what makes a retry replay), the
    journal ``legs`` and the net balance deltas (:func:`_flush`: one statement on Postgres).

    Raises:
        UnknownAccount, InsufficientFunds, InvalidArgument: from :func:`simulate`, before any write.
    """
    deltas = simulate(c, accts, legs)
    for stmt, params in writes:
        c.s.execute(stmt, params)
    _flush(c, ops, legs, deltas)


def _flush(c: Ctx, ops: Sequence[OpRow], legs: Sequence[Leg], deltas: dict[str, int]) -> None:
    """Write operations, their journal legs and the balance deltas (3 statements, one round trip on Postgres)."""
    s = c.s
    deltas = {k: v for k, v in deltas.items() if v}
    if c.pg:
        j, params = SEP.join, {}
        if ops:
            params.update(ids=j([o[0] for o in ops]), kinds=j([o[1] for o in ops]),
                          digests=j([o[2] for o in ops]), results=j([o[3] or "" for o in ops]))
        if legs:
            params.update(op_ids=j([g.op_id for g in legs]), legs=",".join([str(g.leg) for g in legs]),
                          debits=j([g.debit for g in legs]), credits=j([g.credit for g in legs]),
                          amounts=",".join([str(g.amount) for g in legs]), leg_kinds=j([g.kind for g in legs]),
                          job_ids=j([g.job_id or "" for g in legs]))
        if deltas:
            ids = sorted(deltas)
            params.update(acct_ids=j(ids), deltas=",".join([str(deltas[i]) for i in ids]))
        if params:
            s.execute(_write_pg(bool(ops), bool(legs), bool(deltas)), params)
    else:
        if ops:
            s.execute(_INSERT_OPS_LITE, [{"id": o[0], "kind": o[1], "digest": o[2], "result": o[3]} for o in ops])
        if legs:
            s.execute(_INSERT_LEGS_LITE, [{"op_id": g.op_id, "leg": g.leg, "debit": g.debit, "credit": g.credit,
                                           "amount": str(g.amount), "kind": g.kind, "job_id": g.job_id} for g in legs])
        if deltas:
            s.execute(_UPDATE_LITE, [{"id": i, "delta": str(deltas[i])} for i in sorted(deltas)])
