"""Running leased jobs on the provider's own Ray cluster, and the agent-side checks around them.

Split of trust (issue 11): the Ray side computes, the agent process signs.

* :class:`JobWorker` -- a plain class made a Ray actor in one place (:class:`WorkerPool`), one CPU each
  (``max_restarts=0``, ``max_task_retries=0``: the market re-auctions, not Ray). It loads the embedding
  model once (``providers.inference.load_model``) and the MiMC-7 dev proving keys once per round count,
  and returns only result BYTES. It holds no key and is given none.
* :func:`check_lease` -- the agent checks a lease before running it: the attestation's job id, kind and
  EIP-712 settlement domain agree with the exchange's ``/v1/info`` and the job, the input hash matches
  the ticket's input (inference: keccak of the text; proof: the MiMC-7 statement, or a registered circuit's id and
  the public signals of the client's witness). A lease failing a check is given back (``lease.fail``) unrun.
* Registered circuits (issue 13): the agent fetches the zkey by its sha256 once (:func:`ensure_zkey`, cached on
  disk under ``<cache_dir>/circuits/``); each worker keeps it parsed and prepared in a
  ``providers.prover_worker.PreparedKeyCache`` and proves the client's witness with the project's prover. The
  witness is never logged or written to disk by the provider; it lives in the job's memory only.
* ``submit proof --input``: the ticket carries the circuit's input (checked by ``market.core.circuit_input``)
  instead of a witness; the agent fetches the circuit's wasm by its sha256 once (:func:`ensure_wasm`) and the
  worker computes the witness with it (``contracts.wasm_witness``: node, bounded in time and memory, input on
  stdin, witness on stdout, never on disk), checks its public signals against the job's, then proves it.
* :func:`sign_result` -- the agent hashes the output bytes (keccak-256) and signs the EIP-712
  ``Attestation`` (``contracts.attestation``) with the key that lives only in the agent process, under the
  verification policy the lease names (``attestation.verification`` / ``sample_rate_ppm``): the agent signs
  whatever well-formed policy it is leased under and turns no job down for its policy.
"""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from eth_hash.auto import keccak
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from contracts.attestation import (DOMAIN_NAME, DOMAIN_VERSION, Attestation, Eip712Domain, JobKind, Verification,
                                   job_id_bytes32, sign_attestation)
from market.core.tickets import (ATTESTATION_KIND, DEV_SETUP_SEED, MIMC_CIRCUIT, TicketInputError,
                                 canonical_proof_bytes, circuit_input_hash, dev_proving_key, hex32,
                                 inference_input_hash, is_circuit_id, proof_input_hash, proof_public_hash,
                                 sentences_from_text)
from contracts.wasm_witness import WitnessError, calculate_witness
from market.core.circuit_input import parse_input
from market.core.policy import attestation_terms, default_policy, policy_from_terms
from proving.circuits.mimc import preimage_circuit
from proving.formats.snarkjs_json import proof_to_json, public_to_json
from proving.formats.wtns_file import parse_wtns
from proving.formats.zkey import parse_zkey
from providers.prover_worker import PreparedKeyCache, resolve_prover
from proving.groth16.prover import prove
from proving.r1cs import check_witness
from providers.errors import JobError
from providers.inference import embed, load_embedder, to_npy_bytes

#: Job kinds a provider runs.
KINDS = ("inference", "proof")


@dataclass(frozen=True)
class PreparedJob:
    """A lease that passed :func:`check_lease`: what the worker runs and what the agent signs.

    Attributes:
        lease_id, job_id: ids; kind: ``"inference"`` or ``"proof"``.
        ticket: for inference ``{"text": bytes}``; for proof ``{"circuit", "rounds", "preimage", "setup_seed"}``.
        input_hash: 32 bytes; price_wei: the cleared price the attestation commits to, wei.
        domain: the settlement contract's EIP-712 domain; expires_at: lease expiry, Unix seconds.
        verification, sample_rate_ppm: the job's verification policy as the attestation carries it
            (``contracts.attestation.Verification``; the lease's ``attestation.verification`` /
            ``sample_rate_ppm``, signed as given; a lease without them: the kind's default, proof / spot-check 0.5).
    """

    lease_id: str
    job_id: str
    kind: str
    ticket: dict[str, Any]
    input_hash: bytes
    price_wei: int
    domain: Eip712Domain
    expires_at: float
    verification: int = Verification.PROOF
    sample_rate_ppm: int = 0


def _bytes32_hex(value: Any, field_name: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise TicketInputError(f"{field_name}: want 0x + 64 hex digits, got {value!r:.80}")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise TicketInputError(f"{field_name}: not hex: {value!r:.80}") from None


def check_lease(lease: dict[str, Any], info: dict[str, Any]) -> PreparedJob:
    """Check a lease from ``lease.poll`` against the exchange's ``/v1/info`` (see the module docstring).

    Raises:
        JobError: reason ``bad_ticket`` naming the field that does not agree.
    """
    job_id = str(lease.get("job_id", ""))
    try:
        return _check(lease, info, job_id)
    except (TicketInputError, KeyError, TypeError, ValueError) as exc:
        raise JobError(job_id or "?", "bad_ticket", f"{type(exc).__name__}: {exc}") from None


def _check(lease: dict[str, Any], info: dict[str, Any], job_id: str) -> PreparedJob:
    kind = lease["kind"]
    if kind not in KINDS:
        raise TicketInputError(f"kind: unknown job kind {kind!r}")
    att = lease["attestation"]
    if int(att["kind"]) != ATTESTATION_KIND[kind]:
        raise TicketInputError(f"attestation.kind: {att['kind']} is not the kind of a {kind} job")
    if _bytes32_hex(att["job_id_bytes32"], "attestation.job_id_bytes32") != job_id_bytes32(job_id):
        raise TicketInputError(f"attestation.job_id_bytes32 is not the id of job {job_id}")
    dom = att["domain"]
    if dom.get("name", DOMAIN_NAME) != DOMAIN_NAME or str(dom.get("version", DOMAIN_VERSION)) != DOMAIN_VERSION:
        raise TicketInputError(f"attestation.domain: name/version {dom.get('name')!r}/{dom.get('version')!r} "
                               f"are not {DOMAIN_NAME!r}/{DOMAIN_VERSION!r}")
    domain = Eip712Domain(int(dom["chainId"]), dom["verifyingContract"])
    if domain.chain_id != int(info["chain_id"]):
        raise TicketInputError(f"attestation.domain.chainId {domain.chain_id} is not the exchange's {info['chain_id']}")
    if domain.verifying_contract.lower() != str(info["contract"]).lower():
        raise TicketInputError(f"attestation.domain.verifyingContract {domain.verifying_contract} is not the "
                               f"exchange's settlement contract {info['contract']}")
    input_hash = _bytes32_hex(att["input_hash"], "attestation.input_hash")
    price_wei = int(lease["price_wei"])
    if price_wei < 0:
        raise TicketInputError(f"price_wei: negative ({price_wei})")
    # Not compared with this machine's clock (the exchange's may differ): heartbeats extend the lease and the
    # exchange decides whether an upload still counts.
    expires_at = float(lease["expires_at"])
    t = lease["ticket"]
    if kind == "inference":
        text = base64.b64decode(t["input_b64"], validate=True)
        if inference_input_hash(text) != input_hash:
            raise TicketInputError("ticket.input_b64: keccak of the text is not attestation.input_hash")
        sentences_from_text(text)
        ticket: dict[str, Any] = {"text": text}
    elif is_circuit_id(str(t["circuit"])):
        circuit, public = str(t["circuit"]), [int(x) for x in t["public"]]
        if str(t["zkey_sha256"]) != circuit:
            raise TicketInputError("ticket.zkey_sha256: not the circuit id")
        if circuit_input_hash(circuit, public) != input_hash:
            raise TicketInputError("ticket: the statement (circuit, public signals) is not attestation.input_hash")
        ticket = {"circuit": circuit, "zkey_sha256": circuit, "public": public}
        if "input_json" in t:  # the witness is computed here from the circuit's wasm (checked against public)
            wasm_sha = str(t["wasm_sha256"])
            if not is_circuit_id(wasm_sha):
                raise TicketInputError("ticket.wasm_sha256: not a sha256 hex digest")
            ticket.update(input=parse_input(str(t["input_json"])), wasm_sha256=wasm_sha)
        else:
            witness = parse_wtns(base64.b64decode(t["witness_b64"], validate=True), path="<witness>")
            if witness[1:1 + len(public)] != public:
                raise TicketInputError("ticket.witness_b64: its public signals are not ticket.public")
            ticket["witness"] = witness
    else:
        circuit, rounds, preimage = t["circuit"], int(t["rounds"]), int(t["preimage"])
        if circuit != MIMC_CIRCUIT:
            raise TicketInputError(f"ticket.circuit: unknown circuit {circuit!r}")
        public = proof_public_hash(preimage, rounds)
        if "public" in t and int(t["public"][0]) != public:
            raise TicketInputError("ticket.public: not the MiMC-7 hash of the preimage")
        if proof_input_hash(circuit, rounds, public) != input_hash:
            raise TicketInputError("ticket: the statement (circuit, rounds, public hash) is not attestation.input_hash")
        ticket = {"circuit": circuit, "rounds": rounds, "preimage": preimage,
                  "setup_seed": int(t.get("setup_seed", DEV_SETUP_SEED))}
    default = attestation_terms(default_policy(kind))  # a lease from an exchange before the policy fields
    verification, ppm = int(att.get("verification", default[0])), int(att.get("sample_rate_ppm", default[1]))
    policy_from_terms(verification, ppm)  # PolicyError (a ValueError): a policy no attestation can carry
    return PreparedJob(lease_id=str(lease["lease_id"]), job_id=job_id, kind=kind, ticket=ticket,
                       input_hash=input_hash, price_wei=price_wei, domain=domain, expires_at=expires_at,
                       verification=verification, sample_rate_ppm=ppm)


#: Largest MiMC-7 round count a speed challenge may ask for (what a lease could ask too).
MAX_CHALLENGE_ROUNDS = 364


def challenge_job(ch: dict[str, Any]) -> PreparedJob:
    """A speed challenge (``market.exchange.service.challenges``: a MiMC-7 proof of a fresh preimage) as a
    proof job :meth:`WorkerPool.run` can run; nothing is signed for it.

    Raises:
        JobError: ``bad_ticket`` for a malformed challenge or one bigger than :data:`MAX_CHALLENGE_ROUNDS`.
    """
    cid = str(ch.get("challenge_id", "?"))
    try:
        rounds, preimage = int(ch["rounds"]), int(ch["preimage"])
        ticket = {"circuit": str(ch["circuit"]), "rounds": rounds, "preimage": preimage,
                  "setup_seed": int(ch.get("setup_seed", DEV_SETUP_SEED))}
        deadline = float(ch["deadline_at"])
    except (KeyError, TypeError, ValueError) as exc:
        raise JobError(cid, "bad_ticket", f"malformed challenge: {exc}") from None
    if ticket["circuit"] != MIMC_CIRCUIT or not 1 <= rounds <= MAX_CHALLENGE_ROUNDS:
        raise JobError(cid, "bad_ticket", f"challenge {ticket['circuit']!r} x {rounds} rounds is not accepted")
    return PreparedJob(lease_id=cid, job_id=cid, kind="proof", ticket=ticket, input_hash=b"\0" * 32, price_wei=0,
                       domain=Eip712Domain(0, "0x" + "00" * 20), expires_at=deadline)


def ensure_wasm(fetch: Any, cache_dir: str | Path, circuit_id: str, wasm_sha256: str) -> Path:
    """The circuit's witness-calculator wasm on disk (``<cache_dir>/circuits/<wasm sha256>.wasm``), fetched once
    with ``fetch(circuit_id, wasm_sha256) -> bytes`` (``ProviderClient.circuit_wasm``) and kept only if it hashes
    to ``wasm_sha256``.

    Raises:
        JobError: ``bad_input`` when the fetched bytes do not hash to ``wasm_sha256``; what ``fetch`` raises.
    """
    path = Path(cache_dir) / "circuits" / f"{wasm_sha256}.wasm"
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == wasm_sha256:
        return path
    data = fetch(circuit_id, wasm_sha256)
    if hashlib.sha256(data).hexdigest() != wasm_sha256:
        raise JobError("?", "bad_input", f"the wasm fetched for {circuit_id[:12]} does not hash to {wasm_sha256[:12]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def ensure_zkey(fetch: Any, cache_dir: str | Path, circuit_id: str) -> Path:
    """The zkey of ``circuit_id`` on disk (``<cache_dir>/circuits/<id>.zkey``), fetched once with
    ``fetch(circuit_id) -> bytes`` (``ProviderClient.circuit_zkey``) and kept only if it hashes to the id.

    Raises:
        JobError: ``bad_input`` when the fetched bytes do not hash to ``circuit_id``; what ``fetch`` raises.
    """
    path = Path(cache_dir) / "circuits" / f"{circuit_id}.zkey"
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == circuit_id:
        return path
    data = fetch(circuit_id)
    if hashlib.sha256(data).hexdigest() != circuit_id:
        raise JobError("?", "bad_input", f"the zkey fetched for {circuit_id[:12]} does not hash to it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def sign_result(account: Any, job: PreparedJob, result: bytes) -> tuple[str, str]:
    """Hash ``result`` and sign its attestation with ``account`` (an eth-account ``LocalAccount``).

    Returns:
        ``(result_hash, signature)``: ``0x`` + 64 hex digits, ``0x`` + 130 hex digits.
    """
    result_hash = keccak(result)
    att = Attestation(job_id=job_id_bytes32(job.job_id), input_hash=job.input_hash, result_hash=result_hash,
                      provider=account.address, price_wei=job.price_wei,
                      kind=JobKind.INFERENCE if job.kind == "inference" else JobKind.PROOF,
                      verification=Verification(job.verification), sample_rate_ppm=job.sample_rate_ppm)
    signed = sign_attestation(att, account.key, job.domain)
    return hex32(result_hash), "0x" + bytes(signed.signature).hex()


# --------------------------------------------------------------------------- the Ray side


class JobWorker:
    """Runs jobs on one CPU of the provider's cluster and returns result bytes (no key: see the module docstring).

    Args:
        cache_dir: where dev proving keys are cached (a path on the node; None: in memory only).
        embedding_backend: ``torch`` (sentence-transformers), ``onnx`` or ``onnx-int8``
            (``market.core.embeddings.EMBEDDING_BACKENDS``; the spot-check allows each its tolerance).
    """

    def __init__(self, cache_dir: str | None = None, embedding_backend: str = "torch") -> None:
        self.cache_dir = cache_dir
        self.embedding_backend = embedding_backend
        self._pks: dict[tuple[int, int], Any] = {}
        self._keys = PreparedKeyCache(prover="fast")
        self._prove_fast = resolve_prover("fast")

    def ping(self) -> dict[str, Any]:
        """``{"pid", "node_id"}`` of this worker."""
        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}

    def warm_up(self, kinds: list[str]) -> float:
        """Load what ``kinds`` need (the embedding model); returns seconds spent."""
        t0 = time.perf_counter()
        if "inference" in kinds:
            load_embedder(self.embedding_backend)
        return time.perf_counter() - t0

    def embed(self, text: bytes) -> bytes:
        """``.npy`` bytes of ``float32 (n_sentences, 384)`` embeddings of ``text`` (one sentence per line)."""
        return to_npy_bytes(embed(sentences_from_text(text), backend=self.embedding_backend))

    def embed_batch(self, texts: list[bytes]) -> dict[str, Any]:
        """Several inference jobs' texts in ONE model call: the sentences of all ``texts`` concatenated, embedded
        together, split back per text. Returns ``{"results": [.npy bytes per text, in order], "pid",
        "sentences": total, "model_calls": 1}``."""
        per = [sentences_from_text(t) for t in texts]
        rows = embed([x for sentences in per for x in sentences], backend=self.embedding_backend)
        out, at = [], 0
        for sentences in per:
            out.append(to_npy_bytes(rows[at:at + len(sentences)]))
            at += len(sentences)
        return {"results": out, "pid": os.getpid(), "sentences": at, "model_calls": 1}

    def prove(self, circuit: str, rounds: int, preimage: int, setup_seed: int) -> bytes:
        """Canonical proof bytes (``market.core.tickets.canonical_proof_bytes``) of knowing ``preimage``.

        Raises:
            proving.errors.ProvingError: the witness does not satisfy the circuit.
        """
        if circuit != MIMC_CIRCUIT:
            raise TicketInputError(f"unknown circuit {circuit!r}")
        key = (int(rounds), int(setup_seed))
        pk = self._pks.get(key)
        if pk is None:
            pk = self._pks[key] = dev_proving_key(key[0], Path(self.cache_dir) if self.cache_dir else None,
                                                  seed=key[1])
        c = preimage_circuit(int(preimage), n_rounds=key[0])
        check_witness(c.r1cs, c.witness)
        proof = prove(pk, c.witness)
        return canonical_proof_bytes(proof_to_json(proof), public_to_json([c.hash]))


    def prove_circuit(self, zkey_path: str, zkey_sha256: str, witness: list[int] | None, public: list[int],
                      inp: dict[str, Any] | None = None, wasm_path: str | None = None,
                      witness_timeout_s: float = 60.0, witness_max_memory_bytes: int = 2 * 1024**3) -> bytes:
        """Canonical proof bytes of ``witness`` under the registered circuit's zkey (parsed and prepared once per
        worker, by hash, in a ``PreparedKeyCache``); ``public`` = the witness's public signals. With ``inp`` (the
        circuit's input) instead of a witness, the witness is computed first from the wasm at ``wasm_path``
        (``contracts.wasm_witness``: bounded by ``witness_timeout_s`` seconds and ``witness_max_memory_bytes``;
        in memory only) and its public signals must be ``public``.

        Raises:
            TicketInputError: the witness does not fit the key, or the zkey on disk is not ``zkey_sha256``; the
                input does not fit the circuit (or implies other public signals); the calculator's time or
                memory bound was hit.
        """
        if witness is None:
            try:
                witness = parse_wtns(calculate_witness(wasm_path or "", inp or {}, timeout_s=witness_timeout_s,
                                                       max_memory_bytes=witness_max_memory_bytes), path="<witness>")
            except WitnessError as exc:
                raise TicketInputError(f"witness from the input: {exc}") from None
            if witness[1:1 + len(public)] != list(public):
                raise TicketInputError("the witness computed from the input has other public signals than the job")
        def load() -> Any:
            data = Path(zkey_path).read_bytes()
            if hashlib.sha256(data).hexdigest() != zkey_sha256:
                raise TicketInputError(f"{zkey_path} does not hash to {zkey_sha256[:12]}")
            return parse_zkey(data, path=zkey_path)

        pk = self._keys.get(zkey_sha256, load)
        if len(witness) != pk.n_vars or witness[1:1 + pk.n_public] != list(public):
            raise TicketInputError(f"the witness ({len(witness)} values) does not fit the key ({pk.n_vars} signals)")
        proof = self._prove_fast(pk, witness)
        return canonical_proof_bytes(proof_to_json(proof), public_to_json(list(public)))


class WorkerPool:
    """Up to ``size`` :class:`JobWorker` actors on the provider's cluster (one CPU each), created lazily,
    one job at a time each; a worker that dies or times out is killed and replaced on the next job.

    Args:
        size: most concurrent jobs (the agent's ``--cpus``).
        cache_dir: passed to each worker (proving-key cache).
        actor_options: extra ``ray.remote`` options (e.g. ``{"num_gpus": 1}``).
        embedding_backend: passed to each worker (:class:`JobWorker`).
        name_prefix: actors are named ``<prefix><n>`` in the driver's namespace (visible to the provider's
            own tools; there is nothing secret in them).
    Must be used from a process connected to the cluster (``ProviderCluster.connect``).
    """

    def __init__(self, size: int, cache_dir: str | None = None, actor_options: dict[str, Any] | None = None,
                 name_prefix: str = "raymarket-worker-", embedding_backend: str = "torch") -> None:
        self.size = max(1, int(size))
        self.cache_dir = cache_dir
        self.embedding_backend = embedding_backend
        self._cls = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0,
                               **(actor_options or {}))(JobWorker)
        self._idle: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._created = 0
        self._all: list[Any] = []
        self._prefix, self._serial = name_prefix, 0

    def _acquire(self, timeout_s: float) -> Any:
        with self._lock:
            if self._idle.empty() and self._created < self.size:
                self._created += 1
                self._serial += 1
                actor = self._cls.options(name=f"{self._prefix}{self._serial}").remote(self.cache_dir, self.embedding_backend)
                self._all.append(actor)
                return actor
        try:
            return self._idle.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError(f"no idle worker within {timeout_s} s") from None

    def _discard(self, actor: Any) -> None:
        try:
            ray.kill(actor)
        except Exception:  # already dead  # noqa: BLE001
            pass
        with self._lock:
            self._created -= 1
            if actor in self._all:
                self._all.remove(actor)

    def warm_up(self, kinds: list[str], timeout_s: float = 300.0) -> float:
        """Start one worker and load what ``kinds`` need; returns seconds spent."""
        actor = self._acquire(timeout_s)
        try:
            secs = ray.get(actor.warm_up.remote(list(kinds)), timeout=timeout_s)
        except Exception:
            self._discard(actor)
            raise
        self._idle.put(actor)
        return secs

    def run(self, job: PreparedJob, timeout_s: float) -> bytes:
        """Run ``job`` on an idle worker; returns the result bytes.

        Raises:
            JobError: ``timeout`` (killed after ``timeout_s`` s), ``worker_died`` (its node or process
                died), ``bad_input`` (the worker refused the input), ``error`` (anything else).
        """
        def submit(actor: Any) -> Any:
            if job.kind == "inference":
                return actor.embed.remote(job.ticket["text"])
            t = job.ticket
            if "zkey_path" in t:
                return actor.prove_circuit.remote(t["zkey_path"], t["zkey_sha256"], t.get("witness"), t["public"],
                                                  t.get("input"), t.get("wasm_path"), max(1.0, min(60.0, timeout_s / 2)))
            return actor.prove.remote(t["circuit"], t["rounds"], t["preimage"], t["setup_seed"])

        out = self._call(job.job_id, submit, timeout_s)
        if not isinstance(out, (bytes, bytearray)):
            raise JobError(job.job_id, "error", f"worker returned {type(out).__name__}, not bytes")
        return bytes(out)

    def run_inference_batch(self, jobs: list[PreparedJob], timeout_s: float) -> tuple[list[bytes], dict[str, Any]]:
        """Run several inference jobs on ONE idle worker in one model call (:meth:`JobWorker.embed_batch`).

        Returns:
            (one result's bytes per job, in order; ``{"pid", "sentences", "model_calls"}`` of the worker).
        Raises:
            JobError: as :meth:`run` (named after the first job; the caller fails every job of the batch).
        """
        first = jobs[0].job_id
        out = self._call(first, lambda actor: actor.embed_batch.remote([j.ticket["text"] for j in jobs]), timeout_s)
        results = out.get("results") if isinstance(out, dict) else None
        if not isinstance(results, list) or len(results) != len(jobs) or \
                not all(isinstance(r, (bytes, bytearray)) for r in results):
            raise JobError(first, "error", "worker returned a malformed batch")
        return [bytes(r) for r in results], {k: out.get(k) for k in ("pid", "sentences", "model_calls")}

    def _call(self, job_id: str, submit: Any, timeout_s: float) -> Any:
        """``submit(actor)`` -> an object ref, on an idle worker; its value (errors as in :meth:`run`)."""
        try:
            actor = self._acquire(timeout_s)
        except TimeoutError as exc:
            raise JobError(job_id, "timeout", str(exc)) from None
        try:
            out = ray.get(submit(actor), timeout=timeout_s)
        except GetTimeoutError:
            self._discard(actor)
            raise JobError(job_id, "timeout", f"no result within {timeout_s} s; worker killed") from None
        except RayActorError as exc:
            self._discard(actor)
            raise JobError(job_id, "worker_died", f"{type(exc).__name__}: {str(exc)[:300]}") from None
        except RayTaskError as exc:
            self._idle.put(actor)
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            reason = "bad_input" if isinstance(cause, ValueError) else "error"
            raise JobError(job_id, reason, f"{type(cause).__name__}: {str(cause)[:500]}") from None
        except Exception as exc:  # noqa: BLE001 -- Ray raises many kinds; the lease is failed, not the agent
            self._discard(actor)
            raise JobError(job_id, "error", f"{type(exc).__name__}: {str(exc)[:500]}") from None
        self._idle.put(actor)
        return out

    def shutdown(self) -> None:
        """Kill every worker of this pool (their cluster stays up)."""
        for actor in list(self._all):
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001
                pass
        self._all.clear()
