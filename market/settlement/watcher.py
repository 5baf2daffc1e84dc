"""The settlement watcher: follows the Settlement contract's events and reconciles them with the database,
surviving reorgs and restarts.

Per poll (:meth:`Watcher.poll_once`):

1. **Reorg check.** The block hashes the watcher relied on (its checkpoint and every block holding an applied
   event) are in ``settlement_seen_blocks``. If the checkpoint's hash is no longer canonical, walk the stored
   blocks downwards to the highest one still canonical (the common ancestor), undo every event applied above
   it (newest first, calling the ``*_reverted`` hooks) and rewind the checkpoint there. anvil and geth
   deliver no ``removed: true`` logs to polling clients, so the watcher tracks hashes itself.
2. **Catch up** from the checkpoint to ``head - confirmations`` in chunks; each chunk is one database
   transaction: its events are recorded in ``settlement_applied_events`` keyed by ``(block_hash, tx_hash,
   log_index)`` (a log already there is skipped, so a replay never applies twice), the hooks run in the same
   transaction, and the checkpoint moves to the chunk's last block. A crash anywhere leaves either the whole
   chunk applied or none of it, so a restarted watcher applies every event exactly once.

Hooks (registered by the exchange; the money-moving ones are :mod:`market.settlement.hooks`), all called
inside the watcher's transaction with its session:
``on_batch_settled(session, batch_id, job_ids)``, ``on_batch_reverted(session, batch_id, job_ids)``,
``on_batch_finalized(session, batch_id, job_ids)``, ``on_leaf_challenged(session, job_id, provider, reason)``,
``on_challenge_reverted(session, job_id, provider, reason)``. ``batch_id`` is 0x-hex; ``job_ids`` are the
exchange's ids (``job_ref``) where known, else the attestation's 0x bytes32 job id; ``reason`` is
``"bad_signature" | "bad_proof" | "duplicate"``. The settling transaction of a batch is
``session.get(BatchRecord, batch_id).tx_hash``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from eth_utils import event_abi_to_log_topic
from web3.exceptions import BlockNotFound
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from market.settlement.batching import SettlementError, batch_job_refs, hex32
from market.settlement.models import (AppliedEvent, BatchRecord, BatchStatus, LeafRecord, SeenBlock,
                                      WatcherCheckpoint)

EVENTS = ("BatchSubmitted", "LeafChallenged", "BatchFinalized")
CHALLENGE_REASONS = {1: "bad_signature", 2: "bad_proof", 3: "duplicate"}
#: Blocks without events whose hashes are kept below the checkpoint (for locating the common ancestor).
KEEP_PLAIN_BLOCKS = 64

BatchHook = Callable[[Session, str, list[str]], None]
LeafHook = Callable[[Session, str, str, str], None]


class WatcherError(SettlementError):
    """Watcher misconfiguration (field named in the message)."""


@dataclass(frozen=True)
class WatcherConfig:
    """Settings of one watcher.

    Attributes:
        from_block: first block to scan (the contract's deployment block is a good choice).
        confirmations: blocks below the head before an event is applied (0 = apply at once).
        max_blocks_per_poll: chunk size of ``eth_getLogs`` ranges.
        poll_interval_s: sleep between polls in :meth:`Watcher.run`.
        name: checkpoint key; default the contract address.
    """

    from_block: int = 0
    confirmations: int = 2
    max_blocks_per_poll: int = 1000
    poll_interval_s: float = 1.0
    name: str | None = None

    def __post_init__(self) -> None:
        for f in ("from_block", "confirmations"):
            if getattr(self, f) < 0:
                raise WatcherError(f"{f} must be >= 0, got {getattr(self, f)}")
        if self.max_blocks_per_poll < 1:
            raise WatcherError(f"max_blocks_per_poll must be >= 1, got {self.max_blocks_per_poll}")


@dataclass
class WatcherHooks:
    """Lists of callbacks per event (see the module docstring for signatures)."""

    on_batch_settled: list[BatchHook] = field(default_factory=list)
    on_batch_reverted: list[BatchHook] = field(default_factory=list)
    on_batch_finalized: list[BatchHook] = field(default_factory=list)
    on_leaf_challenged: list[LeafHook] = field(default_factory=list)
    on_challenge_reverted: list[LeafHook] = field(default_factory=list)

    def register(self, **hooks: Callable[..., None]) -> "WatcherHooks":
        """``hooks.register(on_batch_settled=fn, ...)``; unknown names raise :class:`WatcherError`."""
        for name, fn in hooks.items():
            if not hasattr(self, name):
                raise WatcherError(f"unknown hook {name!r}; known: {', '.join(self.__dataclass_fields__)}")
            getattr(self, name).append(fn)
        return self


@dataclass(frozen=True)
class WatchedEvent:
    """One event applied (``action="applied"``) or undone by a reorg (``action="reverted"``)."""

    action: str
    event: str
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    batch_id: str
    args: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "event": self.event, "block_number": self.block_number,
                "block_hash": self.block_hash, "tx_hash": self.tx_hash, "log_index": self.log_index,
                "batch_id": self.batch_id, "args": self.args}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return value


class Watcher:
    """Follows one Settlement contract into one database (see the module docstring).

    Args:
        settlement: a :class:`contracts.bindings.SettlementContract` (its chain is used for RPC).
        engine: the database holding the settlement tables.
        emit: called with each :class:`WatchedEvent` after its transaction committed.
    """

    def __init__(self, settlement: Any, engine: Engine, config: WatcherConfig = WatcherConfig(),
                 hooks: WatcherHooks | None = None, emit: Callable[[WatchedEvent], None] | None = None) -> None:
        self.settlement, self.engine, self.config = settlement, engine, config
        self.w3 = settlement.chain.w3
        self.hooks = hooks or WatcherHooks()
        self.emit = emit or (lambda e: None)
        self.name = (config.name or settlement.address.lower())[:64]
        self._topics = {self._topic(e): e for e in EVENTS}

    def _topic(self, event: str) -> bytes:
        abi = next(a for a in self.settlement.artifact.abi if a["type"] == "event" and a["name"] == event)
        return bytes(event_abi_to_log_topic(abi))

    # ------------------------------------------------------------------ chain reads
    def _canonical_hash(self, number: int) -> str | None:
        try:
            block = self.w3.eth.get_block(number)
        except BlockNotFound:  # the chain is now shorter (any other error, e.g. a timeout, is no reorg: raised)
            return None
        return hex32(block["hash"])

    # ------------------------------------------------------------------ polling
    def poll_once(self) -> list[WatchedEvent]:
        """Check for a reorg, then apply every confirmed event up to ``head - confirmations``.

        Returns:
            The events reverted and applied, in order.
        """
        out = self._handle_reorg()
        safe = self.w3.eth.block_number - self.config.confirmations
        while True:
            start = self._checkpoint_number() + 1
            if start > safe:
                return out
            end = min(safe, start + self.config.max_blocks_per_poll - 1)
            applied = self._apply_range(start, end)
            if applied is None:  # the chain moved under us: check for a reorg again next round
                return out + self._handle_reorg()
            out += applied

    def run(self, stop: threading.Event | None = None, max_polls: int | None = None) -> None:
        """Poll until ``stop`` is set (or ``max_polls`` polls)."""
        polls = 0
        while not (stop and stop.is_set()) and (max_polls is None or polls < max_polls):
            self.poll_once()
            polls += 1
            if stop:
                stop.wait(self.config.poll_interval_s)
            else:
                time.sleep(self.config.poll_interval_s)

    def _checkpoint_number(self) -> int:
        with Session(self.engine) as s:
            cp = s.get(WatcherCheckpoint, self.name)
            return cp.block_number if cp else self.config.from_block - 1

    # ------------------------------------------------------------------ apply
    def _apply_range(self, start: int, end: int) -> list[WatchedEvent] | None:
        end_hash = self._canonical_hash(end)
        logs = self.w3.eth.get_logs({"address": self.settlement.address, "fromBlock": start, "toBlock": end})
        if end_hash is None or self._canonical_hash(end) != end_hash:
            return None
        events = [self._decode(log) for log in sorted(logs, key=lambda l: (l["blockNumber"], l["logIndex"]))]
        events = [e for e in events if e is not None]
        with Session(self.engine) as s, s.begin():
            cp = s.get(WatcherCheckpoint, self.name)
            if (cp.block_number if cp else self.config.from_block - 1) != start - 1:
                return []  # another process advanced the checkpoint meanwhile
            applied = [e for e in events if self._apply(s, e)]
            for e in events:
                s.merge(SeenBlock(watcher=self.name, block_number=e.block_number, block_hash=e.block_hash))
            s.merge(SeenBlock(watcher=self.name, block_number=end, block_hash=end_hash))
            s.merge(WatcherCheckpoint(watcher=self.name, block_number=end, block_hash=end_hash))
            self._prune(s, end)
        for e in applied:
            self.emit(e)
        return applied

    def _decode(self, log: Any) -> WatchedEvent | None:
        name = self._topics.get(bytes(log["topics"][0])) if log["topics"] else None
        if name is None:
            return None
        decoded = getattr(self.settlement.contract.events, name)().process_log(log)
        args = {k: _jsonable(v) for k, v in decoded["args"].items()}
        return WatchedEvent("applied", name, log["blockNumber"], hex32(log["blockHash"]),
                            hex32(log["transactionHash"]), log["logIndex"], args["batchId"], args)

    def _apply(self, s: Session, e: WatchedEvent) -> bool:
        if s.get(AppliedEvent, (e.block_hash, e.tx_hash, e.log_index)) is not None:
            return False
        s.add(AppliedEvent(block_hash=e.block_hash, tx_hash=e.tx_hash, log_index=e.log_index, watcher=self.name,
                           block_number=e.block_number, event=e.event, batch_id=e.batch_id,
                           job_id=e.args.get("jobId"), payload=e.args))
        s.flush()
        getattr(self, f"_on_{e.event}")(s, e)
        return True

    def _on_BatchSubmitted(self, s: Session, e: WatchedEvent) -> None:  # noqa: N802
        batch = s.get(BatchRecord, e.batch_id)
        if batch is None:
            batch = BatchRecord(batch_id=e.batch_id, root=e.args["root"], leaf_count=e.args["leafCount"],
                                total_paid_wei=e.args["totalPaidWei"], status=BatchStatus.EXTERNAL.value,
                                challenged_count=0)
            s.add(batch)
        elif batch.status in (BatchStatus.BUILT.value, BatchStatus.SENT.value):
            batch.status = BatchStatus.ONCHAIN.value
        batch.tx_hash, batch.block_number, batch.block_hash = e.tx_hash, e.block_number, e.block_hash
        batch.deadline_block = e.args["deadlineBlock"]
        s.flush()
        for hook in self.hooks.on_batch_settled:
            hook(s, e.batch_id, batch_job_refs(s, e.batch_id))

    def _on_BatchFinalized(self, s: Session, e: WatchedEvent) -> None:  # noqa: N802
        batch = s.get(BatchRecord, e.batch_id)
        if batch is not None and batch.status != BatchStatus.EXTERNAL.value:
            batch.status = BatchStatus.FINALIZED.value
        for hook in self.hooks.on_batch_finalized:
            hook(s, e.batch_id, batch_job_refs(s, e.batch_id))

    def _on_LeafChallenged(self, s: Session, e: WatchedEvent) -> None:  # noqa: N802
        reason = CHALLENGE_REASONS.get(e.args["reason"], str(e.args["reason"]))
        leaf = s.get(LeafRecord, e.args["jobId"])
        job = e.args["jobId"]
        if leaf is not None and leaf.batch_id == e.batch_id:
            leaf.challenge_reason = e.args["reason"]
            job = leaf.job_ref or leaf.job_id
        batch = s.get(BatchRecord, e.batch_id)
        if batch is not None:
            batch.challenged_count += 1
        for hook in self.hooks.on_leaf_challenged:
            hook(s, job, e.args["provider"], reason)

    # ------------------------------------------------------------------ reorgs
    def _handle_reorg(self) -> list[WatchedEvent]:
        with Session(self.engine) as s, s.begin():
            cp = s.get(WatcherCheckpoint, self.name)
            if cp is None or self._canonical_hash(cp.block_number) == cp.block_hash:
                return []
            ancestor = self._common_ancestor(s)
            undone = self._rollback(s, ancestor)
        for e in undone:
            self.emit(e)
        return undone

    def _common_ancestor(self, s: Session) -> int:
        seen = s.scalars(select(SeenBlock).where(SeenBlock.watcher == self.name)
                         .order_by(SeenBlock.block_number.desc())).all()
        for block in seen:
            if self._canonical_hash(block.block_number) == block.block_hash:
                return block.block_number
        return self.config.from_block - 1

    def _rollback(self, s: Session, ancestor: int) -> list[WatchedEvent]:
        rows = s.scalars(select(AppliedEvent).where(AppliedEvent.watcher == self.name,
                                                    AppliedEvent.block_number > ancestor)
                         .order_by(AppliedEvent.block_number.desc(), AppliedEvent.log_index.desc())).all()
        undone = []
        for row in rows:
            e = WatchedEvent("reverted", row.event, row.block_number, row.block_hash, row.tx_hash, row.log_index,
                             row.batch_id, dict(row.payload))
            getattr(self, f"_undo_{row.event}")(s, e)
            s.delete(row)
            undone.append(e)
        s.execute(delete(SeenBlock).where(SeenBlock.watcher == self.name, SeenBlock.block_number > ancestor))
        cp = s.get(WatcherCheckpoint, self.name)
        anchor = s.get(SeenBlock, (self.name, ancestor))
        if anchor is None:
            s.delete(cp)
        else:
            cp.block_number, cp.block_hash = ancestor, anchor.block_hash
        s.flush()
        return undone

    def _undo_BatchSubmitted(self, s: Session, e: WatchedEvent) -> None:  # noqa: N802
        batch = s.get(BatchRecord, e.batch_id)
        jobs = batch_job_refs(s, e.batch_id)
        for hook in self.hooks.on_batch_reverted:
            hook(s, e.batch_id, jobs)
        if batch is None:
            return
        if batch.status == BatchStatus.EXTERNAL.value:
            s.delete(batch)
            return
        batch.status = BatchStatus.BUILT.value  # the settler resubmits it (same id, same root)
        batch.tx_hash = batch.block_number = batch.block_hash = batch.deadline_block = None

    def _undo_BatchFinalized(self, s: Session, e: WatchedEvent) -> None:  # noqa: N802
        batch = s.get(BatchRecord, e.batch_id)
        if batch is not None and batch.status == BatchStatus.FINALIZED.value:
            batch.status = BatchStatus.ONCHAIN.value

    def _undo_LeafChallenged(self, s: Session, e: WatchedEvent) -> None:  # noqa: N802
        leaf = s.get(LeafRecord, e.args["jobId"])
        job = e.args["jobId"]
        if leaf is not None and leaf.batch_id == e.batch_id:
            leaf.challenge_reason = None
            job = leaf.job_ref or leaf.job_id
        batch = s.get(BatchRecord, e.batch_id)
        if batch is not None:
            batch.challenged_count -= 1
        for hook in self.hooks.on_challenge_reverted:
            hook(s, job, e.args["provider"], CHALLENGE_REASONS.get(e.args["reason"], str(e.args["reason"])))

    def _prune(self, s: Session, end: int) -> None:
        """Forget hashes of event-free blocks far below the checkpoint (event blocks are kept for rollbacks)."""
        event_blocks = select(AppliedEvent.block_number).where(AppliedEvent.watcher == self.name)
        s.execute(delete(SeenBlock).where(SeenBlock.watcher == self.name,
                                          SeenBlock.block_number < end - KEEP_PLAIN_BLOCKS,
                                          SeenBlock.block_number.not_in(event_blocks)))
