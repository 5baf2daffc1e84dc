"""Chain credits for ledger-level tests that run without a chain (the exchange steps, the pipeline, hooks).

Money enters a chain-backed ledger only through :mod:`market.ledger.chain` (what the deposit watcher calls for a
confirmed Vault event); these helpers call that same path with a simulated event id (``vault-sim:<tag>``, never
a real ``vault:<block hash>:<tx hash>:<log index>``), so such tests fund accounts the way the service does, and
the ledger they build is chain-backed (``world`` closed) like the service's. Tests that own a chain deposit on
it instead (``VaultContract.deposit``, the dev faucet).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

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
