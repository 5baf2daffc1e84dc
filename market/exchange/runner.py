"""The market's runtime: Ray, the chain and files around the exchange's database steps.

:class:`MarketRunner` owns the connections (database engine, Ray, chain + Settlement
contract), the provider workers (one Ray actor per provider node) and the proving keys, and
drives jobs through :mod:`market.exchange`: round -> dispatch on the providers' nodes ->
verify -> pay -> settle on-chain -> watcher marks ``settled``. ``raymarket demo`` is this
runner on embedded defaults.
"""

from __future__ import annotations

import pickle
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import keccak
from sqlalchemy.orm import Session

from market import exchange as ex
from market.core import ids, policy
from market.settings import Settings
from market.core.jobs import JobStatus
from market.db.models import JobRecord, ProviderRecord
from market.settlement.batching import add_attestation
from market.exchange.verification import Expected, ResultRejected, verify_output

#: Seed of the demo's dev ceremony for the MiMC circuit (NOT FOR PRODUCTION: the toxic waste is derivable).
DEV_SETUP_SEED = 20261121

Progress = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


@dataclass
class ProviderHandle:
    """A provider this runner drives: name, signing address, the worker actor on its node, its info."""

    name: str
    address: str
    actor: Any
    info: dict[str, Any]


@dataclass
class StepReport:
    """What one exchange step did.

    Attributes:
        round_id: the auction round.
        matched: job id -> provider.
        unmatched: job id -> explanation (reasons counted over offers).
        paid: job ids paid this step; failed: job id -> reason (re-auctioned or failed).
        seconds: stage -> wall seconds.
    """

    round_id: str
    matched: dict[str, str] = field(default_factory=dict)
    unmatched: dict[str, str] = field(default_factory=dict)
    paid: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _describe(exc: BaseException) -> str:
    """One line for a failed remote call: the worker's own exception when Ray wraps it."""
    cause = getattr(exc, "cause", None)
    if cause is not None and cause is not exc:
        exc = cause
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1][:300] if text else ''}"


class MarketRunner:
    """Drives the market on a Ray cluster, a database and a chain (see the module docstring)."""

    def __init__(self, settings: Settings, progress: Progress = _quiet) -> None:
        self.settings = settings
        self.progress = progress
        self.engine = None
        self.cluster = None
        self.chain = None
        self.contract = None
        self.operator_key: str | None = None
        self.providers: dict[str, ProviderHandle] = {}
        self._pk_cache: dict[int, Any] = {}
        self._pk_refs: dict[int, Any] = {}
        self.settler = None
        self.watcher = None
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ lifecycle
    def _timed(self, stage: str, t0: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t0

    def start_database(self) -> None:
        """Migrate the database to head and open the engine."""
        from market.db.base import make_engine
        from market.db.migrate import upgrade

        t0 = time.perf_counter()
        url = self.settings.resolved_database_url
        self.progress(f"ledger: migrating {url.split('@')[-1]}")
        upgrade(url)
        self.engine = make_engine(url)
        self._timed("database", t0)

    def start_ray(self, providers: list[str] | None = None) -> None:
        """Join ``settings.ray_address``, or start a local cluster: head + one node per provider."""
        import ray

        from providers.cluster import LocalCluster, disable_ray_auth

        t0 = time.perf_counter()
        if ray.is_initialized():
            pass
        elif self.settings.ray_address:
            disable_ray_auth()
            self.progress(f"ray: joining {self.settings.ray_address}")
            ray.init(address=self.settings.ray_address, log_to_driver=False)
        else:
            names = providers or ["p1", "p2", "p3"]
            self.progress(f"ray: starting a local cluster (head + {len(names)} provider nodes)")
            self.cluster = LocalCluster(providers=list(names)).start(connect=True)
        self._timed("ray", t0)

    def start_chain(self, contract_address: str | None = None) -> None:
        """Connect to ``settings.rpc_url`` (None: the in-process EVM) and deploy the Settlement contract."""
        from contracts.bindings import SettlementContract
        from contracts.chain import connect

        t0 = time.perf_counter()
        self.chain = connect(self.settings.rpc_url)
        self.operator_key = self.chain.dev_keys[0]
        from_block = self.chain.block_number()
        if contract_address:
            self.contract = SettlementContract(self.chain, contract_address)
        else:
            self.contract = SettlementContract.deploy(self.chain, self.operator_key)
            operator = self.chain.account(self.operator_key).address
            self.contract.set_operator(self.operator_key, operator, True)
        self.progress(f"chain: {self.chain.kind} (chain id {self.chain.chain_id}), Settlement at {self.contract.address}")
        self._init_settlement(0 if contract_address else from_block)
        self._timed("chain", t0)

    def _init_settlement(self, from_block: int) -> None:
        from market.settlement.batching import BatchingPolicy, Settler
        from market.settlement.watcher import Watcher, WatcherConfig, WatcherHooks

        policy = BatchingPolicy(max_batch_size=self.settings.settlement_batch_size,
                                window_s=self.settings.settlement_window_s)
        self.settler = Settler(self.engine, self.contract, self.operator_key, policy)
        hooks = ex.register_settlement_hooks(WatcherHooks())
        hooks.register(on_batch_settled=self._on_settled, on_leaf_challenged=self._on_challenged)
        self.watcher = Watcher(self.contract, self.engine,
                               WatcherConfig(from_block=from_block, confirmations=self.settings.confirmations), hooks)

    def shutdown(self) -> None:
        """Kill the provider actors, stop a local cluster, close the engine."""
        import ray

        for handle in self.providers.values():
            try:
                ray.kill(handle.actor)
            except Exception:  # already dead
                pass
        self.providers.clear()
        if self.cluster is not None:
            self.cluster.shutdown()
            self.cluster = None
        if self.engine is not None:
            self.engine.dispose()

    # ------------------------------------------------------------------ providers and clients
    def add_provider(self, name: str, private_key: str, *, price_per_cpu_s_wei: int, bond_wei: int,
                     speed: float | None = None, timeout_s: float = 120.0) -> ProviderHandle:
        """Start ``name``'s worker on its node, detect and benchmark its hardware, register its offer, bond stake.

        ``speed`` overrides the benchmarked speed factor (tests pin it to make asks deterministic).
        """
        import ray

        from providers.hardware import benchmark
        from providers.workers import worker_actor

        actor = worker_actor(name, private_key)
        info = ray.get(actor.info.remote(), timeout=timeout_s)
        hw = info["hardware"]
        offer = ex.ProviderOffer(name=name, address=info["address"], cpus=int(hw["cpus"]),
                                 memory_bytes=int(hw["memory_bytes"]), price_per_cpu_s_wei=price_per_cpu_s_wei,
                                 bond_wei=bond_wei, gpus=len(hw["gpus"]),
                                 gpu_model=hw["gpus"][0]["model"] if hw["gpus"] else None,
                                 price_per_gpu_s_wei=policy.default_gpu_price_wei(price_per_cpu_s_wei, len(hw["gpus"])),
                                 speed=speed or benchmark(1), node_id=info["node_id"], hardware=hw)
        with Session(self.engine) as s, s.begin():
            ex.register_provider(s, offer)
        handle = ProviderHandle(name, info["address"], actor, info)
        self.providers[name] = handle
        self.progress(f"provider {name}: {offer.cpus} CPUs, {offer.memory_bytes // 2**30} GiB, "
                      f"{offer.gpus} GPUs, bond {bond_wei} wei, node {info['node_id'][:8]}")
        return handle

    def attach_providers(self, timeout_s: float = 60.0) -> list[str]:
        """Find the detached workers of the registered providers (``raymarket provider start``); returns names."""
        import ray

        from providers.workers import find_worker

        for name in self.provider_names():
            if name in self.providers:
                continue
            actor = find_worker(name)
            if actor is None:
                self.progress(f"provider {name}: no running worker; its offer is skipped")
                continue
            info = ray.get(actor.info.remote(), timeout=timeout_s)
            self.providers[name] = ProviderHandle(name, info["address"], actor, info)
        return sorted(self.providers)

    def fund_client(self, client: str, amount_wei: int) -> int:
        """Deposit ``amount_wei`` for ``client`` (idempotent per client and amount); returns the balance."""
        with Session(self.engine) as s, s.begin():
            return ex.fund_client(s, client, amount_wei, ids.deposit_id(client, amount_wei, uuid.uuid4().hex[:8]))

    # ------------------------------------------------------------------ jobs
    def submit_inference(self, client: str, text_path: Path, *, max_price_wei: int, job_id: str | None = None,
                         deadline_s: float = 3600.0, collateral_wei: int = 0) -> str:
        """Submit an embedding job over ``text_path`` (one sentence per line); returns the job id.

        The input is copied under ``<data_dir>/inputs`` so it cannot change after submission.
        """
        from providers.inference import sentences_from_text

        data = Path(text_path).read_bytes()
        n = len(sentences_from_text(data))
        job_id = job_id or f"inf-{uuid.uuid4().hex[:12]}"
        self.settings.inputs_dir.mkdir(parents=True, exist_ok=True)
        kept = self.settings.inputs_dir / f"{job_id}.txt"
        shutil.copyfile(text_path, kept)
        spec = ex.JobSpec(job_id=job_id, client=client, kind="inference", input_hash="0x" + keccak(data).hex(),
                          params={"input_path": str(kept), "n_sentences": n}, max_price_wei=max_price_wei,
                          deadline_s=deadline_s, cpus=1, memory_bytes=2 * ex.GIB,
                          duration_estimate_s=max(1, n // 20), collateral_wei=collateral_wei)
        with Session(self.engine) as s, s.begin():
            ex.submit_job(s, spec)
        return job_id

    def submit_proof(self, client: str, preimage: int, *, rounds: int, max_price_wei: int,
                     job_id: str | None = None, deadline_s: float = 3600.0, collateral_wei: int = 0) -> str:
        """Submit a Groth16 proof job: prove knowledge of ``preimage`` of the public MiMC-7 hash."""
        from proving.circuits.mimc import mimc7
        from providers.workers import proof_input_hash

        public_hash = mimc7(preimage, 0, rounds)
        job_id = job_id or f"prf-{uuid.uuid4().hex[:12]}"
        spec = ex.JobSpec(job_id=job_id, client=client, kind="proof",
                          input_hash="0x" + proof_input_hash("mimc7", rounds, public_hash).hex(),
                          params={"circuit": "mimc7", "rounds": rounds, "preimage": str(preimage),
                                  "public": [str(public_hash)]},
                          max_price_wei=max_price_wei, deadline_s=deadline_s, cpus=1, memory_bytes=1 * ex.GIB,
                          duration_estimate_s=30, collateral_wei=collateral_wei)
        with Session(self.engine) as s, s.begin():
            ex.submit_job(s, spec)
        return job_id

    def proving_key(self, rounds: int):
        """The MiMC-7 circuit's proving key for ``rounds`` (dev ceremony, cached on disk; NOT FOR PRODUCTION)."""
        if rounds in self._pk_cache:
            return self._pk_cache[rounds]
        from proving.circuits.mimc import preimage_circuit
        from proving.groth16.setup import dev_setup

        path = self.settings.data_dir / "keys" / f"mimc7-{rounds}-{DEV_SETUP_SEED}.pk.pickle"
        if path.exists():
            pk = pickle.loads(path.read_bytes())
        else:
            t0 = time.perf_counter()
            self.progress(f"proving: dev setup of MiMC-7 ({rounds} rounds), NOT FOR PRODUCTION")
            pk = dev_setup(preimage_circuit(None, n_rounds=rounds).r1cs, seed=DEV_SETUP_SEED)
            path.parent.mkdir(parents=True, exist_ok=True)
            pk.cache.clear()
            path.write_bytes(pickle.dumps(pk))
            self._timed("setup", t0)
        self._pk_cache[rounds] = pk
        return pk

    def _ticket(self, job: JobRecord):
        import ray

        from providers.workers import JobTicket

        params = job.spec["params"]
        if job.kind == "inference":
            payload = {"text": Path(params["input_path"]).read_bytes()}
        else:
            rounds = int(params["rounds"])
            if rounds not in self._pk_refs:
                self._pk_refs[rounds] = ray.put(self.proving_key(rounds))
            payload = {"circuit": params["circuit"], "rounds": rounds, "preimage": int(params["preimage"]),
                       "proving_key": self._pk_refs[rounds]}
        return JobTicket(job_id=job.job_id, kind=job.kind, payload=payload,
                         input_hash=bytes.fromhex(job.input_hash[2:]), price_wei=int(job.cleared_price_wei),
                         chain_id=self.chain.chain_id, contract=self.contract.address)

    def _expected(self, job: JobRecord) -> Expected:
        params = job.spec["params"]
        prov = self.providers[job.provider]
        kw: dict[str, Any] = {}
        if job.kind == "inference":
            kw["n_sentences"] = int(params["n_sentences"])
        else:
            kw["public_inputs"] = tuple(int(x) for x in params["public"])
            kw["vk"] = self.proving_key(int(params["rounds"])).vk
        return Expected(job_id=job.job_id, kind=job.kind, input_hash=bytes.fromhex(job.input_hash[2:]),
                        price_wei=int(job.cleared_price_wei), provider_address=prov.address,
                        domain=self.contract.domain, **kw)

    # ------------------------------------------------------------------ one step
    def step(self) -> StepReport:
        """One round: clear, run the matched jobs on their providers' nodes, verify, pay or re-auction."""
        report = StepReport(round_id=f"r-{uuid.uuid4().hex[:12]}")
        t0 = time.perf_counter()
        with Session(self.engine) as s, s.begin():
            ex.expire_jobs(s, time.time())
            assignments, report.unmatched = ex.run_round(s, report.round_id, rule=self.settings.matching_rule)
        report.seconds["match"] = time.perf_counter() - t0
        self._timed("match", t0)
        report.matched = {a.job_id: a.provider for a in assignments}
        for job_id, why in report.unmatched.items():
            self.progress(f"round {report.round_id}: {job_id} unmatched: {why}")
        if assignments:
            self._execute(assignments, report)
        return report

    def _execute(self, assignments: list[ex.Assignment], report: StepReport) -> None:
        import ray

        t0 = time.perf_counter()
        refs: dict[Any, str] = {}
        with Session(self.engine) as s, s.begin():
            for a in assignments:
                job = ex.get_job(s, a.job_id)
                handle = self.providers.get(a.provider)
                if handle is None:
                    raise ex.UnknownProvider(a.provider)
                refs[handle.actor.run.remote(self._ticket(job))] = a.job_id
                ex.mark_started(s, a.job_id)
                self.progress(f"job {a.job_id} ({job.kind}) -> {a.provider} at {a.price_wei} wei")
        pending = list(refs)
        deadline = time.monotonic() + self.settings.job_timeout_s
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
            if not done:
                break
            self._collect(done[0], refs[done[0]], report)
        for ref in pending:  # timed out: re-auction without slashing (may be an infrastructure fault)
            ray.cancel(ref, force=True)
            self._fail(refs[ref], f"no result within {self.settings.job_timeout_s} s", False, report)
        report.seconds["execute"] = time.perf_counter() - t0
        self._timed("execute", t0)

    def _collect(self, ref: Any, job_id: str, report: StepReport) -> None:
        import ray

        from providers.workers import canonical_proof_bytes

        try:
            out = ray.get(ref, timeout=5)
        except Exception as exc:  # node died, worker crashed, bad input: re-auction
            self._fail(job_id, _describe(exc), False, report)
            return
        t0 = time.perf_counter()
        with Session(self.engine) as s:
            job = ex.get_job(s, job_id)
            exp = self._expected(job)
        if job.kind == "inference":
            result_bytes = out.result
        else:
            result_bytes = canonical_proof_bytes(out.result["proof"], out.result["public"])
        try:
            att = verify_output(exp, out.result, result_bytes, out.result_hash, out.signature)
            if job.kind == "inference":
                self._spot_check(job, exp, result_bytes)
        except ResultRejected as rej:
            self._fail(job_id, rej.reason, rej.wrong_result, report)
            return
        self._timed("verify", t0)
        path = self._write_result(job_id, job.kind, out.result, result_bytes)
        attestation = {"job_id": job_id, "input_hash": job.input_hash, "result_hash": "0x" + out.result_hash.hex(),
                       "provider": exp.provider_address, "price_wei": str(exp.price_wei), "kind": job.kind,
                       "signature": "0x" + out.signature.hex(), "node_id": out.node_id,
                       "seconds": round(out.seconds, 3)}
        if job.kind == "proof":
            attestation["proof"] = out.result
        leaf = self._leaf(job, exp, out, att)
        with Session(self.engine) as s, s.begin():
            ex.complete_job(s, job_id, result_path=str(path), result_hash=attestation["result_hash"],
                            attestation=attestation, fee_bps=self.settings.fee_bps)
            add_attestation(s, leaf, added_at_s=time.time(), job_ref=job_id)
        report.paid.append(job_id)
        self.progress(f"job {job_id}: verified and paid ({out.seconds:.1f} s on node {out.node_id[:8]})")

    def _spot_check(self, job: JobRecord, exp: Expected, npy: bytes) -> None:
        """Re-execute a deterministic sample of sentences on ANOTHER provider and compare (cosine).

        Raises:
            ResultRejected: the sample disagrees (wrong result). A verifier that cannot answer is
            not the job provider's fault: the check is then skipped and said so.
        """
        import io

        import numpy as np
        import ray

        from market.exchange.verification import check_spot_sample, spot_sample
        from providers.inference import sentences_from_text

        others = [h for name, h in sorted(self.providers.items()) if name != job.provider]
        if not others:
            self.progress(f"job {job.job_id}: no other provider to spot-check with; attestation only")
            return
        sentences = sentences_from_text(Path(job.spec["params"]["input_path"]).read_bytes())
        rows = spot_sample(job.job_id, len(sentences))
        verifier = others[int.from_bytes(keccak(job.job_id.encode())[:4], "big") % len(others)]
        try:
            ref = ray.get(verifier.actor.embed_sample.remote([sentences[i] for i in rows]),
                          timeout=self.settings.job_timeout_s)
        except Exception as exc:  # the verifier failed, not the provider
            self.progress(f"job {job.job_id}: spot check by {verifier.name} failed ({_describe(exc)}); skipped")
            return
        worst = check_spot_sample(exp, np.load(io.BytesIO(npy)), rows, ref)
        self.progress(f"job {job.job_id}: spot re-execution of {len(rows)} sentences by {verifier.name} agrees "
                      f"(min cosine {worst:.5f})")

    def _leaf(self, job: JobRecord, exp: Expected, out: Any, att: Any):
        """The settlement leaf: the verified attestation, its signature and, for a proof job, its proof commitment."""
        from contracts.attestation import AttestationLeaf, SignedAttestation, proof_commitment

        signed = SignedAttestation(att, out.signature, exp.domain)
        if job.kind != "proof":
            return AttestationLeaf(signed)
        from contracts.bindings import g1_words, g2_words
        from proving.formats.snarkjs_json import proof_from_json

        proof = proof_from_json(out.result["proof"])
        words = [*g1_words(proof.a), *g2_words(proof.b), *g1_words(proof.c)]
        circuit_id = keccak(f"mimc7-{job.spec['params']['rounds']}".encode())
        return AttestationLeaf(signed, proof_commitment(circuit_id, words, list(exp.public_inputs)))

    def _fail(self, job_id: str, reason: str, wrong_result: bool, report: StepReport) -> None:
        with Session(self.engine) as s, s.begin():
            job = ex.fail_job(s, job_id, reason=reason, wrong_result=wrong_result,
                              max_attempts=self.settings.max_attempts)
            status = job.status
        report.failed[job_id] = reason
        self.progress(f"job {job_id}: {reason} -> {'re-auctioned' if status == JobStatus.OPEN.value else status}")

    def _write_result(self, job_id: str, kind: str, result: Any, result_bytes: bytes) -> Path:
        import json

        self.settings.results_dir.mkdir(parents=True, exist_ok=True)
        if kind == "inference":
            path = self.settings.results_dir / f"{job_id}.npy"
            path.write_bytes(result_bytes)
        else:
            path = self.settings.results_dir / f"{job_id}.proof.json"
            path.write_text(json.dumps(result["proof"], indent=1))
            (self.settings.results_dir / f"{job_id}.public.json").write_text(json.dumps(result["public"]))
        return path

    # ------------------------------------------------------------------ settlement
    def settle(self) -> list[dict[str, Any]]:
        """Put every paid, unsettled job's attestation into batches and submit them (one tx per batch)."""
        t0 = time.perf_counter()
        # Close every open window now (a demo or a shutdown does not wait for the window's end).
        batches = self.settler.flush(now_s=time.time() + self.settings.settlement_window_s)
        self._timed("settle", t0)
        if batches:
            self.progress(f"settlement: submitted {len(batches)} batch(es) to {self.contract.address}")
        return batches

    def watch(self) -> int:
        """Let the watcher catch up with the chain; returns the number of events applied."""
        t0 = time.perf_counter()
        events = self.watcher.poll_once()
        self._timed("watch", t0)
        return len(events)

    def _on_settled(self, s: Session, batch_id: str, job_ids: list[str]) -> None:
        self.progress(f"watcher: batch {batch_id[:12]}… settled on-chain ({len(job_ids)} job(s))")

    def _on_challenged(self, s: Session, job_id: str, provider: str, reason: str) -> None:
        self.progress(f"watcher: leaf of job {job_id} challenged ({reason}) against {provider}")

    def run_until_done(self, max_rounds: int = 10) -> list[StepReport]:
        """Step until no job is open or running (or ``max_rounds``), then settle and watch."""
        reports = []
        for _ in range(max_rounds):
            with Session(self.engine) as s:
                open_jobs = s.query(JobRecord).filter(JobRecord.status == JobStatus.OPEN.value).count()
            if not open_jobs:
                break
            report = self.step()
            reports.append(report)
            if not report.matched:
                break
        self.settle()
        self.watch()
        return reports

    def provider_names(self) -> list[str]:
        """Registered providers (database)."""
        with Session(self.engine) as s:
            return [p.name for p in s.query(ProviderRecord).order_by(ProviderRecord.name)]
