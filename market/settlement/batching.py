"""Settlement batching: accumulate attested jobs, close batches by size or by deterministic time windows,
and submit one transaction per batch, idempotently.

Windows: a leaf added at ``t`` belongs to window ``floor(t / window_s)``; the window's batch closes when it
reaches ``max_batch_size`` leaves or once ``now_s >= (window + 1) * window_s`` (the fixed boundary), so the
same arrivals always give the same batches. A batch's id is ``keccak256(abi.encode("raymarket.batch.v1",
contract, window, seq))``: a retry after a crash or a reorg re-sends the same id and root, and the contract's
``BatchAlreadySubmitted`` reply is taken as done (``BatchIdConflict`` is a real error).

Functions take the SQLAlchemy session first; :class:`Settler` opens sessions at the edge and commits after
each on-chain submission.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_hash.auto import keccak
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from contracts.attestation import (Attestation, AttestationLeaf, Eip712Domain, JobKind, SignedAttestation,
                                   Verification)
from contracts.errors import ContractReverted
from contracts.merkle import MerkleTree, build_tree
from market.settlement.models import BatchRecord, BatchStatus, LeafRecord

BATCH_ID_TAG = "raymarket.batch.v1"


class SettlementError(Exception):
    """Root of settlement (batching, watcher) errors."""


class DuplicateAttestation(SettlementError):
    """A job id was already accumulated with a different leaf (``job_id`` hex, both leaf hashes)."""

    def __init__(self, job_id: str, existing_leaf: str, new_leaf: str) -> None:
        super().__init__(f"job {job_id} already attested with leaf {existing_leaf}, not {new_leaf}; "
                         f"an attested job settles once")
        self.job_id, self.existing_leaf, self.new_leaf = job_id, existing_leaf, new_leaf


class BatchConflict(SettlementError):
    """The contract holds this batch id with another root (``batch_id``, ``onchain_root`` hex)."""

    def __init__(self, batch_id: str, onchain_root: str) -> None:
        super().__init__(f"batch {batch_id} is on chain with root {onchain_root}, not ours; "
                         f"is another settler using this contract and database?")
        self.batch_id, self.onchain_root = batch_id, onchain_root


class UnknownJob(SettlementError, KeyError):
    """No leaf for this job (``job``: the exchange id or the 0x bytes32 given)."""

    def __init__(self, job: str) -> None:
        super().__init__(f"no attestation for job {job!r} in the settlement tables")
        self.job = job


@dataclass(frozen=True)
class BatchingPolicy:
    """When batches close.

    Attributes:
        max_batch_size: a batch closes as soon as it has this many leaves (>= 1).
        window_s: length of the deterministic batching window, seconds (> 0).
    """

    max_batch_size: int = 1000
    window_s: float = 30.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_batch_size, int) or self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be an int >= 1, got {self.max_batch_size!r}")
        if not self.window_s > 0:
            raise ValueError(f"window_s must be > 0 seconds, got {self.window_s!r}")


def hex32(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def unhex(s: str) -> bytes:
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


def window_index(t_s: float, window_s: float) -> int:
    """``floor(t_s / window_s)``: the batching window of time ``t_s``."""
    return math.floor(t_s / window_s)


def batch_id_for(contract: str, window: int, seq: int) -> bytes:
    """Deterministic 32-byte batch id of the ``seq``-th batch of ``window`` for ``contract``."""
    return keccak(abi_encode(["string", "address", "int256", "uint256"], [BATCH_ID_TAG, contract, window, seq]))


# ---------------------------------------------------------------------- accumulate
def add_attestation(s: Session, leaf: AttestationLeaf, *, added_at_s: float, job_ref: str | None = None) -> LeafRecord:
    """Accumulate one signed attestation for batching. Idempotent for the same leaf.

    Args:
        leaf: the signed attestation (and proof commitment for proof jobs).
        added_at_s: arrival time (Unix seconds); decides its window.
        job_ref: the exchange's job id, passed to the watcher hooks.
    Raises:
        DuplicateAttestation: the job id is already held with a different leaf.
    """
    att, leaf_hash = leaf.signed.attestation, hex32(leaf.hash)
    existing = s.get(LeafRecord, hex32(att.job_id))
    if existing is not None:
        if existing.leaf_hash != leaf_hash:
            raise DuplicateAttestation(existing.job_id, existing.leaf_hash, leaf_hash)
        return existing
    record = LeafRecord(
        job_id=hex32(att.job_id), job_ref=job_ref, leaf_hash=leaf_hash, input_hash=hex32(att.input_hash),
        result_hash=hex32(att.result_hash), provider=att.provider, price_wei=att.price_wei, kind=int(att.kind),
        verification=int(att.verification), sample_rate_ppm=att.sample_rate_ppm,
        signature=hex32(leaf.signed.signature), proof_commitment=hex32(leaf.proof_commitment),
        chain_id=leaf.signed.domain.chain_id, contract=leaf.signed.domain.verifying_contract,
        added_at_s=added_at_s)
    s.add(record)
    s.flush()
    return record


def leaf_from_record(r: LeafRecord) -> AttestationLeaf:
    """Rebuild the :class:`AttestationLeaf` a row stores."""
    att = Attestation(unhex(r.job_id), unhex(r.input_hash), unhex(r.result_hash), r.provider, r.price_wei,
                      JobKind(r.kind), Verification(r.verification), int(r.sample_rate_ppm))
    signed = SignedAttestation(att, unhex(r.signature), Eip712Domain(r.chain_id, r.contract))
    return AttestationLeaf(signed, unhex(r.proof_commitment))


# ---------------------------------------------------------------------- close batches
def _close(s: Session, contract: str, window: int, leaves: Sequence[LeafRecord], now_s: float) -> BatchRecord:
    seq = s.scalar(select(func.count()).select_from(BatchRecord).where(BatchRecord.window_index == window))
    tree = build_tree([unhex(r.leaf_hash) for r in leaves])
    batch = BatchRecord(batch_id=hex32(batch_id_for(contract, window, seq)), root=hex32(tree.root),
                        leaf_count=len(leaves), total_paid_wei=sum(r.price_wei for r in leaves),
                        window_index=window, seq=seq, status=BatchStatus.BUILT.value, closed_at_s=now_s,
                        challenged_count=0)
    s.add(batch)
    s.flush()
    for i, r in enumerate(leaves):
        r.batch_id, r.leaf_index = batch.batch_id, i
    s.flush()
    return batch


def close_due_batches(s: Session, policy: BatchingPolicy, contract: str, now_s: float) -> list[BatchRecord]:
    """Close every batch that is due at ``now_s``: full ones (``max_batch_size``) and ended windows.

    Leaves are taken in ``(added_at_s, job_id)`` order, so the result is deterministic.
    Returns:
        The new batches (status ``built``), in window then sequence order.
    """
    pending = s.scalars(select(LeafRecord).where(LeafRecord.batch_id.is_(None), LeafRecord.contract == contract)
                        .order_by(LeafRecord.added_at_s, LeafRecord.job_id)).all()
    by_window: dict[int, list[LeafRecord]] = {}
    for r in pending:
        by_window.setdefault(window_index(r.added_at_s, policy.window_s), []).append(r)
    closed = []
    for window, leaves in sorted(by_window.items()):
        ended = now_s >= (window + 1) * policy.window_s
        while len(leaves) >= policy.max_batch_size or (ended and leaves):
            chunk, leaves = leaves[:policy.max_batch_size], leaves[policy.max_batch_size:]
            closed.append(_close(s, contract, window, chunk, now_s))
    return closed


# ---------------------------------------------------------------------- submit
def submit_batch(s: Session, settlement: Any, operator_key: str | bytes, batch: BatchRecord) -> BatchRecord:
    """Send ``batch`` (status ``built``) in one transaction; ``sent`` afterwards. Idempotent.

    A contract reply ``BatchAlreadySubmitted`` (a retry of a batch that landed) counts as sent.
    Raises:
        BatchConflict: the id is on chain with another root.
        contracts.errors.ContractReverted: any other revert (e.g. ``NotOperator``).
    """
    try:
        receipt = settlement.submit_batch(operator_key, unhex(batch.batch_id), unhex(batch.root), batch.leaf_count,
                                          batch.total_paid_wei)
        batch.tx_hash = hex32(receipt["transactionHash"])
    except ContractReverted as exc:
        if exc.error_name == "BatchIdConflict":
            raise BatchConflict(batch.batch_id, hex32(exc.error_args[1])) from None
        if exc.error_name != "BatchAlreadySubmitted":
            raise
    if batch.status == BatchStatus.BUILT.value:
        batch.status = BatchStatus.SENT.value
    return batch


@dataclass
class Settler:
    """Drives batching for one Settlement deployment: ``flush(now_s)`` closes due batches and submits them.

    Attributes:
        engine: the database; settlement: a :class:`contracts.bindings.SettlementContract`;
        operator_key: the operator's key (hex); policy: :class:`BatchingPolicy`.
    """

    engine: Engine
    settlement: Any
    operator_key: str
    policy: BatchingPolicy = BatchingPolicy()

    def add(self, leaf: AttestationLeaf, *, job_ref: str | None = None, added_at_s: float | None = None) -> str:
        """Accumulate ``leaf`` (own transaction); returns its job id hex."""
        with Session(self.engine) as s, s.begin():
            return add_attestation(s, leaf, added_at_s=time.time() if added_at_s is None else added_at_s,
                                   job_ref=job_ref).job_id

    def flush(self, now_s: float | None = None) -> list[str]:
        """Close due batches, then submit every ``built`` batch (one transaction and one commit each).

        Returns:
            Ids (hex) of the batches submitted in this call (including retried ones).
        """
        now_s = time.time() if now_s is None else now_s
        with Session(self.engine) as s, s.begin():
            close_due_batches(s, self.policy, self.settlement.address, now_s)
        return self.submit_pending()

    def reconcile_sent(self) -> list[str]:
        """Send ``sent`` batches that the chain no longer holds back to ``built``.

        A ``sent`` batch's transaction was mined, but the watcher has not applied its event yet (it waits for
        confirmations); a reorg in that gap drops it without the watcher noticing. One ``getBatch`` view per
        ``sent`` batch. Returns the ids sent back to ``built``.
        """
        with Session(self.engine) as s, s.begin():
            sent = s.scalars(select(BatchRecord).join(LeafRecord, LeafRecord.batch_id == BatchRecord.batch_id)
                             .where(BatchRecord.status == BatchStatus.SENT.value,
                                    LeafRecord.contract == self.settlement.address).distinct()).all()
            dropped = [b for b in sent if not self.settlement.get_batch(unhex(b.batch_id)).exists]
            for b in dropped:
                b.status, b.tx_hash = BatchStatus.BUILT.value, None
            return [b.batch_id for b in dropped]

    def submit_pending(self) -> list[str]:
        """Submit every ``built`` batch of this contract, oldest first (after a crash or a reorg too)."""
        # a reorg may have dropped our transactions: re-read the nonce rather than trust the cache
        self.settlement.chain.forget_nonce(Account.from_key(self.operator_key).address)
        self.reconcile_sent()
        with Session(self.engine) as s:
            ids = s.scalars(select(BatchRecord.batch_id).join(LeafRecord, LeafRecord.batch_id == BatchRecord.batch_id)
                            .where(BatchRecord.status == BatchStatus.BUILT.value,
                                   LeafRecord.contract == self.settlement.address)
                            .group_by(BatchRecord.batch_id, BatchRecord.window_index, BatchRecord.seq)
                            .order_by(BatchRecord.window_index, BatchRecord.seq)).all()
        for batch_id in ids:
            with Session(self.engine) as s, s.begin():
                submit_batch(s, self.settlement, self.operator_key, s.get(BatchRecord, batch_id))
        return list(ids)


# ---------------------------------------------------------------------- inclusion
@dataclass(frozen=True)
class Inclusion:
    """A job's leaf and its Merkle proof in its batch.

    Attributes:
        leaf: the row; batch: its batch row; proof: sibling hashes (32 bytes each); root: the batch root.
    """

    leaf: LeafRecord
    batch: BatchRecord
    proof: list[bytes]
    tree: MerkleTree

    @property
    def root(self) -> bytes:
        return self.tree.root


def find_leaf(s: Session, job: str) -> LeafRecord:
    """The leaf of ``job``: an exchange job id (``job_ref``) or the attestation's 0x bytes32 job id.

    Raises:
        UnknownJob
    """
    record = s.get(LeafRecord, job.lower()) if job.startswith("0x") and len(job) == 66 else None
    record = record or s.scalars(select(LeafRecord).where(LeafRecord.job_ref == job)).first()
    if record is None:
        raise UnknownJob(job)
    return record


def inclusion(s: Session, job: str) -> Inclusion:
    """Rebuild the batch tree of ``job`` and its inclusion proof.

    Raises:
        UnknownJob: no leaf, or the leaf is not in a batch yet.
    """
    leaf = find_leaf(s, job)
    if leaf.batch_id is None:
        raise UnknownJob(f"{job} (attested, waiting for its batch to close)")
    batch = s.get(BatchRecord, leaf.batch_id)
    rows = s.scalars(select(LeafRecord).where(LeafRecord.batch_id == leaf.batch_id)
                     .order_by(LeafRecord.leaf_index)).all()
    tree = build_tree([unhex(r.leaf_hash) for r in rows])
    return Inclusion(leaf, batch, tree.proof(leaf.leaf_index), tree)


def batch_job_refs(s: Session, batch_id: str) -> list[str]:
    """The jobs of a batch in leaf order: the exchange's id when known, else the 0x bytes32 job id."""
    rows = s.scalars(select(LeafRecord).where(LeafRecord.batch_id == batch_id).order_by(LeafRecord.leaf_index)).all()
    return [r.job_ref or r.job_id for r in rows]
