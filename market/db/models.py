"""Market tables: providers and their offers, jobs and their history, auction rounds.

Money columns are wei (``NUMERIC(78, 0)``, Python ``int``); times are Unix seconds (float).
Balances do not live here: they are in the ledger (``market.ledger.models``).
"""

from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from market.db.base import Base, Wei, WeiType


class ProviderRecord(Base):
    """A registered provider: its identity, detected resources and standing offer.

    Attributes:
        name: provider id, also the Ray node label ``provider=<name>``.
        address: the provider's Ethereum address (signs attestations, EIP-712).
        cpus, memory_bytes, gpus, gpu_model: detected resources offered.
        price_per_cpu_s_wei, price_per_gpu_s_wei: the offer, wei per resource-second.
        speed: benchmarked speed factor (1.0 = the reference machine).
        reputation: 0..1, lowered by faults.
        node_id: the Ray node id it runs on, when known.
        last_seen_at: last signed heartbeat or poll (Unix s); online = seen within the lease time.
        draining: finishing its leases, taking no new ones.
        ray_address: the provider's own Ray cluster (informational; the exchange never connects to it).
    """

    __tablename__ = "providers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    cpus: Mapped[int]
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    gpus: Mapped[int] = mapped_column(default=0)
    gpu_model: Mapped[Optional[str]] = mapped_column(String(64))
    price_per_cpu_s_wei: Mapped[Wei]
    price_per_gpu_s_wei: Mapped[Wei]
    speed: Mapped[float] = mapped_column(default=1.0)
    reputation: Mapped[float] = mapped_column(default=1.0)
    node_id: Mapped[Optional[str]] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    registered_at: Mapped[float]
    hardware: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_seen_at: Mapped[Optional[float]]
    draining: Mapped[bool] = mapped_column(default=False)
    ray_address: Mapped[Optional[str]] = mapped_column(String(256))

    __table_args__ = (
        CheckConstraint("cpus >= 0", name="cpus_nonnegative"),
        CheckConstraint("gpus >= 0", name="gpus_nonnegative"),
    )


class JobRecord(Base):
    """A client's job and where it stands.

    Attributes:
        job_id: caller-given id (idempotent submission).
        kind: ``inference`` or ``proof`` (:class:`market.core.jobs.JobKind`).
        status: :class:`market.core.jobs.JobStatus` value.
        spec: the job's parameters (resources, input location, circuit, ...), JSON.
        input_hash, result_hash: ``0x`` + 64 hex (keccak-256).
        max_price_wei: the client's ceiling, escrowed at submission.
        cleared_price_wei: the price the round cleared at (paid to the provider, fee included).
        deadline_s: absolute Unix time by which the result is due.
        attempt: 1 + number of re-auctions.
        batch_id, settle_tx: the settlement batch and the transaction that settled it.
    """

    __tablename__ = "jobs"

    job_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    input_hash: Mapped[str] = mapped_column(String(66))
    max_price_wei: Mapped[Wei]
    collateral_wei: Mapped[Wei]
    deadline_s: Mapped[float]
    created_at: Mapped[float]
    updated_at: Mapped[float]
    attempt: Mapped[int] = mapped_column(default=1)
    provider: Mapped[Optional[str]] = mapped_column(ForeignKey("providers.name"))
    cleared_price_wei: Mapped[Optional[int]] = mapped_column(WeiType())
    round_id: Mapped[Optional[str]] = mapped_column(String(80))
    result_path: Mapped[Optional[str]] = mapped_column(String(1024))
    result_hash: Mapped[Optional[str]] = mapped_column(String(66))
    attestation: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    batch_id: Mapped[Optional[str]] = mapped_column(String(80))
    settle_tx: Mapped[Optional[str]] = mapped_column(String(66))
    error: Mapped[Optional[str]] = mapped_column(String(2000))

    __table_args__ = (
        CheckConstraint("max_price_wei > 0", name="max_price_positive"),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        CheckConstraint(
            "status in ('open','assigned','running','verifying','verified','paid','settled','failed','cancelled')",
            name="status_known",
        ),
    )


class JobEventRecord(Base):
    """One line of a job's history (what the client sees with ``raymarket status JOB``)."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.job_id"), index=True)
    at_s: Mapped[float]
    event: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RoundRecord(Base):
    """One auction round: its canonical inputs and the hashes of inputs and outputs (for replay)."""

    __tablename__ = "rounds"

    round_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    at_s: Mapped[float]
    rule: Mapped[str] = mapped_column(String(32))
    inputs: Mapped[str] = mapped_column(Text)  # canonical JSON text of the round's inputs
    input_hash: Mapped[str] = mapped_column(String(66))
    output_hash: Mapped[str] = mapped_column(String(66))
    n_jobs: Mapped[int]
    n_offers: Mapped[int]
    n_matched: Mapped[int]

    __table_args__ = (Index("ix_rounds_at_s", "at_s"),)


# --------------------------------------------------------------------------- the exchange service (0004)


class LeaseRecord(Base):
    """One assignment of a job to a provider, valid until ``expires_at`` (heartbeats extend it).

    Attributes:
        lease_id: random id; job_id, provider, attempt: what is leased to whom (the job's attempt number).
        status: ``assigned`` (matched, not yet polled) | ``running`` (delivered) | ``completed`` (paid) |
            ``rejected`` (result failed verification) | ``failed`` (given back) | ``expired`` | ``revoked``
            (the client cancelled).
        created_at, expires_at, delivered_at, closed_at: Unix seconds.
        outcome: the answer given to ``complete`` / ``fail`` (returned again on a retry), JSON.
    """

    __tablename__ = "leases"

    lease_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.job_id"), index=True)
    provider: Mapped[str] = mapped_column(ForeignKey("providers.name"))
    attempt: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))
    price_wei: Mapped[Wei]
    created_at: Mapped[float]
    expires_at: Mapped[float]
    delivered_at: Mapped[Optional[float]]
    closed_at: Mapped[Optional[float]]
    outcome: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_leases_provider_status", "provider", "status"),
        Index("ix_leases_status_expires_at", "status", "expires_at"),
        CheckConstraint(
            "status in ('assigned','running','completed','rejected','failed','expired','revoked')",
            name="status_known",
        ),
    )


class RequestNonce(Base):
    """A signed request's nonce, stored with the request's effects: a replay finds it and is refused.

    Rows whose ``expiry`` has passed may be pruned (an expired request is refused anyway).
    """

    __tablename__ = "request_nonces"

    signer: Mapped[str] = mapped_column(String(42), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(20), primary_key=True)  # decimal, [1, 2**64)
    action: Mapped[str] = mapped_column(String(32))
    expiry: Mapped[float] = mapped_column(index=True)
    at_s: Mapped[float]


class JobBlob(Base):
    """A job's input (``name='input'``) or verified result (``name='result'``) bytes."""

    __tablename__ = "job_blobs"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.job_id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class JobLogLine(Base):
    """One log line a provider uploaded for a job (``raymarket logs JOB``)."""

    __tablename__ = "job_logs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.job_id"), index=True)
    lease_id: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(64))
    at_s: Mapped[float]
    line: Mapped[str] = mapped_column(String(2000))


class ServiceMeta(Base):
    """The service's remembered facts (``settlement_contract``, ``chain_id``, ``deploy_block``)."""

    __tablename__ = "service_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class CircuitRecord(Base):
    """A registered Groth16 circuit (``raymarket circuit add``): its snarkjs zkey, stored once by sha256, and the
    verification key derived from it (``market.exchange.circuits``).

    Attributes:
        circuit_id: sha256 hex of the zkey bytes (content address). owner: the address that added it first.
        n_vars, n_public, domain_size: from the zkey header; n_constraints: rows of its A/B matrices.
        vk_json: snarkjs ``verification_key.json`` object; vk_sha256: sha256 hex of its canonical JSON.
        zkey: the zkey bytes; size_bytes: their length.
        wasm, wasm_sha256, wasm_size_bytes: the circom witness calculator (``circuit add --wasm``), or None.
        verifier_address: its KeyedGroth16Verifier on chain, registered on Settlement ``verifier_settlement`` by
            tx ``verifier_tx``; verifier_error: why the last registration failed (None once registered).
    """

    __tablename__ = "circuits"

    circuit_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    owner: Mapped[str] = mapped_column(String(42))
    n_vars: Mapped[int] = mapped_column(BigInteger)
    n_public: Mapped[int] = mapped_column(BigInteger)
    n_constraints: Mapped[int] = mapped_column(BigInteger)
    domain_size: Mapped[int] = mapped_column(BigInteger)
    vk_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    vk_sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    zkey: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[float]
    wasm: Mapped[Optional[bytes]] = mapped_column(LargeBinary, nullable=True, deferred=True)
    wasm_sha256: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    wasm_size_bytes: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    verifier_address: Mapped[Optional[str]] = mapped_column(String(42), nullable=True)
    verifier_settlement: Mapped[Optional[str]] = mapped_column(String(42), nullable=True)
    verifier_tx: Mapped[Optional[str]] = mapped_column(String(66), nullable=True)
    verifier_error: Mapped[Optional[str]] = mapped_column(String(500), nullable=True)


# --------------------------------------------------------------------------- proof batches (0010)


class ProofBatch(Base):
    """A proof batch of the exchange's proving pipeline: the proof leases one provider got for one circuit key in
    one auction round (``market.exchange.service.batches``), with its provenance.

    Attributes:
        batch_id: ``pb-`` + a deterministic hash of (round, provider, circuit, key, the jobs and their attempts).
        provider, round_id: who proves it, the round that matched it.
        circuit_id, pk_sha256, vk_sha256: the circuit (the sha256 of its zkey, which is also the proving key's
            hash) and the sha256 of its verification key's canonical JSON (None for a job of a legacy circuit).
        n_jobs: members; n_ok, n_rejected, n_lost: verdicts so far (lost = expired, given back or revoked).
        verify_checks: Groth16 checks run on its proofs (a random-linear-combination check of a verified group
            counts 1, each bisection subset check 1, a one-by-one pairing check 1); verify_s: seconds spent.
        created_at, delivered_at, uploaded_at, verified_at: matched; first member delivered; last upload taken;
            every member decided (Unix s).
        code: ``market.pipeline.provenance.code_version()`` of the exchange that recorded it.
        record_sha256: ``market.pipeline.records.record_hash`` of the batch and its members (replay recomputes it).
    """

    __tablename__ = "proof_batches"

    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64))
    round_id: Mapped[Optional[str]] = mapped_column(String(80))
    circuit_id: Mapped[str] = mapped_column(String(64))
    pk_sha256: Mapped[Optional[str]] = mapped_column(String(64))
    vk_sha256: Mapped[Optional[str]] = mapped_column(String(64))
    n_jobs: Mapped[int]
    n_ok: Mapped[int] = mapped_column(default=0)
    n_rejected: Mapped[int] = mapped_column(default=0)
    n_lost: Mapped[int] = mapped_column(default=0)
    verify_checks: Mapped[int] = mapped_column(default=0)
    verify_s: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[float]
    delivered_at: Mapped[Optional[float]]
    uploaded_at: Mapped[Optional[float]]
    verified_at: Mapped[Optional[float]]
    code: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    record_sha256: Mapped[Optional[str]] = mapped_column(String(64))

    __table_args__ = (Index("ix_proof_batches_created_at", "created_at"),)


class ProofBatchJob(Base):
    """One member of a :class:`ProofBatch`: a proof lease, what was uploaded for it and the verdict.

    The witness is never kept here (it is the client's secret, deleted after the job): replay re-verifies the
    stored proof instead of re-proving it.

    Attributes:
        lease_id: the lease (one row per lease); batch_id, position: the batch and the place in it.
        job_id, attempt: the job and its attempt; input_hash: the job's ``0x`` keccak statement hash.
        public: the job's public signals (decimal strings), as the exchange expects them.
        result: the uploaded result bytes (``proof.json`` + ``public.json``, canonical), None before an upload.
        result_hash: their ``0x`` keccak; proof_sha256, publics_sha256: ``canonical_hash`` of the proof JSON and
            of the public signals (decimal strings), None when the upload did not parse.
        verdict: None (pending) | ``ok`` | ``rejected`` | ``expired`` | ``failed`` | ``revoked``; reason: why.
        verify_group: how many proofs were checked together with it; verify_checks: checks of that group;
            verify_s: that group's verification seconds.
        delivered_at, uploaded_at, verified_at: Unix s.
    """

    __tablename__ = "proof_batch_jobs"

    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.lease_id"), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("proof_batches.batch_id"), index=True)
    position: Mapped[int]
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.job_id"), index=True)
    attempt: Mapped[int]
    input_hash: Mapped[str] = mapped_column(String(66))
    public: Mapped[list[Any]] = mapped_column(JSON, default=list)
    result: Mapped[Optional[bytes]] = mapped_column(LargeBinary, nullable=True, deferred=True)
    result_hash: Mapped[Optional[str]] = mapped_column(String(66))
    proof_sha256: Mapped[Optional[str]] = mapped_column(String(64))
    publics_sha256: Mapped[Optional[str]] = mapped_column(String(64))
    verdict: Mapped[Optional[str]] = mapped_column(String(16))
    reason: Mapped[Optional[str]] = mapped_column(String(500))
    verify_group: Mapped[Optional[int]]
    verify_checks: Mapped[Optional[int]]
    verify_s: Mapped[Optional[float]]
    delivered_at: Mapped[Optional[float]]
    uploaded_at: Mapped[Optional[float]]
    verified_at: Mapped[Optional[float]]

    __table_args__ = (
        CheckConstraint("verdict is null or verdict in ('ok','rejected','expired','failed','revoked')",
                        name="verdict_known"),
    )
