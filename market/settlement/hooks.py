"""Watcher hooks that move money: the one challenge -> slash rule of the market.

A successful on-chain challenge of a settled leaf (``LeafChallenged``) is evidence against the provider
that signed it. **One fault, one slash**, and which path carries it depends on the ledger:

* **Chain-backed ledger** (the exchange service: the ledger has the ``vault`` account,
  :func:`market.ledger.world_closed`): the Vault is authoritative. A BadProof mark is slashed on chain by
  ``Vault.slashChallenged(batchId, leaf)`` -- by anyone, and by the exchange itself at its next epoch
  (:meth:`market.settlement.epochs.EpochPoster.slash_challenged`) -- exactly once per fault (the contract's
  ``slashRefUsed[keccak(abi.encode(batchId, leafHash))]``). Size: ``priceWei * challengeSlashMultiplier``
  (default 1) capped at the provider's slashable stake, ``challengeBurnBps`` (default 50%) of it burned. The
  deposit watcher applies the confirmed ``Slashed`` event once (stake out of the provider's bond, burned part out
  of the ledger) and gives the unburned part to the job's client as spendable balance
  (:mod:`market.settlement.deposits`). These hooks then queue NO ledger slash, so the ledger and the Vault take
  the same amount once; a reorg that removes the challenge removes the slash with it (the watcher undoes it).
* **Standalone ledger** (no Vault): :func:`slash_provider_on_challenge` turns the challenge into a queued ledger
  slash (:func:`challenge_slash_wei`), and :func:`cancel_slash_on_challenge_reverted` cancels that slash when a
  reorg removes the challenge.
:func:`register_challenge_slashing` registers both on a :class:`market.settlement.watcher.WatcherHooks`;
the exchange's :func:`market.exchange.register_settlement_hooks` (what ``raymarket watch`` and the runner
use) calls it, so this is the only place a challenge slashes.

Both hooks are idempotent by the ledger id (:func:`market.core.ids.challenge_slash_id`): the watcher may
deliver an event again after a restart, and a hook registered twice runs twice, but a job's challenge
slashes at most once.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from market import ledger
from market.core import ids
from market.core.slashing import SlashReason
from market.db.models import JobRecord, ProviderRecord
from market.settlement.batching import UnknownJob, find_leaf

#: Challenge reasons that are the named provider's fault. A bad signature means the provider did *not*
#: sign the leaf, and a duplicate is the batching operator's error: neither is slashed from the provider.
PROVIDER_FAULTS = frozenset({"bad_proof"})


def provider_by_address(s: Session, address: str) -> str | None:
    """The ledger name of the provider registered with ``address`` (0x-hex, any case), or None."""
    return s.scalars(select(ProviderRecord.name).where(func.lower(ProviderRecord.address) == address.lower())).first()


def challenge_slash_wei(s: Session, job_id: str, provider: str, now_s: float | None = None) -> int:
    """What a successful challenge of ``job_id``'s leaf costs ``provider``, in wei (0 = nothing to take).

    ``max(collateral, price)``: the job's collateral (``jobs.collateral_wei``, 0 for a job the exchange does
    not know) or, when larger, its price (the exchange's cleared price, else the price attested in the
    settled leaf) -- the collateral lock itself was released at payment, so a fault found after
    settlement must cost at least what it was paid. Capped at what the provider still has at stake:
    its open collateral lock for the job plus its free bond plus its unbonding stake not matured at ``now_s``
    (default: now; issue 14 finding 5).
    """
    job = s.get(JobRecord, job_id)
    collateral = int(job.collateral_wei) if job is not None else 0
    price = int(job.cleared_price_wei or 0) if job is not None else 0
    if job is None or job.cleared_price_wei is None:
        try:
            price = int(find_leaf(s, job_id).price_wei)
        except UnknownJob:
            pass
    locked = sum(p.remaining_wei for p in ledger.pending_for_job(s, job_id, "collateral")
                 if p.party == provider and p.status == "pending")
    unbonding = ledger.slashable_unbonding_wei(s, provider, time.time() if now_s is None else now_s)
    return min(max(collateral, price), locked + ledger.balance(s, ledger.bond_account(provider)) + unbonding)


def slash_provider_on_challenge(s: Session, job_id: str, provider: str, reason: str,
                                now_s: float | None = None) -> ledger.Slash | None:
    """An ``on_leaf_challenged`` hook: queue a ``wrong_result`` slash of the provider that signed a bad proof.

    Args:
        job_id: the exchange's job id (``job_ref``) or the leaf's 0x bytes32 job id.
        provider: the signer's address from the event (the provider is found by ``providers.address``).
        reason: ``bad_signature`` | ``bad_proof`` | ``duplicate``; only :data:`PROVIDER_FAULTS` slash.

    The amount is :func:`challenge_slash_wei`, taken from the job's open collateral lock first, then
    from the free bond; the job's client (when the exchange knows the job) gets the rule's client share,
    the rest is burned (:mod:`market.core.slashing`). It is queued with the ledger's cancel window, not
    final. The slash id is :func:`market.core.ids.challenge_slash_id`; when a slash with that id exists it
    is returned unchanged.

    Returns:
        The ledger's ``Slash``, or None when the reason is not a provider fault, the ledger is chain-backed (the
        Vault slashes: see the module docstring), the address is not a registered provider, or the provider has
        nothing at stake.

    Raises:
        market.ledger.LedgerError: the ledger refused (e.g. the client's account does not exist).
    """
    if reason not in PROVIDER_FAULTS or ledger.world_closed(s):
        return None  # chain-backed: the Vault's slashChallenged is the one slash of this fault (module docstring)
    name = provider_by_address(s, provider)
    if name is None:
        return None
    slash_id = ids.challenge_slash_id(job_id)
    try:
        return ledger.get_slash(s, slash_id)
    except ledger.SlashNotFound:
        pass
    now_s = time.time() if now_s is None else now_s
    amount = challenge_slash_wei(s, job_id, name, now_s)
    if amount <= 0:
        return None
    job = s.get(JobRecord, job_id)
    return ledger.slash(s, slash_id, name, job_id, SlashReason.WRONG_RESULT, now_s, amount_wei=amount,
                        client=job.client if job is not None else None)


def cancel_slash_on_challenge_reverted(s: Session, job_id: str, provider: str, reason: str,
                                       now_s: float | None = None) -> ledger.Slash | None:
    """An ``on_challenge_reverted`` hook: the block holding a challenge was reorged away, so cancel its slash.

    Returns:
        The cancelled ``Slash`` (also when it was cancelled before: replay), or None when the challenge
        had queued no slash, the slash is already final or its cancel window has closed.
    """
    slash_id = ids.challenge_slash_id(job_id)
    try:
        sl = ledger.get_slash(s, slash_id)
    except ledger.SlashNotFound:
        return None
    if sl.status == "final":
        return None
    now_s = time.time() if now_s is None else now_s
    try:
        return ledger.cancel_slash(s, ids.challenge_unslash_id(job_id), slash_id, now_s)
    except (ledger.SlashWindowClosed, ledger.SlashAlreadyResolved):  # too late, or resolved another way
        return None


def register_challenge_slashing(hooks: Any) -> Any:
    """Register :func:`slash_provider_on_challenge` and :func:`cancel_slash_on_challenge_reverted` on ``hooks``
    (a :class:`market.settlement.watcher.WatcherHooks`), once: registering again adds nothing.

    Returns:
        ``hooks``.
    """
    if slash_provider_on_challenge not in hooks.on_leaf_challenged:
        hooks.register(on_leaf_challenged=slash_provider_on_challenge)
    if cancel_slash_on_challenge_reverted not in hooks.on_challenge_reverted:
        hooks.register(on_challenge_reverted=cancel_slash_on_challenge_reverted)
    return hooks
