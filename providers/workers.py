"""The provider-side job runner: a plain class, made a Ray actor in one place (:func:`worker_actor`).

One :class:`ProviderWorker` lives on each provider's Ray node (pinned by the node label
``provider=<name>``), holds the provider's signing key, loads models and proving keys once,
runs jobs and signs an EIP-712 attestation over (job id, input hash, result hash, provider,
price, kind) for every result it returns. The market never retries through Ray
(``max_restarts=0``, ``max_task_retries=0``): a dead node surfaces as an error within seconds
and the exchange re-auctions the job (FIELD-NOTES).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak

from contracts.attestation import Attestation, Eip712Domain, JobKind, job_id_bytes32, sign_attestation
from providers.keys import address_of


@dataclass(frozen=True)
class JobTicket:
    """What the exchange sends a provider for one assigned job.

    Attributes:
        job_id: the job's id.
        kind: ``"inference"`` or ``"proof"``.
        payload: for inference ``{"text": bytes}``; for proof ``{"circuit": "mimc7", "rounds": int,
            "preimage": int, "proving_key": ProvingKey}``.
        input_hash: 32 bytes, keccak-256 of the job's canonical input (checked by the worker).
        price_wei: the cleared price the attestation commits to, wei.
        chain_id, contract: the EIP-712 domain of the settlement contract.
    """

    job_id: str
    kind: str
    payload: dict[str, Any]
    input_hash: bytes
    price_wei: int
    chain_id: int
    contract: str


@dataclass(frozen=True)
class JobOutput:
    """A provider's answer: the result bytes, their hash and the signed attestation.

    Attributes:
        result: ``.npy`` bytes (inference) or snarkjs ``proof.json`` + ``public.json`` as a dict (proof).
        result_hash: 32 bytes, keccak-256 of the canonical result bytes.
        signature: 65-byte EIP-712 signature by the provider's key.
        provider_address: who signed.
        node_id: the Ray node the job ran on.
        seconds: wall time of the computation, seconds.
    """

    job_id: str
    result: Any
    result_hash: bytes
    signature: bytes
    provider_address: str
    node_id: str
    seconds: float


class WorkerInputError(ValueError):
    """The ticket is malformed (its input hash does not match the payload, unknown kind, ...)."""


def canonical_proof_bytes(proof_json: dict, public_json: list) -> bytes:
    """Canonical bytes of a proof result (hashed into the attestation)."""
    import json

    return json.dumps({"proof": proof_json, "public": public_json}, sort_keys=True, separators=(",", ":")).encode()


def proof_input_hash(circuit: str, rounds: int, public_hash: int) -> bytes:
    """keccak-256 of a proof job's public statement (circuit, rounds, public hash); the preimage stays out."""
    return keccak(f"{circuit}:{rounds}:{public_hash}".encode())


class ProviderWorker:
    """Runs jobs for one provider and signs their attestations (see the module docstring)."""

    def __init__(self, provider: str, private_key: str) -> None:
        self.provider = provider
        self._key = private_key
        self.address = address_of(private_key)
        self._keys: dict[str, Any] = {}  # proving keys by object-ref id, loaded once per worker

    def info(self) -> dict[str, Any]:
        """Where this worker runs: provider name, address, Ray node id, detected hardware."""
        import ray

        from providers.hardware import detect

        return {"provider": self.provider, "address": self.address,
                "node_id": ray.get_runtime_context().get_node_id(), "hardware": detect().to_dict()}

    def warm_up(self, kinds: list[str]) -> float:
        """Load what the given job kinds need (the embedding model); returns seconds spent."""
        t0 = time.perf_counter()
        if "inference" in kinds:
            from providers.inference import load_model

            load_model()
        return time.perf_counter() - t0

    def embed_sample(self, sentences: list[str]):
        """Re-embed ``sentences`` for another provider's spot check: ``float32 (len, 384)``."""
        from providers.inference import embed

        return embed(sentences)

    def run(self, ticket: JobTicket) -> JobOutput:
        """Run ``ticket``'s job and sign the attestation.

        Raises:
            WorkerInputError: the payload does not match the ticket's input hash, or unknown kind.
            proving.errors.ProvingError: the witness does not satisfy the circuit.
        """
        import ray

        t0 = time.perf_counter()
        if ticket.kind == "inference":
            result, result_bytes = self._run_inference(ticket)
        elif ticket.kind == "proof":
            result, result_bytes = self._run_proof(ticket)
        else:
            raise WorkerInputError(f"unknown job kind {ticket.kind!r}; expected 'inference' or 'proof'")
        seconds = time.perf_counter() - t0
        result_hash = keccak(result_bytes)
        att = Attestation(job_id=job_id_bytes32(ticket.job_id), input_hash=ticket.input_hash,
                          result_hash=result_hash, provider=self.address, price_wei=ticket.price_wei,
                          kind=JobKind.INFERENCE if ticket.kind == "inference" else JobKind.PROOF)
        signed = sign_attestation(att, self._key, Eip712Domain(ticket.chain_id, ticket.contract))
        return JobOutput(job_id=ticket.job_id, result=result, result_hash=result_hash, signature=signed.signature,
                         provider_address=self.address, node_id=ray.get_runtime_context().get_node_id(),
                         seconds=seconds)

    def _run_inference(self, ticket: JobTicket) -> tuple[bytes, bytes]:
        from providers.inference import embed, sentences_from_text, to_npy_bytes

        text = ticket.payload["text"]
        if keccak(text) != ticket.input_hash:
            raise WorkerInputError(f"job {ticket.job_id}: input bytes do not match the input hash")
        npy = to_npy_bytes(embed(sentences_from_text(text)))
        return npy, npy

    def _run_proof(self, ticket: JobTicket) -> tuple[dict, bytes]:
        import ray

        from proving.circuits.mimc import preimage_circuit
        from proving.formats.snarkjs_json import proof_to_json, public_to_json
        from proving.groth16.prover import prove
        from proving.r1cs import check_witness

        p = ticket.payload
        circuit = preimage_circuit(int(p["preimage"]), n_rounds=int(p["rounds"]))
        if proof_input_hash("mimc7", int(p["rounds"]), circuit.hash) != ticket.input_hash:
            raise WorkerInputError(f"job {ticket.job_id}: statement does not match the input hash")
        check_witness(circuit.r1cs, circuit.witness)
        pk = p["proving_key"]
        if isinstance(pk, ray.ObjectRef):  # nested refs are not resolved by Ray: fetch the shared key once
            pk = self._keys.get(pk.hex()) or self._keys.setdefault(pk.hex(), ray.get(pk, timeout=300))
        proof = prove(pk, circuit.witness)
        proof_json = proof_to_json(proof)
        public_json = public_to_json([circuit.hash])
        result = {"proof": proof_json, "public": public_json}
        return result, canonical_proof_bytes(proof_json, public_json)


#: Ray namespace and name prefix of the detached workers that ``raymarket provider start`` leaves running.
WORKER_NAMESPACE = "raymarket"
WORKER_PREFIX = "raymarket-worker-"


def worker_actor(provider: str, private_key: str, *, detached: bool = False):
    """Create the :class:`ProviderWorker` actor on provider ``provider``'s node (label ``provider=<name>``).

    No restarts and no task retries: the market re-auctions, not Ray (FIELD-NOTES). A
    ``detached`` worker outlives the agent process and is found by name
    (:func:`find_worker`) by the exchange.
    """
    import ray

    cls = ray.remote(num_cpus=0, max_restarts=0, max_task_retries=0)(ProviderWorker)
    opts: dict[str, Any] = {"label_selector": {"provider": provider}}
    if detached:
        opts |= {"name": WORKER_PREFIX + provider, "namespace": WORKER_NAMESPACE, "lifetime": "detached",
                 "get_if_exists": True}
    return cls.options(**opts).remote(provider, private_key)


def find_worker(provider: str):
    """The detached worker of ``provider``, or None when it is not running."""
    import ray

    try:
        return ray.get_actor(WORKER_PREFIX + provider, namespace=WORKER_NAMESPACE)
    except ValueError:
        return None
