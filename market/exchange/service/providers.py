"""Provider actions: register (a name belongs to the first address that registered it), presence (signed
heartbeats and polls), and which providers take part in rounds (online and not draining)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from market import exchange as ex
from market.db.models import ProviderRecord
from market.exchange.service import challenges
from market.exchange.service.errors import ServiceError, invalid, not_found, not_owner
from market.protocol import ErrorCode, RegisterPayload


def register(s: Session, signer: str, p: RegisterPayload, now_s: float) -> ProviderRecord:
    """Record (or update) ``p.name``'s offer; no bond moves here (stake is on chain: ``Vault.stake``).

    Raises:
        ServiceError: ``name_taken`` when another address registered ``p.name``.
    """
    rec = s.get(ProviderRecord, p.name)
    if rec is not None and rec.address != signer:
        raise ServiceError(ErrorCode.NAME_TAKEN, f"provider name {p.name!r} belongs to {rec.address}",
                           "pick another --name")
    kept = challenges.notes(rec) if rec is not None else {}  # the exchange's measurements survive a re-register
    o = p.offer
    offer = ex.ProviderOffer(name=p.name, address=signer, cpus=o.cpus, memory_bytes=o.memory_bytes,
                             price_per_cpu_s_wei=o.price_per_cpu_s_wei, bond_wei=0, gpus=o.gpus,
                             gpu_model=o.gpu_model, price_per_gpu_s_wei=o.price_per_gpu_s_wei, speed=o.speed,
                             hardware=p.hardware)
    rec = ex.register_provider(s, offer, now_s=now_s)
    challenges.on_register(rec, kept, o)  # speed: measured, never the bare claim; per-unit quotes
    rec.last_seen_at, rec.draining, rec.ray_address = now_s, False, p.ray_address
    return rec


def owned(s: Session, signer: str, name: str) -> ProviderRecord:
    """Provider ``name`` when ``signer`` is its address.

    Raises:
        ServiceError: ``not_found`` (register first), ``not_owner``.
    """
    rec = s.get(ProviderRecord, name)
    if rec is None:
        raise not_found("provider", name)
    if rec.address != signer:
        raise not_owner("provider", name)
    return rec


def seen(rec: ProviderRecord, now_s: float, draining: bool | None = None) -> None:
    """A signed request from the provider arrived at ``now_s``: it is online (and draining, when said)."""
    rec.last_seen_at = now_s
    if draining is not None:
        rec.draining = draining
    rec.active = not rec.draining


def refresh_active(s: Session, now_s: float, lease_s: float) -> int:
    """Offer only providers seen within ``lease_s`` seconds and not draining; returns how many are active."""
    n = 0
    for rec in s.scalars(select(ProviderRecord)):
        active = rec.last_seen_at is not None and now_s - rec.last_seen_at <= lease_s and not rec.draining
        if rec.active != active:
            rec.active = active
        n += active
    return n


def faucet_bond_target(s: Session, signer: str, name: str) -> str:
    """Development faucet: check that ``name`` is the signer's provider and the one its address's stake reaches
    (the deposit watcher credits ``Staked(address)`` to the address's first provider name); returns ``name``.
    The stake itself is a real ``Vault.stakeFor`` (:func:`market.exchange.service.money.dev_faucet`).

    Raises:
        ServiceError: ``not_found``, ``not_owner``, ``invalid`` (the address has an earlier provider name).
    """
    owned(s, signer, name)
    first = s.scalar(select(ProviderRecord.name).where(ProviderRecord.address == signer)
                     .order_by(ProviderRecord.name).limit(1))
    if first != name:
        raise invalid("provider_name", f"stake of {signer} is credited to its provider {first!r}, not {name!r}")
    return name
