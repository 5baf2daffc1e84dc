"""The ledger: the only code that moves money. Double-entry, idempotent, two-phase.

Model (TigerBeetle's, realised as Formance does; see :mod:`market.ledger.models`):
  * accounts have caller-given string ids and int wei balances; only ``allow_negative``
    accounts (the external :data:`WORLD_ACCOUNT`) may go below zero;
  * every balance change is an immutable journal row (debit account, credit account, amount);
  * every operation carries a caller-given ``transfer_id``: a retry with the same id and the same
    inputs returns the original result and changes nothing; the same id with other inputs raises
    :class:`IdempotencyConflict` (a SHA-256 of the canonical inputs is stored). Time arguments
    (``now_s``) are context, not inputs: a retry at a later time replays;
  * a reservation (job escrow, per-job collateral lock, unbonding, queued slash) moves the money
    into a holding account by a journal transfer; a side row tracks what is held. Posting, voiding
    or expiring it moves the money out again, exactly once (:class:`PendingAlreadyResolved`).

Conventional accounts (one per job for escrow, so concurrent jobs never contend on one row):
``client:<c>``, ``escrow:<job>``, ``provider:<p>`` (earnings, free balance), ``bond:<p>`` (free
stake), ``collateral:<p>`` (stake locked for jobs), ``unbonding:<p>``, ``slashing:<p>`` (queued
slashes), and the system accounts :data:`WORLD_ACCOUNT`, :data:`PROTOCOL_FEE_ACCOUNT`,
:data:`BURN_ACCOUNT`.

Transactions: every function takes a SQLAlchemy ``Session`` first and runs inside the caller's
transaction (``with Session(engine) as s, s.begin(): ...``); nothing here commits. Each
operation (1) locks the side rows it resolves, (2) locks all accounts it touches with one
``SELECT ... ORDER BY id FOR UPDATE`` (READ COMMITTED + row locks in id order: no lost update,
no deadlock between ledger operations), (3) checks idempotency, (4) validates everything, and
only then (5) writes. So a raised :class:`LedgerError` leaves the transaction unchanged by the
failed operation. On SQLite ``FOR UPDATE`` is omitted (the database file lock serialises
writers) and values are limited to ``2**63 - 1`` wei (SQLite integers are 64-bit).

All amounts are Python ``int`` wei (never floats); times are float seconds (unix time).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from market.ledger.errors import (AccountKindConflict, IdempotencyConflict, InsufficientFunds, InvalidAmount,
                                  InvalidArgument, LedgerError, PendingAlreadyResolved, PendingExists,
                                  PendingNotFound, PriceExceedsEscrow, SlashAlreadyResolved, SlashExceedsBond,
                                  SlashNotFound, SlashWindowClosed, SlashWindowOpen, UnbondingNotMatured,
                                  UnknownAccount)
from market.ledger.models import ACCOUNT_KINDS, ID_LEN
from market.core.slashing import (DEFAULT_PROTOCOL_FEE_BPS, SLASH_CANCEL_WINDOW_S, UNBONDING_PERIOD_S, SlashReason,
                             protocol_fee_wei, rule_for, slash_amount_wei, split_slash)

__all__ = [
    "WORLD_ACCOUNT", "PROTOCOL_FEE_ACCOUNT", "BURN_ACCOUNT", "SYSTEM_ACCOUNTS",
    "client_account", "escrow_account", "provider_account", "bond_account", "collateral_account",
    "unbonding_account", "slashing_account",
    "TransferSpec", "Receipt", "Pending", "Settlement", "Resolution", "Unbond", "UnbondCompletion", "Slash",
    "BatchResult", "HistoryEntry", "AccountInfo",
    "open_account", "open_system_accounts", "open_client", "open_provider", "deposit", "withdraw", "transfer",
    "post_batch", "escrow_job", "release_payment", "void_escrow", "refund_job", "expire_pending",
    "bond", "request_unbond", "complete_unbond", "lock_collateral", "unlock_collateral",
    "slash", "cancel_slash", "finalize_slash",
    "balance", "balances", "account", "history", "pending_for_job", "get_slash", "unbonds", "check_invariants",
    "LedgerError",
]

#: The outside world: deposits come from it, withdrawals go to it; the only account allowed
#: to go negative (its balance is minus the net external deposits).
WORLD_ACCOUNT = "world"
#: Collects the protocol fee of every released payment.
PROTOCOL_FEE_ACCOUNT = "protocol:fees"
#: Burned slashes (money removed from circulation inside the ledger, kept for audit).
BURN_ACCOUNT = "burn"
#: id -> (kind, allow_negative) of the accounts every ledger has (seeded by migration 0001).
SYSTEM_ACCOUNTS: dict[str, tuple[str, bool]] = {
    WORLD_ACCOUNT: ("world", True),
    PROTOCOL_FEE_ACCOUNT: ("protocol", False),
    BURN_ACCOUNT: ("burn", False),
}

_MAX_WEI_PG = 10**78 - 1          # NUMERIC(78, 0)
_MAX_WEI_SQLITE = 2**63 - 1       # SQLite INTEGER


def client_account(client: str) -> str:
    """Account id of a client's free balance: ``client:<client>``."""
    return f"client:{client}"


def escrow_account(job_id: str) -> str:
    """Holding account of one job's escrowed budget: ``escrow:<job_id>``."""
    return f"escrow:{job_id}"


def provider_account(provider: str) -> str:
    """Account id of a provider's free balance (earnings, completed unbonds): ``provider:<provider>``."""
    return f"provider:{provider}"


def bond_account(provider: str) -> str:
    """A provider's free (bonded, unlocked) stake: ``bond:<provider>``."""
    return f"bond:{provider}"


def collateral_account(provider: str) -> str:
    """A provider's stake locked as per-job collateral: ``collateral:<provider>``."""
    return f"collateral:{provider}"


def unbonding_account(provider: str) -> str:
    """A provider's stake waiting out the unbonding period: ``unbonding:<provider>``."""
    return f"unbonding:{provider}"


def slashing_account(provider: str) -> str:
    """A provider's stake held by queued (not yet final) slashes: ``slashing:<provider>``."""
    return f"slashing:{provider}"


# ----------------------------------------------------------------------------------------------
# Public records


@dataclass(frozen=True)
class TransferSpec:
    """One plain transfer for :func:`post_batch` (or :func:`transfer`).

    Attributes:
        transfer_id: caller-given idempotency key (unique across all ledger operations).
        debit_account_id: the account the money leaves; credit_account_id: where it goes.
        amount_wei: int > 0.
        kind: a short label stored in the journal (<= 16 chars), e.g. ``"transfer"``.
        job_id: optional job the transfer belongs to.
    """

    transfer_id: str
    debit_account_id: str
    credit_account_id: str
    amount_wei: int
    kind: str = "transfer"
    job_id: str | None = None


@dataclass(frozen=True)
class Receipt:
    """Result of a single-transfer operation (deposit, withdraw, transfer, bond)."""

    transfer_id: str
    kind: str
    debit_account_id: str
    credit_account_id: str
    amount_wei: int


@dataclass(frozen=True)
class Pending:
    """A reservation (``kind`` = ``escrow`` or ``collateral``) and its state.

    ``pending_id`` is the transfer id that opened it; ``party`` is the client (escrow) or the
    provider (collateral); ``remaining_wei`` is still held in ``credit_account_id``.
    """

    pending_id: str
    kind: str
    job_id: str
    party: str
    debit_account_id: str
    credit_account_id: str
    amount_wei: int
    remaining_wei: int
    status: str
    expires_at_s: float | None


@dataclass(frozen=True)
class Settlement:
    """Result of :func:`release_payment`: ``provider_wei + fee_wei == price_wei``, ``price_wei + refund_wei == escrowed_wei``."""

    transfer_id: str
    job_id: str
    client: str
    provider: str
    escrowed_wei: int
    price_wei: int
    fee_wei: int
    provider_wei: int
    refund_wei: int


@dataclass(frozen=True)
class Resolution:
    """A reservation voided, unlocked or expired: ``amount_wei`` went back to ``debit_account_id``."""

    transfer_id: str
    pending_id: str
    kind: str
    job_id: str
    party: str
    amount_wei: int
    status: str


@dataclass(frozen=True)
class Unbond:
    """An unbond request: ``amount_wei`` waits in ``unbonding:<provider>`` until ``matures_at_s``."""

    unbond_id: str
    provider: str
    amount_wei: int
    requested_at_s: float
    matures_at_s: float
    status: str


@dataclass(frozen=True)
class UnbondCompletion:
    """Result of :func:`complete_unbond`: ``amount_wei`` moved to ``provider:<provider>``."""

    transfer_id: str
    provider: str
    amount_wei: int
    unbond_ids: list[str]


@dataclass(frozen=True)
class Slash:
    """A slash (see :class:`market.ledger.models.PendingSlash` for the fields' meaning)."""

    slash_id: str
    provider: str
    job_id: str
    reason: str
    lock_id: str | None
    amount_wei: int
    from_collateral_wei: int
    from_bond_wei: int
    rescuer: str | None
    client: str | None
    burn_wei: int
    rescuer_wei: int
    client_wei: int
    requested_at_s: float
    final_after_s: float
    status: str


@dataclass(frozen=True)
class BatchResult:
    """Result of :func:`post_batch`: transfers newly applied, and retried ids replayed (not re-applied)."""

    applied: int
    replayed: int


@dataclass(frozen=True)
class HistoryEntry:
    """One journal row seen from an account: ``delta_wei`` > 0 credits it, < 0 debits it."""

    seq: int
    op_id: str
    leg: int
    kind: str
    counterparty: str
    delta_wei: int
    job_id: str | None


@dataclass(frozen=True)
class AccountInfo:
    """An account's id, kind, whether it may go negative, and balance in wei."""

    account_id: str
    kind: str
    allow_negative: bool
    balance_wei: int


# ----------------------------------------------------------------------------------------------
# Internals: validation, hashing, locking, writing


@dataclass
class _Acct:
    balance: int
    allow_negative: bool


@dataclass(frozen=True)
class _Leg:
    op_id: str
    leg: int
    debit: str
    credit: str
    amount: int
    kind: str
    job_id: str | None = None


@dataclass
class _Ctx:
    """Per-call context: the session and whether it talks to Postgres."""

    s: Session
    pg: bool
    ops: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    legs: list[_Leg] = field(default_factory=list)


def _ctx(s: Session) -> _Ctx:
    return _Ctx(s, s.get_bind().dialect.name == "postgresql")


def _max_wei(c: _Ctx) -> int:
    return _MAX_WEI_PG if c.pg else _MAX_WEI_SQLITE


def _check_amount(c: _Ctx, name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidAmount(name, value)
    if value > _max_wei(c):
        raise InvalidArgument(name, value, f"at most {_max_wei(c)} wei on this database"
                                           + ("" if c.pg else " (SQLite is 64-bit; use Postgres)"))
    return value


_SEP = "\x1f"  # separates array elements sent to Postgres as one text (ids may not contain it)


def _check_id(name: str, value: Any) -> str:
    if type(value) is not str or not 0 < len(value) <= ID_LEN or _SEP in value:
        raise InvalidArgument(name, value, f"give a non-empty str of at most {ID_LEN} characters "
                                           "(no \\x1f control character)")
    return value


def _check_time(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InvalidArgument(name, value, "give seconds as an int or float (unix time)")
    return float(value)


def _digest(kind: str, *inputs: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``[kind, *inputs]``: the idempotency fingerprint."""
    blob = json.dumps([kind, *inputs], separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _transfer_digest(spec: TransferSpec) -> str:
    """Fingerprint of a plain transfer (ids cannot contain the separator, so the encoding is unambiguous)."""
    blob = _SEP.join((spec.kind, spec.debit_account_id, spec.credit_account_id, str(spec.amount_wei),
                      spec.job_id or ""))
    return hashlib.sha256(blob.encode()).hexdigest()


_OP_GET = text("SELECT kind, inputs_sha256, result_json FROM ledger_operations WHERE id = :id")


def _replay(c: _Ctx, op_id: str, kind: str, digest: str) -> dict | None:
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


def _lock(c: _Ctx, ids: Iterable[str | None]) -> dict[str, _Acct]:
    """Lock the existing accounts among ``ids`` in id order; returns id -> balance/allow_negative.

    Missing system accounts (a database made with ``create_all`` instead of the migration) are
    opened first.
    """
    wanted = sorted({i for i in ids if i is not None})
    rows = c.s.execute(_LOCK_PG, {"ids": _SEP.join(wanted)}).all() if c.pg else \
        c.s.execute(_LOCK_LITE, {"ids": wanted}).all()
    got = {r[0]: _Acct(int(r[1]), bool(r[2])) for r in rows}
    missing = [i for i in wanted if i not in got and i in SYSTEM_ACCOUNTS]
    if missing:
        open_system_accounts(c.s)
        rows = c.s.execute(_LOCK_PG, {"ids": _SEP.join(missing)}).all() if c.pg else \
            c.s.execute(_LOCK_LITE, {"ids": missing}).all()
        got.update({r[0]: _Acct(int(r[1]), bool(r[2])) for r in rows})
    return got


def _require(accts: dict[str, _Acct], *ids: str | None) -> None:
    for account_id in ids:
        if account_id is not None and account_id not in accts:
            raise UnknownAccount(account_id)


def _simulate(c: _Ctx, accts: dict[str, _Acct], legs: Sequence[_Leg]) -> dict[str, int]:
    """Apply ``legs`` in order to the locked balances (in memory); returns the net delta per account.

    Raises:
        UnknownAccount, InsufficientFunds, InvalidArgument: nothing is written in any case
        (``accts`` is updated only when every leg passes).
    """
    deltas: dict[str, int] = {}
    limit = _max_wei(c)
    for leg in legs:
        _require(accts, leg.debit, leg.credit)
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


_UPDATE_LITE = text("UPDATE ledger_accounts SET balance_wei = balance_wei + :delta WHERE id = :id")


def _op(c: _Ctx, op_id: str, kind: str, digest: str, result: Any = None) -> None:
    """Queue the idempotency row of an operation (written by :func:`_flush`)."""
    c.ops.append((op_id, kind, digest, None if result is None else json.dumps(asdict(result))))


def _flush(c: _Ctx, deltas: dict[str, int]) -> None:
    """Write the queued operations, their journal legs and the balance deltas (3 statements on Postgres)."""
    s, ops, legs = c.s, c.ops, c.legs
    deltas = {k: v for k, v in deltas.items() if v}
    if c.pg:
        j, params = _SEP.join, {}
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
                                           "amount": g.amount, "kind": g.kind, "job_id": g.job_id} for g in legs])
        if deltas:
            s.execute(_UPDATE_LITE, [{"id": i, "delta": deltas[i]} for i in sorted(deltas)])
    c.ops, c.legs = [], []


def _legs(op_id: str, moves: Iterable[tuple[str, str, int, str]], job_id: str | None = None) -> list[_Leg]:
    """Journal legs of one operation from (debit, credit, amount, kind) moves; zero amounts are dropped."""
    out = [m for m in moves if m[2] > 0]
    return [_Leg(op_id, i, d, cr, a, k, job_id) for i, (d, cr, a, k) in enumerate(out)]


def _commit_op(c: _Ctx, accts: dict[str, _Acct], op_id: str, kind: str, digest: str,
               legs: list[_Leg], result: Any) -> None:
    """Validate ``legs`` against the locked balances, then write operation, legs and balances."""
    deltas = _simulate(c, accts, legs)
    _op(c, op_id, kind, digest, result)
    c.legs.extend(legs)
    _flush(c, deltas)


# ----------------------------------------------------------------------------------------------
# Accounts


_OPEN_ACCOUNT = text("INSERT INTO ledger_accounts (id, kind, allow_negative, balance_wei) "
                     "VALUES (:id, :kind, :neg, 0) ON CONFLICT (id) DO NOTHING")
_GET_ACCOUNT = text("SELECT id, kind, allow_negative, balance_wei FROM ledger_accounts WHERE id = :id")


def open_account(s: Session, account_id: str, kind: str, *, allow_negative: bool = False) -> AccountInfo:
    """Open account ``account_id`` of ``kind`` (one of :data:`market.ledger.models.ACCOUNT_KINDS`); idempotent.

    Returns:
        the account (an existing one when it was already open with the same kind and flag).

    Raises:
        InvalidArgument: bad id or kind. AccountKindConflict: it exists with another kind or flag.
    """
    _check_id("account_id", account_id)
    if kind not in ACCOUNT_KINDS:
        raise InvalidArgument("kind", kind, f"use one of {', '.join(ACCOUNT_KINDS)}")
    s.execute(_OPEN_ACCOUNT, {"id": account_id, "kind": kind, "neg": bool(allow_negative)})
    row = s.execute(_GET_ACCOUNT, {"id": account_id}).one()
    if row[1] != kind or bool(row[2]) != bool(allow_negative):
        raise AccountKindConflict(account_id, f"{row[1]}{' (negative allowed)' if row[2] else ''}", kind)
    return AccountInfo(row[0], row[1], bool(row[2]), int(row[3]))


def open_system_accounts(s: Session) -> None:
    """Open :data:`SYSTEM_ACCOUNTS` (world, protocol fees, burn) if missing; idempotent."""
    for account_id, (kind, neg) in SYSTEM_ACCOUNTS.items():
        s.execute(_OPEN_ACCOUNT, {"id": account_id, "kind": kind, "neg": neg})


def open_client(s: Session, client: str) -> AccountInfo:
    """Open ``client:<client>``; idempotent."""
    return open_account(s, client_account(_check_id("client", client)), "client")


def open_provider(s: Session, provider: str) -> AccountInfo:
    """Open a provider's accounts (``provider:``, ``bond:``, ``collateral:``, ``unbonding:``, ``slashing:``); idempotent.

    Returns:
        the ``provider:<provider>`` account.
    """
    _check_id("provider", provider)
    for fn, kind in ((bond_account, "bond"), (collateral_account, "collateral"),
                     (unbonding_account, "unbonding"), (slashing_account, "slashing")):
        open_account(s, fn(provider), kind)
    return open_account(s, provider_account(provider), "provider")


# ----------------------------------------------------------------------------------------------
# Plain transfers


def transfer(s: Session, transfer_id: str, debit_account_id: str, credit_account_id: str, amount_wei: int,
             *, kind: str = "transfer", job_id: str | None = None) -> Receipt:
    """Move ``amount_wei`` from ``debit_account_id`` to ``credit_account_id`` (one journal row).

    Returns:
        a :class:`Receipt` (the original one when ``transfer_id`` is a retry).

    Raises:
        InvalidAmount, InvalidArgument, UnknownAccount, InsufficientFunds, IdempotencyConflict.
    """
    c = _ctx(s)
    spec = TransferSpec(transfer_id, debit_account_id, credit_account_id, amount_wei, kind, job_id)
    _check_spec(c, spec, "")
    digest = _transfer_digest(spec)
    accts = _lock(c, (debit_account_id, credit_account_id))
    if (done := _replay(c, transfer_id, kind, digest)) is not None:
        return Receipt(**done)
    receipt = Receipt(transfer_id, kind, debit_account_id, credit_account_id, amount_wei)
    legs = _legs(transfer_id, [(debit_account_id, credit_account_id, amount_wei, kind)], job_id)
    _commit_op(c, accts, transfer_id, kind, digest, legs, receipt)
    return receipt


def deposit(s: Session, transfer_id: str, account_id: str, amount_wei: int) -> Receipt:
    """Credit ``account_id`` with ``amount_wei`` coming from outside (:data:`WORLD_ACCOUNT`).

    Raises:
        InvalidAmount, UnknownAccount, IdempotencyConflict.
    """
    return transfer(s, transfer_id, WORLD_ACCOUNT, account_id, amount_wei, kind="deposit")


def withdraw(s: Session, transfer_id: str, account_id: str, amount_wei: int) -> Receipt:
    """Debit ``amount_wei`` from ``account_id`` to the outside (:data:`WORLD_ACCOUNT`).

    Raises:
        InvalidAmount, UnknownAccount, InsufficientFunds, IdempotencyConflict.
    """
    return transfer(s, transfer_id, account_id, WORLD_ACCOUNT, amount_wei, kind="withdraw")


def _fast_ok(c: _Ctx, spec: TransferSpec) -> bool:
    """The common case of :func:`_check_spec`, checked without building error messages."""
    a, d, k = spec.amount_wei, spec.debit_account_id, spec.credit_account_id
    return (type(a) is int and 0 < a <= _max_wei(c) and type(d) is str and type(k) is str and d != k
            and 0 < len(d) <= ID_LEN and 0 < len(k) <= ID_LEN and type(spec.transfer_id) is str
            and 0 < len(spec.transfer_id) <= ID_LEN and _SEP not in spec.transfer_id + d + k
            and spec.job_id is None and type(spec.kind) is str and 0 < len(spec.kind) <= 16)


def _check_spec(c: _Ctx, spec: TransferSpec, where: str) -> None:
    if _fast_ok(c, spec):
        return
    _check_id(f"{where}transfer_id", spec.transfer_id)
    _check_id(f"{where}debit_account_id", spec.debit_account_id)
    _check_id(f"{where}credit_account_id", spec.credit_account_id)
    _check_amount(c, f"{where}amount_wei", spec.amount_wei)
    if spec.debit_account_id == spec.credit_account_id:
        raise InvalidArgument(f"{where}credit_account_id", spec.credit_account_id,
                              "debit and credit accounts must differ")
    if not isinstance(spec.kind, str) or not 0 < len(spec.kind) <= 16:
        raise InvalidArgument(f"{where}kind", spec.kind, "give a label of 1 to 16 characters")
    if spec.job_id is not None:
        _check_id(f"{where}job_id", spec.job_id)


_OPS_GET_MANY_PG = text("SELECT id, kind, inputs_sha256 FROM ledger_operations "
                        "WHERE id = ANY(string_to_array(:ids, chr(31)))")
_OPS_GET_MANY_LITE = text("SELECT id, kind, inputs_sha256 FROM ledger_operations WHERE id IN :ids"
                          ).bindparams(bindparam("ids", expanding=True))


def post_batch(s: Session, transfers: Sequence[TransferSpec]) -> BatchResult:
    """Post many plain transfers atomically, in order, with a few statements (the batch API).

    All-or-nothing: every transfer is validated against the locked balances, in list order,
    before anything is written; then (Postgres) one ``INSERT ... SELECT unnest(...)`` for the
    operations, one for the journal, and one ``UPDATE ... FROM unnest(...)`` of the net balance
    change per account. Ids already applied with the same inputs (a retried batch, or a repeated
    id inside the batch) are replayed, not re-applied.

    Returns:
        :class:`BatchResult` (how many were applied now, how many were replays).

    Raises:
        InvalidAmount, InvalidArgument (``transfers[i].field`` named), UnknownAccount,
        InsufficientFunds (naming the transfer id), IdempotencyConflict.
    """
    c = _ctx(s)
    digests: dict[str, tuple[str, str]] = {}
    fresh: list[TransferSpec] = []
    for i, spec in enumerate(transfers):
        _check_spec(c, spec, f"transfers[{i}].")
        d = _transfer_digest(spec)
        if spec.transfer_id in digests:
            if digests[spec.transfer_id] != (spec.kind, d):
                raise IdempotencyConflict(spec.transfer_id, digests[spec.transfer_id][0], spec.kind)
            continue
        digests[spec.transfer_id] = (spec.kind, d)
        fresh.append(spec)
    accts = _lock(c, [x.debit_account_id for x in fresh] + [x.credit_account_id for x in fresh])
    stored = c.s.execute(_OPS_GET_MANY_PG, {"ids": _SEP.join(digests)}).all() if c.pg else \
        c.s.execute(_OPS_GET_MANY_LITE, {"ids": list(digests)}).all()
    for op_id, kind, digest in stored:
        if (kind, digest) != digests[op_id]:
            raise IdempotencyConflict(op_id, kind, digests[op_id][0])
    done = {row[0] for row in stored}
    todo = [x for x in fresh if x.transfer_id not in done]
    legs = [_Leg(x.transfer_id, 0, x.debit_account_id, x.credit_account_id, x.amount_wei, x.kind, x.job_id)
            for x in todo]
    deltas = _simulate(c, accts, legs)
    c.ops = [(x.transfer_id, x.kind, digests[x.transfer_id][1], None) for x in todo]
    c.legs = legs
    _flush(c, deltas)
    return BatchResult(applied=len(todo), replayed=len(transfers) - len(todo))


# ----------------------------------------------------------------------------------------------
# Reservations: escrow and collateral


_PENDING_COLS = ("id, kind, job_id, party, debit_account_id, credit_account_id, amount_wei, remaining_wei, "
                 "status, expires_at_s")
_PENDING_OPEN = text(f"SELECT {_PENDING_COLS} FROM ledger_pendings "
                     "WHERE job_id = :job AND kind = :kind AND party = :party AND status = 'pending'")
_PENDING_OPEN_ANY = text(f"SELECT {_PENDING_COLS} FROM ledger_pendings "
                         "WHERE job_id = :job AND kind = :kind AND status = 'pending'")
_PENDING_LAST = text(f"SELECT {_PENDING_COLS} FROM ledger_pendings WHERE job_id = :job AND kind = :kind "
                     "AND party = :party ORDER BY id DESC LIMIT 1")
_PENDING_LAST_ANY = text(f"SELECT {_PENDING_COLS} FROM ledger_pendings WHERE job_id = :job AND kind = :kind "
                         "ORDER BY id DESC LIMIT 1")
_PENDING_INSERT = text(
    "INSERT INTO ledger_pendings (id, kind, job_id, party, debit_account_id, credit_account_id, amount_wei, "
    "remaining_wei, status, expires_at_s) VALUES (:id, :kind, :job, :party, :debit, :credit, :amount, :amount, "
    "'pending', :expires)")
_PENDING_UPDATE = text("UPDATE ledger_pendings SET remaining_wei = :remaining, status = :status, "
                       "resolved_by = :by WHERE id = :id")


def _pending(row: Any) -> Pending:
    return Pending(row[0], row[1], row[2], row[3], row[4], row[5], int(row[6]), int(row[7]), row[8],
                   None if row[9] is None else float(row[9]))


def _lock_open_pending(c: _Ctx, job_id: str, kind: str, party: str | None, *,
                       for_update: bool = True) -> Pending | None:
    """The open reservation of ``kind`` for ``job_id`` (and ``party``), locked FOR UPDATE, or None."""
    stmt = _PENDING_OPEN if party is not None else _PENDING_OPEN_ANY
    sql = text(str(stmt) + (" ORDER BY id FOR UPDATE" if c.pg and for_update else " ORDER BY id"))
    params = {"job": job_id, "kind": kind} | ({} if party is None else {"party": party})
    row = c.s.execute(sql, params).first()
    return None if row is None else _pending(row)


def _not_open(c: _Ctx, job_id: str, kind: str, party: str | None) -> LedgerError:
    """The error for a missing open reservation: already resolved, or never made."""
    if party is None:
        row = c.s.execute(_PENDING_LAST_ANY, {"job": job_id, "kind": kind}).first()
    else:
        row = c.s.execute(_PENDING_LAST, {"job": job_id, "kind": kind, "party": party}).first()
    if row is not None:
        return PendingAlreadyResolved(row[0], row[8])
    who = f" of {party!r}" if party else ""
    return PendingNotFound(f"{kind}{who} for job {job_id!r}")


def _reserve(c: _Ctx, op_kind: str, transfer_id: str, kind: str, job_id: str, party: str, debit: str,
             credit: str, credit_kind: str, amount_wei: int, expires_at_s: float | None) -> Pending:
    """Open a reservation: move ``amount_wei`` from ``debit`` into holding ``credit``; idempotent."""
    digest = _digest(op_kind, job_id, party, amount_wei, expires_at_s)
    accts = _lock(c, (debit, credit))
    if (done := _replay(c, transfer_id, op_kind, digest)) is not None:
        return Pending(**done)
    _require(accts, debit)
    # No FOR UPDATE here (accounts are locked already; pending rows are locked before accounts
    # elsewhere): two reservations of one party serialise on the party's account lock.
    if (open_ := _lock_open_pending(c, job_id, kind, party, for_update=False)) is not None:
        raise PendingExists(open_.pending_id, kind, job_id)
    legs = _legs(transfer_id, [(debit, credit, amount_wei, kind)], job_id)
    if credit not in accts:  # a new holding account: validate the debit side alone first
        _simulate(c, {debit: _Acct(accts[debit].balance, accts[debit].allow_negative), credit: _Acct(0, False)}, legs)
        open_account(c.s, credit, credit_kind)
        accts.update(_lock(c, (credit,)))
    pending = Pending(transfer_id, kind, job_id, party, debit, credit, amount_wei, amount_wei, "pending", expires_at_s)
    deltas = _simulate(c, accts, legs)
    c.s.execute(_PENDING_INSERT, {"id": transfer_id, "kind": kind, "job": job_id, "party": party, "debit": debit,
                                  "credit": credit, "amount": amount_wei, "expires": expires_at_s})
    _op(c, transfer_id, op_kind, digest, pending)
    c.legs.extend(legs)
    _flush(c, deltas)
    return pending


def escrow_job(s: Session, transfer_id: str, client: str, job_id: str, amount_wei: int, *,
               expires_at_s: float | None = None) -> Pending:
    """Reserve a job's budget: move ``amount_wei`` from ``client:<client>`` into ``escrow:<job_id>``.

    The reservation is later posted by :func:`release_payment`, voided by :func:`void_escrow`, or
    expired by :func:`expire_pending` once ``expires_at_s`` (unix seconds) has passed.

    Raises:
        InvalidAmount, InvalidArgument, UnknownAccount, InsufficientFunds, PendingExists (the
        job already has an open escrow), IdempotencyConflict.
    """
    c = _ctx(s)
    _check_id("transfer_id", transfer_id), _check_id("client", client), _check_id("job_id", job_id)
    _check_amount(c, "amount_wei", amount_wei)
    expires = None if expires_at_s is None else _check_time("expires_at_s", expires_at_s)
    return _reserve(c, "escrow", transfer_id, "escrow", job_id, client, client_account(client),
                    escrow_account(job_id), "escrow", amount_wei, expires)


def lock_collateral(s: Session, transfer_id: str, provider: str, job_id: str, amount_wei: int, *,
                    expires_at_s: float | None = None) -> Pending:
    """Lock ``amount_wei`` of a provider's free bond as the collateral of ``job_id``.

    Moves it from ``bond:<provider>`` to ``collateral:<provider>``; released by
    :func:`unlock_collateral` (or expiry), taken by :func:`slash`.

    Raises:
        InvalidAmount, UnknownAccount (call open_provider), InsufficientFunds (free bond too
        small), PendingExists, IdempotencyConflict.
    """
    c = _ctx(s)
    _check_id("transfer_id", transfer_id), _check_id("provider", provider), _check_id("job_id", job_id)
    _check_amount(c, "amount_wei", amount_wei)
    expires = None if expires_at_s is None else _check_time("expires_at_s", expires_at_s)
    return _reserve(c, "lock", transfer_id, "collateral", job_id, provider, bond_account(provider),
                    collateral_account(provider), "collateral", amount_wei, expires)


def _resolve(c: _Ctx, op_kind: str, transfer_id: str, job_id: str, kind: str, party: str | None,
             status: str) -> Resolution:
    """Return what a reservation still holds to its source (void / unlock); idempotent."""
    digest = _digest(op_kind, job_id, party)
    if (done := _replay(c, transfer_id, op_kind, digest)) is not None:
        return Resolution(**done)
    pending = _lock_open_pending(c, job_id, kind, party)
    if pending is None:
        if (done := _replay(c, transfer_id, op_kind, digest)) is not None:
            return Resolution(**done)
        raise _not_open(c, job_id, kind, party)
    accts = _lock(c, (pending.debit_account_id, pending.credit_account_id))
    result = Resolution(transfer_id, pending.pending_id, kind, job_id, pending.party, pending.remaining_wei, status)
    legs = _legs(transfer_id, [(pending.credit_account_id, pending.debit_account_id, pending.remaining_wei,
                                op_kind)], job_id)
    deltas = _simulate(c, accts, legs)
    c.s.execute(_PENDING_UPDATE, {"remaining": 0, "status": status, "by": transfer_id, "id": pending.pending_id})
    _op(c, transfer_id, op_kind, digest, result)
    c.legs.extend(legs)
    _flush(c, deltas)
    return result


def void_escrow(s: Session, transfer_id: str, job_id: str) -> Resolution:
    """Void a job's open escrow: its whole remaining budget goes back to the client.

    Raises:
        PendingNotFound (never escrowed), PendingAlreadyResolved, IdempotencyConflict.
    """
    _check_id("transfer_id", transfer_id), _check_id("job_id", job_id)
    return _resolve(_ctx(s), "void", transfer_id, job_id, "escrow", None, "voided")


#: Alias of :func:`void_escrow` (a job cancelled or failed with nothing to pay).
refund_job = void_escrow


def unlock_collateral(s: Session, transfer_id: str, provider: str, job_id: str) -> Resolution:
    """Release a provider's collateral lock for ``job_id`` back to its free bond.

    Raises:
        PendingNotFound, PendingAlreadyResolved, IdempotencyConflict.
    """
    _check_id("transfer_id", transfer_id), _check_id("provider", provider), _check_id("job_id", job_id)
    return _resolve(_ctx(s), "unlock", transfer_id, job_id, "collateral", provider, "posted")


def release_payment(s: Session, transfer_id: str, job_id: str, provider: str, price_wei: int, *,
                    fee_bps: int = DEFAULT_PROTOCOL_FEE_BPS) -> Settlement:
    """Post a job's escrow: ``price_wei - fee`` to ``provider:<provider>``, the fee to
    :data:`PROTOCOL_FEE_ACCOUNT`, the rest back to the client.

    ``fee = floor(price_wei * fee_bps / 10_000)`` (:func:`market.core.slashing.protocol_fee_wei`).

    Raises:
        InvalidAmount, InvalidArgument (fee_bps outside [0, 10_000]), UnknownAccount (provider
        account not open), PendingNotFound, PendingAlreadyResolved, PriceExceedsEscrow,
        IdempotencyConflict.
    """
    c = _ctx(s)
    _check_id("transfer_id", transfer_id), _check_id("job_id", job_id), _check_id("provider", provider)
    _check_amount(c, "price_wei", price_wei)
    if isinstance(fee_bps, bool) or not isinstance(fee_bps, int) or not 0 <= fee_bps <= 10_000:
        raise InvalidArgument("fee_bps", fee_bps, "give basis points as an int in [0, 10000]")
    digest = _digest("release", job_id, provider, price_wei, fee_bps)
    if (done := _replay(c, transfer_id, "release", digest)) is not None:
        return Settlement(**done)
    pending = _lock_open_pending(c, job_id, "escrow", None)
    if pending is None:
        if (done := _replay(c, transfer_id, "release", digest)) is not None:
            return Settlement(**done)
        raise _not_open(c, job_id, "escrow", None)
    payee = provider_account(provider)
    accts = _lock(c, (pending.credit_account_id, pending.debit_account_id, payee, PROTOCOL_FEE_ACCOUNT))
    _require(accts, payee)
    if price_wei > pending.remaining_wei:
        raise PriceExceedsEscrow(job_id, price_wei, pending.remaining_wei)
    fee = protocol_fee_wei(price_wei, fee_bps)
    refund = pending.remaining_wei - price_wei
    result = Settlement(transfer_id, job_id, pending.party, provider, pending.remaining_wei, price_wei, fee,
                        price_wei - fee, refund)
    hold = pending.credit_account_id
    legs = _legs(transfer_id, [(hold, payee, price_wei - fee, "payment"), (hold, PROTOCOL_FEE_ACCOUNT, fee, "fee"),
                               (hold, pending.debit_account_id, refund, "refund")], job_id)
    deltas = _simulate(c, accts, legs)
    c.s.execute(_PENDING_UPDATE, {"remaining": 0, "status": "posted", "by": transfer_id, "id": pending.pending_id})
    _op(c, transfer_id, "release", digest, result)
    c.legs.extend(legs)
    _flush(c, deltas)
    return result


_EXPIRED = text(f"SELECT {_PENDING_COLS} FROM ledger_pendings WHERE status = 'pending' "
                "AND expires_at_s IS NOT NULL AND expires_at_s <= :now ORDER BY id")


def expire_pending(s: Session, now_s: float, *, limit: int = 1000) -> list[Resolution]:
    """Expire every open reservation whose ``expires_at_s <= now_s``: its remaining goes back to its source.

    Each expiry is an operation with the deterministic id ``expire:<pending_id>``; reservations
    locked by a concurrent transaction are skipped (``FOR UPDATE SKIP LOCKED``) and picked up
    by the next call. At most ``limit`` per call.

    Returns:
        the reservations expired now (status ``expired``).
    """
    c = _ctx(s)
    now = _check_time("now_s", now_s)
    sql = text(str(_EXPIRED) + (" LIMIT :limit FOR UPDATE SKIP LOCKED" if c.pg else " LIMIT :limit"))
    pendings = [_pending(r) for r in c.s.execute(sql, {"now": now, "limit": int(limit)}).all()]
    if not pendings:
        return []
    accts = _lock(c, [p.debit_account_id for p in pendings] + [p.credit_account_id for p in pendings])
    results = []
    for p in pendings:
        op_id = f"expire:{p.pending_id}"
        result = Resolution(op_id, p.pending_id, p.kind, p.job_id, p.party, p.remaining_wei, "expired")
        _op(c, op_id, "expire", _digest("expire", p.pending_id), result)
        c.legs.extend(_legs(op_id, [(p.credit_account_id, p.debit_account_id, p.remaining_wei, "expire")], p.job_id))
        results.append(result)
    deltas = _simulate(c, accts, c.legs)
    c.s.execute(_PENDING_UPDATE, [{"remaining": 0, "status": "expired", "by": f"expire:{p.pending_id}",
                                   "id": p.pending_id} for p in pendings])
    _flush(c, deltas)
    return results


def pending_for_job(s: Session, job_id: str, kind: str = "escrow") -> list[Pending]:
    """All reservations of ``kind`` (``escrow``/``collateral``) for ``job_id``, open ones first."""
    rows = s.execute(text(f"SELECT {_PENDING_COLS} FROM ledger_pendings WHERE job_id = :job AND kind = :kind "
                          "ORDER BY status = 'pending' DESC, id"), {"job": job_id, "kind": kind}).all()
    return [_pending(r) for r in rows]


# ----------------------------------------------------------------------------------------------
# Stake: bond, unbond


def bond(s: Session, transfer_id: str, provider: str, amount_wei: int) -> Receipt:
    """Bond stake: move ``amount_wei`` from ``provider:<provider>`` to ``bond:<provider>``.

    Raises:
        InvalidAmount, UnknownAccount (call open_provider first), InsufficientFunds, IdempotencyConflict.
    """
    _check_id("provider", provider)
    return transfer(s, transfer_id, provider_account(provider), bond_account(provider), amount_wei, kind="bond")


_UNBOND_INSERT = text("INSERT INTO ledger_unbonds (id, provider, amount_wei, requested_at_s, matures_at_s, status) "
                      "VALUES (:id, :provider, :amount, :at, :matures, 'pending')")
_UNBOND_COLS = "id, provider, amount_wei, requested_at_s, matures_at_s, status"


def request_unbond(s: Session, transfer_id: str, provider: str, amount_wei: int, now_s: float, *,
                   period_s: float = UNBONDING_PERIOD_S) -> Unbond:
    """Start unbonding ``amount_wei`` of free bond; it matures at ``now_s + period_s``.

    The stake moves to ``unbonding:<provider>`` (no longer usable as collateral) and is paid out
    by :func:`complete_unbond` after maturity (EigenLayer / SP1 withdrawal delay).

    Raises:
        InvalidAmount, UnknownAccount, InsufficientFunds (free bond too small), IdempotencyConflict.
    """
    c = _ctx(s)
    _check_id("transfer_id", transfer_id), _check_id("provider", provider)
    _check_amount(c, "amount_wei", amount_wei)
    now, period = _check_time("now_s", now_s), _check_time("period_s", period_s)
    digest = _digest("unbond", provider, amount_wei, period)
    src, hold = bond_account(provider), unbonding_account(provider)
    accts = _lock(c, (src, hold))
    if (done := _replay(c, transfer_id, "unbond", digest)) is not None:
        return Unbond(**done)
    result = Unbond(transfer_id, provider, amount_wei, now, now + period, "pending")
    legs = _legs(transfer_id, [(src, hold, amount_wei, "unbond")])
    deltas = _simulate(c, accts, legs)
    c.s.execute(_UNBOND_INSERT, {"id": transfer_id, "provider": provider, "amount": amount_wei, "at": now,
                                 "matures": now + period})
    _op(c, transfer_id, "unbond", digest, result)
    c.legs.extend(legs)
    _flush(c, deltas)
    return result


def complete_unbond(s: Session, transfer_id: str, provider: str, now_s: float) -> UnbondCompletion:
    """Pay out every matured unbond request of ``provider`` to ``provider:<provider>``.

    Raises:
        UnbondingNotMatured (none matured yet; carries the earliest maturity, or None when there is
        no request at all), UnknownAccount, IdempotencyConflict.
    """
    c = _ctx(s)
    _check_id("transfer_id", transfer_id), _check_id("provider", provider)
    now = _check_time("now_s", now_s)
    digest = _digest("complete_unbond", provider)
    if (done := _replay(c, transfer_id, "complete_unbond", digest)) is not None:
        return UnbondCompletion(**done)
    lock = " FOR UPDATE" if c.pg else ""
    rows = c.s.execute(text(f"SELECT id, amount_wei, matures_at_s FROM ledger_unbonds WHERE provider = :p "
                            f"AND status = 'pending' ORDER BY id{lock}"), {"p": provider}).all()
    matured = [r for r in rows if float(r[2]) <= now]
    if not matured:
        if (done := _replay(c, transfer_id, "complete_unbond", digest)) is not None:
            return UnbondCompletion(**done)
        raise UnbondingNotMatured(provider, min((float(r[2]) for r in rows), default=None), now)
    hold, dest = unbonding_account(provider), provider_account(provider)
    accts = _lock(c, (hold, dest))
    total = sum(int(r[1]) for r in matured)
    result = UnbondCompletion(transfer_id, provider, total, [r[0] for r in matured])
    legs = _legs(transfer_id, [(hold, dest, total, "unbonded")])
    deltas = _simulate(c, accts, legs)
    c.s.execute(text("UPDATE ledger_unbonds SET status = 'completed', completed_by = :by WHERE id = :id"),
                [{"by": transfer_id, "id": r[0]} for r in matured])
    _op(c, transfer_id, "complete_unbond", digest, result)
    c.legs.extend(legs)
    _flush(c, deltas)
    return result


def unbonds(s: Session, provider: str) -> list[Unbond]:
    """All unbond requests of ``provider``, oldest maturity first."""
    rows = s.execute(text(f"SELECT {_UNBOND_COLS} FROM ledger_unbonds WHERE provider = :p ORDER BY matures_at_s, id"),
                     {"p": provider}).all()
    return [Unbond(r[0], r[1], int(r[2]), float(r[3]), float(r[4]), r[5]) for r in rows]


# ----------------------------------------------------------------------------------------------
# Slashing


_SLASH_COLS = ("id, provider, job_id, reason, lock_id, amount_wei, from_collateral_wei, from_bond_wei, rescuer, "
               "client, burn_wei, rescuer_wei, client_wei, requested_at_s, final_after_s, status")
_SLASH_INSERT = text(f"INSERT INTO ledger_slashes ({_SLASH_COLS}) VALUES (:slash_id, :provider, :job_id, :reason, "
                     ":lock_id, :amount_wei, :from_collateral_wei, :from_bond_wei, :rescuer, :client, :burn_wei, "
                     ":rescuer_wei, :client_wei, :requested_at_s, :final_after_s, :status)")


def _slash_row(r: Any) -> Slash:
    return Slash(r[0], r[1], r[2], r[3], r[4], int(r[5]), int(r[6]), int(r[7]), r[8], r[9], int(r[10]), int(r[11]),
                 int(r[12]), float(r[13]), float(r[14]), r[15])


def slash(s: Session, transfer_id: str, provider: str, job_id: str, reason: SlashReason | str, now_s: float, *,
          rescuer: str | None = None, client: str | None = None, amount_wei: int | None = None,
          window_s: float = SLASH_CANCEL_WINDOW_S) -> Slash:
    """Queue a slash of ``provider`` for ``job_id``; it is final only after ``window_s`` (cancel window).

    The amount is the rule's fraction (:data:`market.core.slashing.SLASH_RULES`) of the provider's open
    collateral lock for the job, or ``amount_wei`` when an arbiter gives it. It is taken from that
    lock first, then from the free bond, into ``slashing:<provider>``; :func:`finalize_slash` pays
    it out (burn / rescuer's ``provider:`` account / ``client:`` account) and :func:`cancel_slash`
    returns it to the free bond. The id of the slash is ``transfer_id``.

    Raises:
        InvalidArgument (unknown reason), InvalidAmount, PendingNotFound (no lock and no amount),
        SlashExceedsBond (amount > lock + free bond), UnknownAccount (rescuer / client accounts
        must exist), IdempotencyConflict.
    """
    c = _ctx(s)
    _check_id("transfer_id", transfer_id), _check_id("provider", provider), _check_id("job_id", job_id)
    try:
        rule = rule_for(reason)
    except ValueError as exc:
        raise InvalidArgument("reason", reason, str(exc)) from None
    now, window = _check_time("now_s", now_s), _check_time("window_s", window_s)
    if amount_wei is not None:
        _check_amount(c, "amount_wei", amount_wei)
    digest = _digest("slash", provider, job_id, rule.reason.value, rescuer, client, amount_wei, window)
    if (done := _replay(c, transfer_id, "slash", digest)) is not None:
        return Slash(**done)
    lock = _lock_open_pending(c, job_id, "collateral", provider)
    coll, free, hold = collateral_account(provider), bond_account(provider), slashing_account(provider)
    payees = [None if rescuer is None else provider_account(rescuer), None if client is None else client_account(client)]
    accts = _lock(c, (coll, free, hold, *payees))
    if (done := _replay(c, transfer_id, "slash", digest)) is not None:
        return Slash(**done)
    _require(accts, coll, free, hold, *payees)
    locked = lock.remaining_wei if lock else 0
    if amount_wei is None and lock is None:
        raise PendingNotFound(f"collateral of {provider!r} for job {job_id!r} (or give amount_wei)")
    amount = amount_wei if amount_wei is not None else slash_amount_wei(rule, locked)
    if amount <= 0:
        raise InvalidAmount("amount_wei", amount)
    if amount > locked + accts[free].balance:
        raise SlashExceedsBond(provider, amount, locked + accts[free].balance)
    from_coll = min(amount, locked)
    split = split_slash(rule, amount, has_rescuer=rescuer is not None, has_client=client is not None)
    result = Slash(transfer_id, provider, job_id, rule.reason.value, lock.pending_id if lock else None, amount,
                   from_coll, amount - from_coll, rescuer, client, split.burn_wei, split.rescuer_wei,
                   split.client_wei, now, now + window, "pending")
    legs = _legs(transfer_id, [(coll, hold, from_coll, "slash"), (free, hold, amount - from_coll, "slash")], job_id)
    deltas = _simulate(c, accts, legs)
    if lock is not None and from_coll:
        left = lock.remaining_wei - from_coll
        c.s.execute(_PENDING_UPDATE, {"remaining": left, "status": "pending" if left else "posted",
                                      "by": None if left else transfer_id, "id": lock.pending_id})
    c.s.execute(_SLASH_INSERT, asdict(result))
    _op(c, transfer_id, "slash", digest, result)
    c.legs.extend(legs)
    _flush(c, deltas)
    return result


def _lock_slash(c: _Ctx, slash_id: str) -> Slash:
    sql = text(f"SELECT {_SLASH_COLS} FROM ledger_slashes WHERE id = :id" + (" FOR UPDATE" if c.pg else ""))
    row = c.s.execute(sql, {"id": slash_id}).first()
    if row is None:
        raise SlashNotFound(slash_id)
    return _slash_row(row)


def _resolve_slash(c: _Ctx, op_kind: str, transfer_id: str, slash_id: str, now: float,
                   status: str) -> Slash:
    digest = _digest(op_kind, slash_id)
    if (done := _replay(c, transfer_id, op_kind, digest)) is not None:
        return Slash(**done)
    sl = _lock_slash(c, slash_id)
    if sl.status != "pending":
        if (done := _replay(c, transfer_id, op_kind, digest)) is not None:
            return Slash(**done)
        raise SlashAlreadyResolved(slash_id, sl.status)
    if status == "final" and now < sl.final_after_s:
        raise SlashWindowOpen(slash_id, sl.final_after_s, now)
    if status == "cancelled" and now >= sl.final_after_s:
        raise SlashWindowClosed(slash_id, sl.final_after_s, now)
    hold = slashing_account(sl.provider)
    if status == "final":
        moves = [(hold, BURN_ACCOUNT, sl.burn_wei, "burn"),
                 (hold, provider_account(sl.rescuer) if sl.rescuer else "", sl.rescuer_wei, "rescue"),
                 (hold, client_account(sl.client) if sl.client else "", sl.client_wei, "compensate")]
    else:
        moves = [(hold, bond_account(sl.provider), sl.amount_wei, "unslash")]
    legs = _legs(transfer_id, moves, sl.job_id)
    accts = _lock(c, [g.debit for g in legs] + [g.credit for g in legs])
    result = Slash(**{**asdict(sl), "status": status})
    deltas = _simulate(c, accts, legs)
    c.s.execute(text("UPDATE ledger_slashes SET status = :status, resolved_by = :by WHERE id = :id"),
                {"status": status, "by": transfer_id, "id": slash_id})
    _op(c, transfer_id, op_kind, digest, result)
    c.legs.extend(legs)
    _flush(c, deltas)
    return result


def cancel_slash(s: Session, transfer_id: str, slash_id: str, now_s: float) -> Slash:
    """Cancel a queued slash (an arbiter's decision, inside the window): the stake returns to the free bond.

    Raises:
        SlashNotFound, SlashAlreadyResolved, SlashWindowClosed, IdempotencyConflict.
    """
    _check_id("transfer_id", transfer_id), _check_id("slash_id", slash_id)
    return _resolve_slash(_ctx(s), "cancel_slash", transfer_id, slash_id, _check_time("now_s", now_s), "cancelled")


def finalize_slash(s: Session, transfer_id: str, slash_id: str, now_s: float) -> Slash:
    """Make a queued slash final after its window: pay out burn / rescuer / client shares.

    Raises:
        SlashNotFound, SlashAlreadyResolved, SlashWindowOpen, IdempotencyConflict.
    """
    _check_id("transfer_id", transfer_id), _check_id("slash_id", slash_id)
    return _resolve_slash(_ctx(s), "finalize_slash", transfer_id, slash_id, _check_time("now_s", now_s), "final")


def get_slash(s: Session, slash_id: str) -> Slash:
    """The slash ``slash_id``. Raises: SlashNotFound."""
    row = s.execute(text(f"SELECT {_SLASH_COLS} FROM ledger_slashes WHERE id = :id"), {"id": slash_id}).first()
    if row is None:
        raise SlashNotFound(slash_id)
    return _slash_row(row)


# ----------------------------------------------------------------------------------------------
# Queries and invariants


def account(s: Session, account_id: str) -> AccountInfo:
    """The account ``account_id``. Raises: UnknownAccount."""
    row = s.execute(_GET_ACCOUNT, {"id": account_id}).first()
    if row is None:
        raise UnknownAccount(account_id)
    return AccountInfo(row[0], row[1], bool(row[2]), int(row[3]))


def balance(s: Session, account_id: str) -> int:
    """Balance of ``account_id`` in wei. Raises: UnknownAccount."""
    return account(s, account_id).balance_wei


def balances(s: Session) -> dict[str, int]:
    """Every account's balance in wei, by id."""
    return {r[0]: int(r[1]) for r in s.execute(text("SELECT id, balance_wei FROM ledger_accounts")).all()}


def history(s: Session, account_id: str, *, limit: int | None = None) -> list[HistoryEntry]:
    """Journal rows touching ``account_id``, oldest first (the last ``limit`` when given).

    Raises:
        UnknownAccount.
    """
    account(s, account_id)
    sql = ("SELECT seq, op_id, leg, kind, debit_account_id, credit_account_id, amount_wei, job_id "
           "FROM ledger_transfers WHERE debit_account_id = :a OR credit_account_id = :a ORDER BY seq DESC")
    params: dict[str, Any] = {"a": account_id}
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = int(limit)
    out = []
    for seq, op_id, leg, kind, debit, credit, amount, job in s.execute(text(sql), params).all():
        credited = credit == account_id
        out.append(HistoryEntry(int(seq), op_id, int(leg), kind, debit if credited else credit,
                                int(amount) if credited else -int(amount), job))
    return out[::-1]


def check_invariants(s: Session) -> list[str]:
    """Check the ledger's invariants; returns one line per violation (empty when all hold).

    Checked: the sum of all balances is zero (so the non-world accounts hold exactly the net
    external deposits: deposits - withdrawals from the journal); no negative balance on an
    account not allowed one; every balance equals the replay of the journal; every holding
    account equals what its open reservations / unbonds / slashes say; every journal row
    belongs to a recorded operation.
    """
    out: list[str] = []
    accts = {r[0]: (int(r[1]), bool(r[2]), r[3]) for r in
             s.execute(text("SELECT id, balance_wei, allow_negative, kind FROM ledger_accounts")).all()}
    replay: dict[str, int] = {}
    for debit, credit, amount in s.execute(text(
            "SELECT debit_account_id, credit_account_id, sum(amount_wei) FROM ledger_transfers "
            "GROUP BY debit_account_id, credit_account_id")).all():
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


def _check_holdings(s: Session, accts: dict[str, tuple[int, bool, str]]) -> list[str]:
    """Holding accounts (escrow/collateral/unbonding/slashing) equal the open records they back."""
    expected: dict[str, int] = {}
    for credit, remaining in s.execute(text("SELECT credit_account_id, sum(remaining_wei) FROM ledger_pendings "
                                            "WHERE status = 'pending' GROUP BY credit_account_id")).all():
        expected[credit] = int(remaining)
    for provider, amount in s.execute(text("SELECT provider, sum(amount_wei) FROM ledger_unbonds "
                                           "WHERE status = 'pending' GROUP BY provider")).all():
        expected[unbonding_account(provider)] = int(amount)
    for provider, amount in s.execute(text("SELECT provider, sum(amount_wei) FROM ledger_slashes "
                                           "WHERE status = 'pending' GROUP BY provider")).all():
        expected[slashing_account(provider)] = int(amount)
    out = []
    for account_id, (bal, _, kind) in sorted(accts.items()):
        if kind in ("escrow", "collateral", "unbonding", "slashing") and bal != expected.get(account_id, 0):
            out.append(f"{account_id}: holds {bal} wei but its open records say {expected.get(account_id, 0)} wei")
    return out
