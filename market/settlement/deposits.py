"""The deposit watcher: follows the Vault contract's events into the ledger, after N confirmations, surviving
reorgs and restarts. The only way chain money enters (and, by claims and stake withdrawals, leaves) the ledger.

Per poll (:meth:`VaultWatcher.poll_once`), the same algorithm as the settlement watcher
(:mod:`market.settlement.watcher`), whose checkpoint and seen-block tables it shares under the name
``vault:<address>``:

1. **Reorg check.** If the checkpoint's block hash is no longer canonical, walk the stored block hashes down to the
   common ancestor and undo every event applied above it, newest first (:func:`market.ledger.chain.reverse`):
   a credited deposit is debited back from the account; what the account no longer holds (it spent it) is taken
   from ``debt:<address>``, which flags the address (no new jobs; its next deposits cover the debt first: the debt
   rule of :mod:`market.ledger.chain`). Each undone event is reported: a :class:`VaultReorg` row
   (``reverted_wei``, ``shortfall_wei``), a warning log line and a ``"reverted"`` :class:`VaultWatchedEvent`.
2. **Catch up** from the checkpoint to ``head - confirmations``, in chunks, each one database transaction: every
   log is recorded in ``vault_events`` keyed by ``(block_hash, tx_hash, log_index)`` (a key already there is
   skipped: applied exactly once, even across restarts) and applied to the ledger in the same transaction with
   ledger operation id ``vault:<block_hash>:<tx_hash>:<log_index>``. Events above ``head - confirmations`` are
   not looked at, so a reorg before confirmation never credits anything. An event applied early (below) whose log
   is no longer in its block range when the poll reaches it is undone the same way (``"reverted"``).

The one early path: the DEVELOPMENT faucet of a dev exchange (:meth:`VaultWatcher.apply_receipt`) applies the
events of its own just-mined Vault transaction at once, through the same ``vault_events`` key and ledger operation
id, so its caller can spend right away and the later poll skips them.

Events: ``Deposited`` -> client balance; ``Staked`` -> the provider's bond (by its registered address; parked in
``stake:<address>`` until the address registers a name); ``UnstakeRequested`` -> bond to unbonding (maturing at
the chain's ``maturesAt``); ``StakeWithdrawn`` -> out of unbonding to the vault; ``Claimed`` -> out of
``claimable:<address>`` to the vault; ``Slashed`` -> the burned part out (for a slash the exchange sent) or the
stake taken (for a permissionless ``slashChallenged``, the one slash of a BadProof fault: its unburned part goes
to the client of the job when the exchange settled it, :func:`fault_of_ref`; see :mod:`market.settlement.hooks`). ``EpochRootPosted`` and admin events move no ledger money.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from eth_abi import encode as abi_encode
from eth_utils import event_abi_to_log_topic, keccak, to_checksum_address
from web3.exceptions import BlockNotFound
from sqlalchemy import delete, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from market import ledger
from market.db.models import JobRecord, ProviderRecord
from market.ledger import chain as money
from market.settlement.batching import SettlementError, hex32, unhex
from market.settlement.models import LeafRecord, SeenBlock, WatcherCheckpoint
from market.settlement.vault_models import VaultEvent, VaultReorg, VaultSlash

log = logging.getLogger("raymarket.deposits")

#: Vault events that move ledger money.
MONEY_EVENTS = ("Deposited", "Staked", "UnstakeRequested", "StakeWithdrawn", "Claimed", "Slashed")
#: Blocks without events whose hashes are kept below the checkpoint (for locating the common ancestor).
KEEP_PLAIN_BLOCKS = 64


class DepositWatcherError(SettlementError):
    """Deposit watcher misconfiguration (field named in the message)."""


@dataclass(frozen=True)
class VaultWatcherConfig:
    """Settings of one deposit watcher.

    Attributes:
        from_block: first block to scan (the Vault's deployment block).
        confirmations: blocks on top of an event's block before it is applied (0 = at once; Settings
            ``confirmations``).
        max_blocks_per_poll: chunk size of ``eth_getLogs`` ranges.
    """

    from_block: int = 0
    confirmations: int = 2
    max_blocks_per_poll: int = 1000

    def __post_init__(self) -> None:
        for f in ("from_block", "confirmations"):
            if getattr(self, f) < 0:
                raise DepositWatcherError(f"{f} must be >= 0, got {getattr(self, f)}")
        if self.max_blocks_per_poll < 1:
            raise DepositWatcherError(f"max_blocks_per_poll must be >= 1, got {self.max_blocks_per_poll}")


@dataclass(frozen=True)
class VaultWatchedEvent:
    """One Vault event applied (``action="applied"``) or undone by a reorg (``"reverted"``); for a reverted one,
    ``shortfall_wei`` is what the account no longer held (now its debt)."""

    action: str
    event: str
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    account: str
    amount_wei: int
    shortfall_wei: int = 0


def event_op_id(block_hash: str, tx_hash: str, log_index: int) -> str:
    """The ledger operation id of one Vault log: ``vault:<block_hash>:<tx_hash>:<log_index>``."""
    return f"vault:{block_hash}:{tx_hash}:{log_index}"


def slash_ref(slash_id: str) -> str:
    """The on-chain ``ref`` of a ledger slash the exchange sends (0x keccak256 of the slash id)."""
    return "0x" + keccak(text=slash_id).hex()


def fault_ref(batch_id: str, leaf_hash: str) -> str:
    """The on-chain ``ref`` of a BadProof fault (``Vault.slashChallenged``): 0x ``keccak256(abi.encode(bytes32
    batchId, bytes32 leafHash))``; used once on chain, so one fault is slashed once."""
    return "0x" + keccak(abi_encode(["bytes32", "bytes32"], [unhex(batch_id), unhex(leaf_hash)])).hex()


def fault_of_ref(s: Session, ref: str) -> LeafRecord | None:
    """The challenged settled leaf whose :func:`fault_ref` is ``ref`` (None: not a fault the exchange settled)."""
    rows = s.scalars(select(LeafRecord).where(LeafRecord.challenge_reason.is_not(None),
                                              LeafRecord.batch_id.is_not(None))).all()
    return next((r for r in rows if fault_ref(r.batch_id, r.leaf_hash) == ref), None)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class VaultWatcher:
    """Follows one Vault contract into one ledger database (see the module docstring).

    Args:
        vault: a :class:`contracts.vault.VaultContract`.
        engine: the database (migrated to ``0005_vault``).
        config: :class:`VaultWatcherConfig`.
        emit: called with each :class:`VaultWatchedEvent` after its transaction committed.
        lock: optional context manager factory serialising this process's writers (the service's write lock).
    """

    def __init__(self, vault: Any, engine: Engine, config: VaultWatcherConfig = VaultWatcherConfig(),
                 emit: Callable[[VaultWatchedEvent], None] | None = None, lock: Any = None) -> None:
        self.vault, self.engine, self.config = vault, engine, config
        self.w3 = vault.chain.w3
        self.emit = emit or (lambda e: None)
        self.name = f"vault:{vault.address.lower()}"[:64]
        self._lock = lock
        self._topics: dict[bytes, str] = {}
        for abi in vault.artifact.abi:
            if abi["type"] == "event" and abi["name"] in MONEY_EVENTS:
                self._topics[bytes(event_abi_to_log_topic(abi))] = abi["name"]
        self.last_safe_block: int | None = None

    # ------------------------------------------------------------------ chain reads
    def _canonical_hash(self, number: int) -> str | None:
        try:
            block = self.w3.eth.get_block(number)
        except BlockNotFound:  # the chain is now shorter (any other error, e.g. an RPC timeout, is no reorg: raised,
            return None        # so a paused node never rolls applied Vault events back)
        return hex32(block["hash"])

    def checkpoint(self) -> tuple[int, str | None]:
        """(block number, hash) up to which every confirmed event is applied (``from_block - 1`` before any)."""
        with Session(self.engine) as s:
            cp = s.get(WatcherCheckpoint, self.name)
            return (cp.block_number, cp.block_hash) if cp else (self.config.from_block - 1, None)

    # ------------------------------------------------------------------ polling
    def poll_once(self) -> list[VaultWatchedEvent]:
        """Undo events a reorg removed, then apply every event up to ``head - confirmations``; then move parked
        stake of addresses that registered since. Returns the events reverted and applied, in order."""
        out = self._handle_reorg()
        safe = self.w3.eth.block_number - self.config.confirmations
        while True:
            start = self.checkpoint()[0] + 1
            if start > safe:
                break
            end = min(safe, start + self.config.max_blocks_per_poll - 1)
            applied = self._apply_range(start, end)
            if applied is None:  # the chain moved under us: check for a reorg again
                out += self._handle_reorg()
                break
            out += applied
        self._assign_parked()
        self.last_safe_block = self.checkpoint()[0]
        return out

    def _tx(self):
        return WriteTx(self.engine, self._lock)

    # ------------------------------------------------------------------ apply
    def _apply_range(self, start: int, end: int) -> list[VaultWatchedEvent] | None:
        end_hash = self._canonical_hash(end)
        logs = self.w3.eth.get_logs({"address": self.vault.address, "fromBlock": start, "toBlock": end})
        if end_hash is None or self._canonical_hash(end) != end_hash:
            return None
        decoded = [self._decode(lg) for lg in sorted(logs, key=lambda x: (x["blockNumber"], x["logIndex"]))]
        events = [e for e in decoded if e is not None]
        stamps: dict[int, int] = {}
        for e in events:
            if e[0] == "UnstakeRequested" and e[1] not in stamps:
                stamps[e[1]] = int(self.w3.eth.get_block(e[1])["timestamp"])
        applied: list[VaultWatchedEvent] = []
        with self._tx() as s:
            cp = s.get(WatcherCheckpoint, self.name)
            if (cp.block_number if cp else self.config.from_block - 1) != start - 1:
                return []  # another process advanced the checkpoint meanwhile
            applied += self._undo_vanished(s, start, end, {(e[2], e[3], e[4]) for e in events})
            for e in events:
                w = self._apply(s, e, stamps)
                if w is not None:
                    applied.append(w)
            for e in events:
                s.merge(SeenBlock(watcher=self.name, block_number=e[1], block_hash=e[2]))
            s.merge(SeenBlock(watcher=self.name, block_number=end, block_hash=end_hash))
            s.merge(WatcherCheckpoint(watcher=self.name, block_number=end, block_hash=end_hash))
            self._prune(s, end)
        for w in applied:
            self.emit(w)
        return applied

    def apply_receipt(self, receipt: Any) -> list[VaultWatchedEvent]:
        """Apply the Vault money events of one mined transaction NOW, before its confirmations: the DEVELOPMENT
        faucet's path (:func:`market.exchange.service.money.dev_faucet`), so its caller may spend at once.

        The same path as a poll: each log is recorded in ``vault_events`` under ``(block_hash, tx_hash,
        log_index)`` and applied with ledger operation id :func:`event_op_id`, in one transaction; a key already
        there is skipped. So the poll that later reaches the block skips these logs (never credited twice), and
        a reorg that removes the block is undone by the poll (:meth:`_undo_vanished`, or the reorg walk).
        Returns the events applied now."""
        mine = [lg for lg in receipt["logs"] if to_checksum_address(lg["address"]) == self.vault.address]
        events = [e for e in (self._decode(lg) for lg in sorted(mine, key=lambda x: x["logIndex"])) if e is not None]
        stamps = {e[1]: int(self.w3.eth.get_block(e[1])["timestamp"]) for e in events if e[0] == "UnstakeRequested"}
        applied = []
        with self._tx() as s:
            for e in events:
                w = self._apply(s, e, stamps)
                if w is not None:
                    applied.append(w)
        for w in applied:
            self.emit(w)
        return applied

    def _undo_vanished(self, s: Session, start: int, end: int, keys: set[tuple[str, str, int]]) -> list[VaultWatchedEvent]:
        """Events applied early (:meth:`apply_receipt`) in blocks ``[start, end]`` whose log is not on the
        canonical chain any more (a reorg below the checkpoint's view): undone like a reorg."""
        rows = s.scalars(select(VaultEvent).where(VaultEvent.watcher == self.name, VaultEvent.block_number >= start,
                                                  VaultEvent.block_number <= end)
                         .order_by(VaultEvent.block_number.desc(), VaultEvent.log_index.desc())).all()
        gone = [r for r in rows if (r.block_hash, r.tx_hash, r.log_index) not in keys]
        undone = self._undo(s, gone)
        for w in undone:
            log.warning("reorg undid early-credited %s of %s wei for %s (block %s, %s); shortfall %s wei is now debt",
                        w.event, w.amount_wei, w.account, w.block_number, w.tx_hash, w.shortfall_wei)
        return undone

    def _decode(self, lg: Any) -> tuple | None:
        name = self._topics.get(bytes(lg["topics"][0])) if lg["topics"] else None
        if name is None:
            return None
        args = dict(getattr(self.vault.contract.events, name)().process_log(lg)["args"])
        return (name, lg["blockNumber"], hex32(lg["blockHash"]), hex32(lg["transactionHash"]), lg["logIndex"], args)

    def _provider_of(self, s: Session, address: str) -> str | None:
        return s.scalar(select(ProviderRecord.name).where(ProviderRecord.address == address)
                        .order_by(ProviderRecord.name).limit(1))

    def _apply(self, s: Session, e: tuple, stamps: dict[int, int]) -> VaultWatchedEvent | None:
        name, number, bhash, txh, idx, args = e
        if s.get(VaultEvent, (bhash, txh, idx)) is not None:
            return None
        who = to_checksum_address(args.get("account") or args.get("provider"))
        amount = int(args["amount"])
        op_id = event_op_id(bhash, txh, idx)
        s.add(VaultEvent(block_hash=bhash, tx_hash=txh, log_index=idx, watcher=self.name, block_number=number,
                         event=name, account=who, amount_wei=amount, op_id=op_id,
                         payload={k: _jsonable(v) for k, v in args.items()}))
        s.flush()
        if name == "Deposited":
            money.credit_deposit(s, op_id, who, amount)
        elif name == "Staked":
            money.credit_stake(s, op_id, who, self._provider_of(s, who), amount)
        elif name == "UnstakeRequested":
            provider = self._provider_of(s, who)
            if provider is not None:
                money.request_unstake(s, op_id, who, provider, amount, float(stamps.get(number, time.time())),
                                      float(args["maturesAt"]))
        elif name == "StakeWithdrawn":
            money.stake_withdrawn(s, op_id, who, self._provider_of(s, who), amount)
        elif name == "Claimed":
            money.claimed(s, op_id, who, amount)
        elif name == "Slashed":
            ref = _jsonable(args["ref"])
            ours = s.scalar(select(VaultSlash.slash_id).where(VaultSlash.ref == ref).limit(1)) is not None
            money.slash_onchain(s, op_id, who, self._provider_of(s, who), amount, int(args["burned"]), ours)
            if not ours:
                self._client_share(s, op_id, ref, int(args["toPool"]))
        return VaultWatchedEvent("applied", name, number, bhash, txh, idx, who, amount)

    def _client_share(self, s: Session, op_id: str, ref: str, to_pool_wei: int) -> None:
        """A ``slashChallenged`` of a job the exchange settled: the unburned part goes from the slash pool to the
        job's client (spendable, withdrawable); other foreign slashes stay in the pool."""
        leaf = fault_of_ref(s, ref)
        job = s.get(JobRecord, leaf.job_ref) if leaf is not None and leaf.job_ref else None
        if job is None or to_pool_wei <= 0:
            return
        ledger.open_client(s, job.client)
        ledger.transfer(s, f"fault-share:{op_id}", money.SLASH_POOL_ACCOUNT, ledger.client_account(job.client),
                        to_pool_wei, kind="slash_share", job_id=job.job_id)

    def _assign_parked(self) -> None:
        with Session(self.engine) as s:
            parked = s.execute(text("SELECT id FROM ledger_accounts WHERE id LIKE 'stake:%' AND balance_wei > 0")).all()
        for (account_id,) in parked:
            address = account_id.split(":", 1)[1]
            with self._tx() as s:
                provider = self._provider_of(s, address)
                if provider is None:
                    continue
                last = s.scalar(text("SELECT max(seq) FROM ledger_transfers WHERE credit_account_id = :a"),
                                {"a": account_id})
                money.assign_parked_stake(s, f"stake-assign:{address}:{last}", address, provider)

    # ------------------------------------------------------------------ reorgs
    def _handle_reorg(self) -> list[VaultWatchedEvent]:
        with self._tx() as s:
            cp = s.get(WatcherCheckpoint, self.name)
            if cp is None or self._canonical_hash(cp.block_number) == cp.block_hash:
                return []
            ancestor = self._common_ancestor(s)
            undone = self._rollback(s, ancestor)
        for w in undone:
            log.warning("reorg undid %s of %s wei for %s in block %s (%s); shortfall %s wei is now debt",
                        w.event, w.amount_wei, w.account, w.block_number, w.tx_hash, w.shortfall_wei)
            self.emit(w)
        return undone

    def _common_ancestor(self, s: Session) -> int:
        seen = s.scalars(select(SeenBlock).where(SeenBlock.watcher == self.name)
                         .order_by(SeenBlock.block_number.desc())).all()
        for block in seen:
            if self._canonical_hash(block.block_number) == block.block_hash:
                return block.block_number
        return self.config.from_block - 1

    def _rollback(self, s: Session, ancestor: int) -> list[VaultWatchedEvent]:
        rows = s.scalars(select(VaultEvent).where(VaultEvent.watcher == self.name, VaultEvent.block_number > ancestor)
                         .order_by(VaultEvent.block_number.desc(), VaultEvent.log_index.desc())).all()
        undone = self._undo(s, rows)
        s.execute(delete(SeenBlock).where(SeenBlock.watcher == self.name, SeenBlock.block_number > ancestor))
        cp = s.get(WatcherCheckpoint, self.name)
        anchor = s.get(SeenBlock, (self.name, ancestor))
        if anchor is None:
            s.delete(cp)
        else:
            cp.block_number, cp.block_hash = ancestor, anchor.block_hash
        s.flush()
        return undone

    def _undo(self, s: Session, rows: list[VaultEvent]) -> list[VaultWatchedEvent]:
        """Reverse the ledger moves of ``rows`` (newest first), record a :class:`VaultReorg` each, drop the rows."""
        undone, now = [], time.time()
        for row in rows:
            share = s.execute(text("SELECT credit_account_id FROM ledger_transfers WHERE op_id = :op"),
                              {"op": f"fault-share:{row.op_id}"}).first()
            if share is not None:  # the client's share of a foreign slash goes back first
                money.reverse(s, f"reorg:fault-share:{row.op_id}", f"fault-share:{row.op_id}",
                              share[0].split(":", 1)[1])
            moved = s.scalar(text("SELECT count(*) FROM ledger_transfers WHERE op_id = :op"), {"op": row.op_id})
            shortfall = 0
            if moved:
                shortfall = money.reverse(s, f"reorg:{row.op_id}", row.op_id, row.account).shortfall_wei
            s.add(VaultReorg(watcher=self.name, block_number=row.block_number, block_hash=row.block_hash,
                             tx_hash=row.tx_hash, log_index=row.log_index, event=row.event, account=row.account,
                             reverted_wei=row.amount_wei, shortfall_wei=shortfall, detected_at_s=now))
            undone.append(VaultWatchedEvent("reverted", row.event, row.block_number, row.block_hash, row.tx_hash,
                                            row.log_index, row.account, row.amount_wei, shortfall))
            s.delete(row)
        s.flush()
        return undone

    def _prune(self, s: Session, end: int) -> None:
        event_blocks = select(VaultEvent.block_number).where(VaultEvent.watcher == self.name)
        s.execute(delete(SeenBlock).where(SeenBlock.watcher == self.name,
                                          SeenBlock.block_number < end - KEEP_PLAIN_BLOCKS,
                                          SeenBlock.block_number.not_in(event_blocks)))


class WriteTx:
    """``with WriteTx(engine, lock) as s``: one committed write transaction (rolled back on error), under ``lock``
    (a threading lock, or None) when given."""

    def __init__(self, engine: Engine, lock: Any) -> None:
        self.engine, self.lock = engine, lock

    def __enter__(self) -> Session:
        if self.lock is not None:
            self.lock.acquire()
        self.s = Session(self.engine)
        self.t = self.s.begin()
        return self.s

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.t.commit()
            else:
                self.t.rollback()
        finally:
            self.s.close()
            if self.lock is not None:
                self.lock.release()
