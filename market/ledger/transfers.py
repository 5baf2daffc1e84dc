"""Plain transfers: one (:func:`transfer`, :func:`deposit`, :func:`withdraw`) or many atomically (:func:`post_batch`).

A plain transfer is one journal row from a debit account to a credit account; its caller-given
``transfer_id`` makes it idempotent (a retry with the same inputs replays, other inputs raise
:class:`IdempotencyConflict`). Amounts are int wei.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from market.ledger._checks import SEP, check_id
from market.ledger._ops import Ctx, Leg, check_amount, commit, ctx, legs_of, lock_accounts, max_wei, op_row, replay
from market.ledger.accounts import WORLD_ACCOUNT, world_closed
from market.ledger.errors import IdempotencyConflict, InvalidArgument, WorldClosed
from market.ledger.models import ID_LEN


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
class BatchResult:
    """Result of :func:`post_batch`: transfers newly applied, and retried ids replayed (not re-applied)."""

    applied: int
    replayed: int


def transfer_digest(spec: TransferSpec) -> str:
    """Fingerprint of a plain transfer (ids cannot contain the separator, so the encoding is unambiguous)."""
    blob = SEP.join((spec.kind, spec.debit_account_id, spec.credit_account_id, str(spec.amount_wei),
                      spec.job_id or ""))
    return hashlib.sha256(blob.encode()).hexdigest()


def transfer(s: Session, transfer_id: str, debit_account_id: str, credit_account_id: str, amount_wei: int,
             *, kind: str = "transfer", job_id: str | None = None) -> Receipt:
    """Move ``amount_wei`` from ``debit_account_id`` to ``credit_account_id`` (one journal row).

    Returns:
        a :class:`Receipt` (the original one when ``transfer_id`` is a retry).

    Raises:
        InvalidAmount, InvalidArgument, UnknownAccount, InsufficientFunds, IdempotencyConflict.
    """
    c = ctx(s)
    spec = TransferSpec(transfer_id, debit_account_id, credit_account_id, amount_wei, kind, job_id)
    _check_spec(c, spec, "")
    _check_world(s, [spec])
    digest = transfer_digest(spec)
    accts = lock_accounts(c, (debit_account_id, credit_account_id))
    if (done := replay(c, transfer_id, kind, digest)) is not None:
        return Receipt(**done)
    receipt = Receipt(transfer_id, kind, debit_account_id, credit_account_id, amount_wei)
    legs = legs_of(transfer_id, [(debit_account_id, credit_account_id, amount_wei, kind)], job_id)
    commit(c, accts, legs, [op_row(transfer_id, kind, digest, receipt)])
    return receipt


def deposit(s: Session, transfer_id: str, account_id: str, amount_wei: int) -> Receipt:
    """Credit ``account_id`` with ``amount_wei`` coming from outside (:data:`WORLD_ACCOUNT`): a standalone
    ledger's external source only. On a chain-backed ledger money enters by chain credits
    (:func:`market.ledger.chain.credit_deposit`), and this raises :class:`WorldClosed`.

    Raises:
        InvalidAmount, UnknownAccount, IdempotencyConflict, WorldClosed.
    """
    return transfer(s, transfer_id, WORLD_ACCOUNT, account_id, amount_wei, kind="deposit")


def withdraw(s: Session, transfer_id: str, account_id: str, amount_wei: int) -> Receipt:
    """Debit ``amount_wei`` from ``account_id`` to the outside (:data:`WORLD_ACCOUNT`); standalone ledgers only
    (chain-backed: :class:`WorldClosed`; money leaves by an on-chain claim).

    Raises:
        InvalidAmount, UnknownAccount, InsufficientFunds, IdempotencyConflict, WorldClosed.
    """
    return transfer(s, transfer_id, account_id, WORLD_ACCOUNT, amount_wei, kind="withdraw")


def _check_world(s: Session, specs: Sequence[TransferSpec]) -> None:
    """Raise :class:`WorldClosed` for the first of ``specs`` touching ``world`` when the ledger is chain-backed."""
    for spec in specs:
        if WORLD_ACCOUNT in (spec.debit_account_id, spec.credit_account_id):
            if world_closed(s):
                other = spec.credit_account_id if spec.debit_account_id == WORLD_ACCOUNT else spec.debit_account_id
                raise WorldClosed(spec.transfer_id, other)
            return


def _fast_ok(c: Ctx, spec: TransferSpec) -> bool:
    """The common case of :func:`_check_spec`, checked without building error messages."""
    a, d, k = spec.amount_wei, spec.debit_account_id, spec.credit_account_id
    return (type(a) is int and 0 < a <= max_wei(c) and type(d) is str and type(k) is str and d != k
            and 0 < len(d) <= ID_LEN and 0 < len(k) <= ID_LEN and type(spec.transfer_id) is str
            and 0 < len(spec.transfer_id) <= ID_LEN and SEP not in spec.transfer_id + d + k
            and spec.job_id is None and type(spec.kind) is str and 0 < len(spec.kind) <= 16)


def _check_spec(c: Ctx, spec: TransferSpec, where: str) -> None:
    if _fast_ok(c, spec):
        return
    check_id(f"{where}transfer_id", spec.transfer_id)
    check_id(f"{where}debit_account_id", spec.debit_account_id)
    check_id(f"{where}credit_account_id", spec.credit_account_id)
    check_amount(c, f"{where}amount_wei", spec.amount_wei)
    if spec.debit_account_id == spec.credit_account_id:
        raise InvalidArgument(f"{where}credit_account_id", spec.credit_account_id,
                              "debit and credit accounts must differ")
    if not isinstance(spec.kind, str) or not 0 < len(spec.kind) <= 16:
        raise InvalidArgument(f"{where}kind", spec.kind, "give a label of 1 to 16 characters")
    if spec.job_id is not None:
        check_id(f"{where}job_id", spec.job_id)


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
    c = ctx(s)
    digests: dict[str, tuple[str, str]] = {}
    fresh: list[TransferSpec] = []
    for i, spec in enumerate(transfers):
        _check_spec(c, spec, f"transfers[{i}].")
        d = transfer_digest(spec)
        if spec.transfer_id in digests:
            if digests[spec.transfer_id] != (spec.kind, d):
                raise IdempotencyConflict(spec.transfer_id, digests[spec.transfer_id][0], spec.kind)
            continue
        digests[spec.transfer_id] = (spec.kind, d)
        fresh.append(spec)
    _check_world(s, fresh)
    accts = lock_accounts(c, [x.debit_account_id for x in fresh] + [x.credit_account_id for x in fresh])
    stored = c.s.execute(_OPS_GET_MANY_PG, {"ids": SEP.join(digests)}).all() if c.pg else \
        c.s.execute(_OPS_GET_MANY_LITE, {"ids": list(digests)}).all()
    for op_id, kind, digest in stored:
        if (kind, digest) != digests[op_id]:
            raise IdempotencyConflict(op_id, kind, digests[op_id][0])
    done = {row[0] for row in stored}
    todo = [x for x in fresh if x.transfer_id not in done]
    legs = [Leg(x.transfer_id, 0, x.debit_account_id, x.credit_account_id, x.amount_wei, x.kind, x.job_id)
            for x in todo]
    commit(c, accts, legs, [(x.transfer_id, x.kind, digests[x.transfer_id][1], None) for x in todo])
    return BatchResult(applied=len(todo), replayed=len(transfers) - len(todo))

