"""Chain credits for ledger-level tests that run without a chain (the exchange steps, the pipeline, hooks).

Money enters a chain-backed ledger only through :mod:`market.ledger.chain` (what the deposit watcher calls for a
confirmed Vault event); these helpers call that same path with a simulated event id (``vault-sim:<tag>``, never
a real ``vault:<block hash>:<tx hash>:<log index>``), so such tests fund accounts the way the service does, and
the ledger they build is chain-backed (``world`` closed) like the service's. Tests that own a chain deposit on
it instead (``VaultContract.deposit``, the dev faucet). Tests of the ledger-only paths (a standalone ledger, no Vault)
use :func:`standalone_deposit` / :func:`standalone_bond` instead, clearly named.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from market import ledger
from market.ledger import chain


def sim_op_id(tag: str) -> str:
    """The ledger operation id of a simulated confirmed Vault event."""
    return f"vault-sim:{tag}"


def chain_deposit(s: Session, address: str, amount_wei: int, tag: str) -> chain.ChainMove:
    """As if ``Deposited(address, amount_wei)`` were confirmed: ``vault -> client:<address>``."""
    return chain.credit_deposit(s, sim_op_id(tag), address, amount_wei)


def chain_stake(s: Session, address: str, provider: str, amount_wei: int, tag: str) -> chain.ChainMove:
    """As if ``Staked(address, amount_wei)`` were confirmed for registered ``provider``: ``vault -> bond:<provider>``."""
    return chain.credit_stake(s, sim_op_id(tag), address, provider, amount_wei)


def standalone_deposit(s: Session, account_id: str, amount_wei: int, tag: str) -> None:
    """Fund ``account_id`` on a STANDALONE ledger (no Vault: its own ``world`` account is the outside), for tests of
    the ledger-only paths (e.g. the challenge hook's ledger slash, which a chain-backed ledger leaves to the Vault).
    Raises ``ledger.WorldClosed`` on a chain-backed ledger."""
    ledger.deposit(s, f"standalone:{tag}", account_id, amount_wei)


def standalone_bond(s: Session, provider: str, amount_wei: int, tag: str) -> None:
    """Bond ``amount_wei`` of fresh stake for ``provider`` on a STANDALONE ledger (see :func:`standalone_deposit`)."""
    standalone_deposit(s, ledger.provider_account(provider), amount_wei, f"{tag}:deposit")
    ledger.bond(s, f"standalone:{tag}:bond", provider, amount_wei)
