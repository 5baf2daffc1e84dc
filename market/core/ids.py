"""Idempotency ids of ledger operations: every id the market passes to :mod:`market.ledger` is built here.

The ledger makes an operation idempotent by its caller-given id (a retry with the same id and
inputs replays; other inputs raise ``IdempotencyConflict``). So an id must be a pure function of
what makes the operation *the same* operation: the job and its attempt, the provider, the reason.
Building them in one module keeps two callers from inventing two ids for one operation (which
would move the money twice) or one id for two operations (which would refuse the second).

Pure: no database, Ray or web3. Ids are ``str`` of at most 200 characters (``market.ledger.models.ID_LEN``)
without the ``\\x1f`` control character; the parts given here are joined with ``:``. The formats are
stable (ids already in a ledger must keep meaning the same operation): do not change them.

Formats (``<attempt>`` is the exchange's 1-based attempt counter of the job):

* ``escrow:<job>`` (:func:`escrow_id`): the job's budget escrowed at submission;
* ``pay:<job>`` (:func:`payment_id`): the escrow posted to the provider, once per job;
* ``refund:<job>:<attempt>`` (:func:`refund_id`): the exchange voids the escrow (expired / gave up);
* ``void:<job>`` (:func:`void_id`): the proving pipeline voids the escrow;
* ``cancel:<job>`` (:func:`cancel_id`): the client cancels the job, its escrow voided;
* ``lock:<job>:<attempt>`` (:func:`collateral_lock_id`): collateral locked for a match;
* ``unlock:<job>:<attempt or provider>`` (:func:`collateral_unlock_id`): that collateral released;
* ``slash:<job>:<attempt or provider>`` (:func:`slash_id`): a fault found while verifying;
* ``challenge:<job>`` (:func:`challenge_slash_id`): a slash after an on-chain challenge;
* ``challenge-unslash:<job>`` (:func:`challenge_unslash_id`): that slash cancelled (challenge reorged away);
* ``bond-deposit:<provider>:<address>:<wei>`` / ``bond:...`` (:func:`bond_deposit_id`, :func:`bond_id`):
  a registering provider's stake deposited, then bonded;
* ``deposit:<client>:<nonce...>`` (:func:`deposit_id`): a client's deposit;
* ``expire:<pending id>`` (:func:`expiry_id`): a reservation expired by the ledger's sweep;
* ``<kind>:<party>:<nonce>`` (:func:`operator_id`): a one-off operation an operator runs by hand
  (``raymarket provider bond`` / ``unbond``), unique by its nonce.
"""

from __future__ import annotations


def _join(*parts: object) -> str:
    return ":".join(str(p) for p in parts)


def escrow_id(job_id: str) -> str:
    """Escrow of a job's max price at submission: ``escrow:<job_id>`` (one per job)."""
    return _join("escrow", job_id)


def payment_id(job_id: str) -> str:
    """Release of a job's escrow to the provider that delivered it: ``pay:<job_id>``.

    One per job whatever the attempt, so a job re-auctioned and finished twice is paid once.
    """
    return _join("pay", job_id)


def refund_id(job_id: str, attempt: int) -> str:
    """The exchange voiding a job's escrow (deadline passed or attempts exhausted): ``refund:<job_id>:<attempt>``."""
    return _join("refund", job_id, attempt)


def void_id(job_id: str) -> str:
    """The proving pipeline voiding a rejected or failed job's escrow: ``void:<job_id>``."""
    return _join("void", job_id)


def cancel_id(job_id: str) -> str:
    """The client cancelling a job, which voids its escrow: ``cancel:<job_id>``."""
    return _join("cancel", job_id)


def collateral_lock_id(job_id: str, attempt: int) -> str:
    """Collateral a matched provider locks for attempt ``attempt`` of a job: ``lock:<job_id>:<attempt>``."""
    return _join("lock", job_id, attempt)


def collateral_unlock_id(job_id: str, key: int | str) -> str:
    """Release of a job's collateral lock: ``unlock:<job_id>:<key>``.

    Args:
        key: the attempt (exchange: one lock per attempt) or the provider name (proving pipeline:
            one lock per provider and job).
    """
    return _join("unlock", job_id, key)


def slash_id(job_id: str, key: int | str) -> str:
    """Slash of a provider for a fault found while verifying a job: ``slash:<job_id>:<key>``.

    Args:
        key: the attempt (exchange) or the provider name (proving pipeline).
    """
    return _join("slash", job_id, key)


def challenge_slash_id(job_id: str) -> str:
    """Slash after a successful on-chain challenge of the job's settled leaf: ``challenge:<job_id>``.

    One per job: the watcher may deliver the challenge again (replays, restarts), and a
    leaf is challenged at most once on-chain.
    """
    return _join("challenge", job_id)


def challenge_unslash_id(job_id: str) -> str:
    """Cancellation of :func:`challenge_slash_id` when the challenge was reorged away: ``challenge-unslash:<job_id>``."""
    return _join("challenge-unslash", job_id)


def bond_deposit_id(provider: str, address: str, bond_wei: int) -> str:
    """Deposit of a registering provider's stake: ``bond-deposit:<provider>:<address>:<bond_wei>``.

    Derived from the registration itself, so registering again with the same offer deposits nothing.
    """
    return _join("bond-deposit", provider, address, bond_wei)


def bond_id(provider: str, address: str, bond_wei: int) -> str:
    """Bonding of the stake deposited under :func:`bond_deposit_id`: ``bond:<provider>:<address>:<bond_wei>``."""
    return _join("bond", provider, address, bond_wei)


def deposit_id(client: str, *nonce: object) -> str:
    """A client's deposit: ``deposit:<client>:<nonce...>`` (the caller's nonce makes distinct deposits distinct)."""
    return _join("deposit", client, *nonce)


def expiry_id(pending_id: str) -> str:
    """The ledger's expiry of reservation ``pending_id``: ``expire:<pending_id>``."""
    return _join("expire", pending_id)


def operator_id(kind: str, party: str, nonce: str) -> str:
    """A one-off operation run by hand (CLI ``bond``, ``unbond``, ``complete-unbond``): ``<kind>:<party>:<nonce>``.

    ``nonce`` (a fresh uuid) makes each command its own operation; pass an explicit id to the
    command instead to make a retry idempotent.
    """
    return _join(kind, party, nonce)
