"""Settlement epochs: what the ledger owes becomes claimable on chain.

Per epoch (:meth:`EpochPoster.run_epoch`), in this order:

1. **Earnings.** Each registered provider's free balance ``provider:<name>`` (earnings, rescuer shares) moves to
   ``claimable:<its address>`` (:func:`market.ledger.chain.sweep_earnings`). Clients' unused balances become
   claimable only when they ask (:func:`market.ledger.chain.mark_withdrawable`, the ``withdraw`` request).
2. **Slashes.** Queued ledger slashes whose cancel window has closed are made final (the burned / rescuer /
   client shares move in the ledger: :func:`market.ledger.finalize_slash`), and every final slash is carried out
   on chain once: ``Vault.slash(provider address, amount, burned, ref = keccak(slash id))`` takes the
   stake (active first, then unbonding that has not matured), sends the burned part to the burn sink and the rest
   to the claim pool that backs the rescuer's and the client's claimable shares. The deposit watcher then moves
   the burned wei out of the ledger's ``burn`` account when it sees the confirmed ``Slashed`` event. Then every
   settled leaf the Settlement marked BadProof is slashed by ``Vault.slashChallenged`` unless its fault ref is
   used already (:meth:`EpochPoster.slash_challenged`): the Vault is the one authority for those faults, the
   challenge hook queues no ledger slash on a chain-backed ledger (:mod:`market.settlement.hooks`).
3. **Root.** The cumulative claimable wei per address (:func:`market.ledger.chain.cumulative_claimable`) becomes
   a :class:`contracts.vault.ClaimTree` (OpenZeppelin StandardMerkleTree of ``(address, uint256)``); when its
   root differs from the Vault's current root it is posted as epoch ``currentEpoch + 1`` with its total, and
   kept in ``vault_epochs`` (leaves as exact decimal text) so that :meth:`EpochPoster.proof` can answer claims.

A claimant then calls ``Vault.claim(cumulativeWei, proof)`` with its own key; the Vault pays the difference from
what it already claimed (a second claim of the same cumulative amount reverts ``NothingToClaim``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from contracts.errors import ContractReverted
from contracts.vault import ClaimTree
from market.db.models import ProviderRecord
from market import ledger
from market.ledger import chain as money
from market.settlement.batching import leaf_from_record
from market.settlement.deposits import WriteTx, fault_ref, slash_ref
from market.settlement.models import LeafRecord
from market.settlement.vault_models import VaultEpoch, VaultSlash

log = logging.getLogger("raymarket.epochs")
#: ``settlement_leaves.challenge_reason`` of a BadProof mark (``Settlement.Reason.BadProof``).
BAD_PROOF = 2


@dataclass(frozen=True)
class ClaimProof:
    """What ``Vault.claim`` needs for ``address``: its cumulative wei in ``epoch``'s root and the proof (0x hex)."""

    address: str
    epoch: int
    cumulative_wei: int
    proof: list[str]
    root: str

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "epoch": self.epoch, "cumulative_wei": str(self.cumulative_wei),
                "proof": self.proof, "root": self.root}


@dataclass
class EpochResult:
    """One :meth:`EpochPoster.run_epoch`: providers swept (name -> wei), slashes sent on chain (slash id ->
    status), and the epoch posted (None when the root was unchanged or the post failed; ``error`` says why)."""

    swept: dict[str, int] = field(default_factory=dict)
    finalized: list[str] = field(default_factory=list)
    slashes: dict[str, str] = field(default_factory=dict)
    epoch: int | None = None
    root: str | None = None
    total_wei: int = 0
    error: str | None = None


class EpochPoster:
    """Runs epochs for one Vault (see the module docstring).

    Args:
        engine: the ledger database (migrated to ``0005_vault``).
        vault: a :class:`contracts.vault.VaultContract`.
        operator_key: a key the Vault accepts as operator (``setOperator``).
        lock: optional lock serialising this process's writers (the service's write lock).
    """

    def __init__(self, engine: Engine, vault: Any, operator_key: str | bytes, *, lock: Any = None) -> None:
        self.engine, self.vault, self.operator_key, self._lock = engine, vault, operator_key, lock
        self._tree_cache: tuple[str, ClaimTree] | None = None

    def run_epoch(self, now_s: float | None = None) -> EpochResult:
        """Sweep earnings, carry out final slashes on chain, post the root if it changed."""
        now = time.time() if now_s is None else now_s
        out = EpochResult()
        out.swept = self.sweep_earnings()
        out.finalized = self.finalize_due_slashes(now)
        out.slashes = self.send_slashes()
        out.slashes.update(self.slash_challenged())
        self.post_root(now, out)
        return out

    # ------------------------------------------------------------------ steps
    def sweep_earnings(self) -> dict[str, int]:
        """``provider:<name> -> claimable:<address>`` for every registered provider with a balance."""
        swept: dict[str, int] = {}
        with Session(self.engine) as s:
            providers = s.execute(select(ProviderRecord.name, ProviderRecord.address)).all()
        for name, address in providers:
            with WriteTx(self.engine, self._lock) as s:
                last = s.scalar(text("SELECT max(seq) FROM ledger_transfers WHERE credit_account_id = :a"),
                                {"a": f"provider:{name}"})
                if last is None:
                    continue
                moved = money.sweep_earnings(s, f"earnings:{name}:{last}", name, to_checksum_address(address))
                if moved is not None:
                    swept[name] = moved.amount_wei
        return swept

    def finalize_due_slashes(self, now_s: float) -> list[str]:
        """Make final every queued ledger slash whose cancel window closed by ``now_s``; returns their ids."""
        with Session(self.engine) as s:
            due = list(s.scalars(text("SELECT id FROM ledger_slashes WHERE status = 'pending' AND final_after_s <= :now "
                                      "ORDER BY id"), {"now": now_s}))
        for slash_id in due:
            with WriteTx(self.engine, self._lock) as s:
                ledger.finalize_slash(s, f"final:{slash_id}", slash_id, now_s)
        return due

    def send_slashes(self) -> dict[str, str]:
        """``Vault.slash`` for every final ledger slash not yet sent; returns slash id -> ``sent`` | ``failed``."""
        with Session(self.engine) as s:
            rows = s.execute(text(
                "SELECT sl.id, sl.provider, sl.amount_wei, sl.burn_wei, p.address FROM ledger_slashes sl "
                "JOIN providers p ON p.name = sl.provider WHERE sl.status = 'final' "
                "AND sl.id NOT IN (SELECT slash_id FROM vault_slashes) ORDER BY sl.id")).all()
        out: dict[str, str] = {}
        for slash_id, _provider, amount, burn, address in rows:
            ref = slash_ref(slash_id)
            with WriteTx(self.engine, self._lock) as s:  # recorded first: the watcher knows the ref is ours
                s.add(VaultSlash(slash_id=slash_id, vault=self.vault.address, provider_address=address, ref=ref,
                                 amount_wei=int(amount), burn_wei=int(burn), status="sent"))
            try:
                receipt = self.vault.slash(self.operator_key, address, int(amount), int(burn), bytes.fromhex(ref[2:]))
                status, tx, error = "sent", "0x" + bytes(receipt["transactionHash"]).hex(), None
            except ContractReverted as exc:
                status, tx, error = "failed", None, f"{exc.error_name}: {exc}"
                log.warning("on-chain slash %s of %s refused: %s", slash_id, address, error)
            with WriteTx(self.engine, self._lock) as s:
                row = s.get(VaultSlash, slash_id)
                row.status, row.tx_hash, row.error = status, tx, error
            out[slash_id] = status
        return out

    def slash_challenged(self) -> dict[str, str]:
        """``Vault.slashChallenged`` for every settled leaf the Settlement marked BadProof whose fault ref is not
        used on chain yet (one fault, one slash: :mod:`market.settlement.hooks`; anyone may have sent it first).
        Returns ``fault:<job> -> sent | failed``; a provider with no stake left is skipped (``NothingToSlash``)."""
        with Session(self.engine) as s:
            rows = s.scalars(select(LeafRecord).where(LeafRecord.challenge_reason == BAD_PROOF,
                                                      LeafRecord.batch_id.is_not(None))).all()
            todo = [(r.job_ref or r.job_id, r.batch_id, fault_ref(r.batch_id, r.leaf_hash), leaf_from_record(r))
                    for r in rows]
        out: dict[str, str] = {}
        for job, batch_id, ref, leaf in todo:
            if self.vault.call("slashRefUsed", bytes.fromhex(ref[2:])):
                continue
            try:
                self.vault.slash_challenged(self.operator_key, bytes.fromhex(batch_id[2:]), leaf)
                out[f"fault:{job}"] = "sent"
            except ContractReverted as exc:
                if exc.error_name != "NothingToSlash":
                    out[f"fault:{job}"] = "failed"
                    log.warning("slashChallenged of %s refused: %s: %s", job, exc.error_name, exc)
        return out

    def post_root(self, now_s: float, out: EpochResult | None = None) -> EpochResult:
        """Post the cumulative claimable tree when its root differs from the Vault's current root."""
        out = out or EpochResult()
        with Session(self.engine) as s:
            amounts = {to_checksum_address(a): w for a, w in money.cumulative_claimable(s).items()}
        if not amounts:
            return out
        tree = ClaimTree(amounts)
        if self.vault.current_root() == tree.root:
            return out
        epoch = self.vault.current_epoch() + 1
        root = "0x" + tree.root.hex()
        try:
            receipt = self.vault.post_tree(self.operator_key, epoch, tree)
            status, tx, error = "posted", "0x" + bytes(receipt["transactionHash"]).hex(), None
        except ContractReverted as exc:
            status, tx, error = "failed", None, f"{exc.error_name}: {exc}"
            log.warning("epoch %s root refused: %s", epoch, error)
        with WriteTx(self.engine, self._lock) as s:
            s.merge(VaultEpoch(vault=self.vault.address, epoch=epoch, root=root, total_wei=tree.total_wei,
                               leaves={a: str(w) for a, w in tree.amounts.items()}, status=status, tx_hash=tx,
                               error=error, created_at_s=now_s))
        if status == "posted":
            out.epoch, out.root, out.total_wei = epoch, root, tree.total_wei
            self._tree_cache = (root, tree)
        out.error = error
        return out

    # ------------------------------------------------------------------ claims
    def proof(self, address: str) -> ClaimProof | None:
        """The claim of ``address`` against the Vault's current root (None: no leaf for it, or no root yet)."""
        address = to_checksum_address(address)
        root = "0x" + self.vault.current_root().hex()
        tree = self._tree(root)
        if tree is None or address not in tree.amounts:
            return None
        with Session(self.engine) as s:
            epoch = s.scalar(select(VaultEpoch.epoch).where(VaultEpoch.vault == self.vault.address,
                                                            VaultEpoch.root == root, VaultEpoch.status == "posted")
                             .order_by(VaultEpoch.epoch.desc()).limit(1))
        return ClaimProof(address, int(epoch), tree.amounts[address], ["0x" + p.hex() for p in tree.proof(address)],
                          root)

    def _tree(self, root: str) -> ClaimTree | None:
        if self._tree_cache and self._tree_cache[0] == root:
            return self._tree_cache[1]
        with Session(self.engine) as s:
            row = s.scalar(select(VaultEpoch).where(VaultEpoch.vault == self.vault.address, VaultEpoch.root == root,
                                                    VaultEpoch.status == "posted").limit(1))
            if row is None:
                return None
            tree = ClaimTree({a: int(w) for a, w in row.leaves.items()})
        self._tree_cache = (root, tree)
        return tree
