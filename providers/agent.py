"""The provider agent: a long-running process on the provider's own machine (``raymarket provider start``).

What it does, in order (issue 11's topology; Akash's provider daemon and Boundless's broker are the models):

1. loads the provider's key from an eth-account v3 keystore (``providers.keys``); the key stays in this
   process: never in a Ray actor, object or task argument;
2. starts the provider's OWN Ray cluster (``ray start --head`` with token auth, ``providers.cluster``), or
   attaches to the provider's existing head (``--ray-address``: a fleet of many nodes under one head);
3. detects the hardware and benchmarks it (median of several runs, ``providers.hardware``);
4. registers its offer with a signed request (``market.client.ProviderClient.register``); no inbound port
   is needed on the provider: everything is pulled;
5. heartbeats from a background thread (every ``lease_s / 3`` seconds), listing the jobs it is running,
   which extends their leases;
6. long-polls for leases, checks each one (``providers.jobs.check_lease``), runs up to ``cpus`` of them at
   once on its cluster (``providers.jobs.WorkerPool``), hashes the output bytes and signs the EIP-712
   attestation here (``providers.jobs.sign_result``), and uploads result + log lines (retried while the
   exchange is unreachable: the upload is idempotent on the exchange side).

Control (files under the data dir, so that ``provider drain`` / ``provider stop`` find the agent):

* ``<data_dir>/agent.json`` -- pidfile ``{"pid", "create_time", "name", "address", "exchange_url",
  "ray_address"}``, written at start, removed at a clean exit.
* **drain**: ``SIGUSR1``, or the control file ``<data_dir>/drain`` (``provider drain`` writes the file and
  sends the signal). The agent finishes its current leases, takes no new ones, and heartbeats
  ``draining: true``; it keeps running (the market lists it as draining). Deleting the file
  (``undrain_agent``) resumes taking leases.
* **stop**: ``SIGTERM`` (or ``SIGINT``): stop polling; wait up to ``stop_grace_s`` for running leases to
  finish and upload; give back (``lease.fail``) those still running; stop the agent's own Ray cluster by
  PID (an attached cluster is left running); exit 0.

``--trusted-fleet`` (several providers sharing one Ray cluster without auth) is an explicit option for one
operator who owns every node: Ray is not a boundary between parties (any driver can read any actor's
memory), so it is refused unless asked for, and each provider's workers are then pinned to the nodes
labelled ``provider=<name>``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import socket
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import psutil
import ray

from market.client import ApiError, ProviderClient
from market.core.embeddings import EMBEDDING_BACKENDS
from market.core.pricing import CHALLENGE_ROUNDS
from market.protocol import MAX_BATCH_UPLOADS, valid_id
from providers.cluster import ProviderCluster
from providers.errors import ClusterError, JobError, ProviderError
from providers.hardware import benchmark, detect
from market.core.tickets import sentences_from_text
from providers.jobs import WorkerPool, challenge_job, check_lease, ensure_wasm, ensure_zkey, sign_result
from providers.keys import load_keystore, read_password

#: Default ask, wei per CPU-second (the old demo's price: 25 gwei).
DEFAULT_PRICE_PER_CPU_S_WEI = 25 * 10**9
AGENT_PIDFILE = "agent.json"
DRAIN_FILE = "drain"
#: A batch upload carries at most this many result bytes (raw); a larger result goes alone.
UPLOAD_BATCH_BYTES = 4 * 2**20
#: Most sentences of one inference batch (several leases in one model call on one worker). Project choice: about
#: 4 s of MiniLM on one CPU, so a batch delays its first job's upload by little and a worker is not held long.
DEFAULT_INFERENCE_BATCH_SENTENCES = 256
#: Ticket fields that are the client's secret (a witness, a circuit input, a MiMC preimage): dropped from the
#: job's memory once it is proved (nothing of it is logged or written to disk by the agent).
SECRET_TICKET_FIELDS = ("witness", "input", "preimage")


class AgentError(ProviderError):
    """The agent could not start (keystore, cluster, registration) or be controlled; the message says why."""


@dataclass
class AgentConfig:
    """How to run one provider agent.

    Attributes:
        exchange_url: ``http://host:port`` of ``raymarket exchange serve``.
        keystore: the provider's v3 keystore; password / password_file: see ``providers.keys.read_password``.
        data_dir: the provider's own directory (cluster token, pidfiles, proving-key cache, drain file).
        name: the provider's market name (default: the host name); bound to its address by the first register.
        ray_address: attach to this head (the provider's fleet) instead of starting one;
            ray_token_file: its token (else ``$RAY_AUTH_TOKEN``, else the data dir's token).
        price_per_cpu_s_wei / price_per_gpu_s_wei: the ask, wei per resource-second.
        price_per_constraint_wei / price_per_sentence_wei: optional asks per unit of work (0: none), for proof
            jobs per constraint and inference jobs per sentence; speed plays no part in them.
        cpus: most leases run at once and CPUs offered (default: the cluster's CPUs; an own head is
            started with this many CPUs, default all detected).
        trusted_fleet: allow a cluster without token auth (see the module docstring).
        poll_wait_s: long-poll wait per request, seconds (<= 25); heartbeat_s: default ``lease_s / 3``.
        job_timeout_s: a job running longer is killed and failed; stop_grace_s: see "stop" above.
        object_store_bytes: object store of an own head; fast_health_check: quick dead-node detection (tests).
        warm_up: load the embedding model before the first poll.
        benchmark_runs: benchmark repetitions (the median is offered as ``speed``).
        dev_bond_wei: on a development exchange (``/v1/info`` ``dev``), bond this much from the dev faucet
            after registering (``raymarket dev up``); ignored on a real exchange.
        queue_depth: leases held per CPU (default 1). Above 1 the offer admits ``cpus * queue_depth`` leases at
            once; the extra ones wait in the agent's queue and start as soon as a worker is free, so short jobs
            never wait for an auction round between two runs (``hardware.queue_depth`` records it).
        batch_uploads: upload the results that finished while the previous upload was in flight together in one
            signed ``lease.complete_batch`` request (falls back to one ``lease.complete`` each on an exchange
            without it).
        embedding_backend: how inference jobs embed (``torch``, ``onnx``, ``onnx-int8``; reported to the exchange
            as ``hardware.embedding_backend``, whose spot-check allows each backend its documented tolerance,
            ``market.core.embeddings.BACKEND_MIN_COSINE``).
        inference_batch_sentences: inference leases waiting here (one poll's, and those queued while the
            workers were busy; all on this agent's one model and backend) run on ONE worker in one model call over
            their concatenated sentences, split back per job (each job keeps its own result, attestation and
            upload), in batches of at most this many sentences (a bigger job runs alone); 0 or 1: one worker call
            per job. The agent's ``stats`` count ``inference_batches`` and
            ``batched_jobs``.
    """

    exchange_url: str
    keystore: Path
    data_dir: Path
    name: str | None = None
    password: str | None = None
    password_file: Path | None = None
    ray_address: str | None = None
    ray_token_file: Path | None = None
    price_per_cpu_s_wei: int = DEFAULT_PRICE_PER_CPU_S_WEI
    price_per_gpu_s_wei: int = 0
    price_per_constraint_wei: int = 0
    price_per_sentence_wei: int = 0
    cpus: int | None = None
    trusted_fleet: bool = False
    poll_wait_s: float = 10.0
    heartbeat_s: float | None = None
    job_timeout_s: float = 1800.0
    stop_grace_s: float = 30.0
    object_store_bytes: int = 200 * 1024 * 1024
    fast_health_check: bool = False
    warm_up: bool = False
    benchmark_runs: int = 5
    dev_bond_wei: int = 0
    queue_depth: int = 1
    batch_uploads: bool = True
    embedding_backend: str = "torch"
    inference_batch_sentences: int = DEFAULT_INFERENCE_BATCH_SENTENCES


@dataclass
class _Upload:
    job: Any
    result: bytes
    result_hash: str
    signature: str
    logs: list[str]
    secs: float


@dataclass
class _Running:
    lease_id: str
    job_id: str
    started: float
    future: Future | None = None
    abandoned: bool = False
    logs: list[str] = field(default_factory=list)
    uploading: bool = False  # computed; queued for the upload thread (the exchange counts it done on upload)


def default_name() -> str:
    """The host name, cut to the market's id alphabet (``A-Za-z0-9_-``, 1-64 chars)."""
    host = socket.gethostname().split(".")[0]
    clean = "".join(c if c.isalnum() or c in "-_" else "-" for c in host)[:64]
    return clean or "provider"


class Agent:
    """One provider agent (see the module docstring). Use :func:`run_agent`; tests may drive it directly.

    Args:
        config: the :class:`AgentConfig`; account: the provider's ``LocalAccount``;
        progress: called with one human-readable line per event (stderr in the CLI).
    """

    def __init__(self, config: AgentConfig, account: Any, progress: Callable[[str], None] = print) -> None:
        self.cfg = config
        self.account = account
        self.progress = progress
        self.name = config.name or default_name()
        if not valid_id(self.name):
            raise AgentError(f"provider name {self.name!r}: use 1-64 of A-Z a-z 0-9 _ -")
        self.data_dir = Path(config.data_dir)
        self.client = ProviderClient(config.exchange_url, account)
        self.cluster: ProviderCluster | None = None
        self.pool: Any = None
        self.info: dict[str, Any] = {}
        self.cpus = 0
        self.registration: dict[str, Any] = {}
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._drain_signal = threading.Event()
        self._executor: ThreadPoolExecutor | None = None
        self._hb_thread: threading.Thread | None = None
        self._uploads: queue.Queue = queue.Queue()
        self._uploader: threading.Thread | None = None
        self._batch_route = True
        self.stats = {"completed": 0, "failed": 0, "rejected": 0, "leases": 0, "inference_batches": 0,
                      "batched_jobs": 0}
        #: Inference leases accepted but not started: (job, run, sentences), arrival order (:meth:`_inference_task`).
        self._infer_waiting: list[tuple[Any, _Running, int]] = []
        #: Set when this process's Ray node (its raylet) died: the agent stops (exit 3) instead of taking leases
        #: it cannot run (found by the chaos suite: it kept heartbeating and failing every lease).
        self.node_died = False
        self._node_checked = 0.0

    # ---------------------------------------------------------------- state
    @property
    def draining(self) -> bool:
        """True while ``<data_dir>/drain`` exists (SIGUSR1 / :meth:`drain` create it; deleting it resumes)."""
        return self._drain_signal.is_set() or (self.data_dir / DRAIN_FILE).exists()

    @property
    def queue_depth(self) -> int:
        """Leases held per CPU (``AgentConfig.queue_depth``, at least 1)."""
        return max(1, int(self.cfg.queue_depth))

    @property
    def slots(self) -> int:
        """Leases held at once: ``cpus * queue_depth`` (at most ``cpus`` of them run at a time)."""
        return self.cpus * self.queue_depth

    def _holding(self) -> int:
        """Leases queued or running here (not those computed and waiting for their upload): what the exchange
        counts against the offer, so what bounds the next poll."""
        with self._lock:
            return sum(1 for r in self._running.values() if not r.abandoned and not r.uploading)

    def running_jobs(self) -> list[str]:
        """Job ids of the leases being run or uploaded now."""
        with self._lock:
            return [r.job_id for r in self._running.values() if not r.abandoned]

    def drain(self) -> None:
        """Finish current leases, take no new ones: writes the drain control file (a flag if it cannot)."""
        try:
            (self.data_dir / DRAIN_FILE).touch()
        except OSError:
            self._drain_signal.set()

    def request_stop(self) -> None:
        """Ask :meth:`run` to return (what SIGTERM does)."""
        self._stop.set()

    # ---------------------------------------------------------------- start
    def start(self) -> dict[str, Any]:
        """Cluster, hardware, registration, heartbeat thread; returns the registration summary.

        Raises:
            AgentError: the cluster could not be started/attached, or the exchange refused the registration.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.info = self._retry_unreachable(self.client.info, "fetch /v1/info", 120.0)
        hw = detect()
        self.cluster = self._cluster(hw.cpus)
        self.cluster.connect()
        cluster_cpus = int(ray.cluster_resources().get("CPU", 0))
        cluster_gpus = int(ray.cluster_resources().get("GPU", 0))
        self.cpus = int(self.cfg.cpus or cluster_cpus or hw.cpus)
        times = [benchmark(repeats=1) for _ in range(max(1, self.cfg.benchmark_runs))]
        speed = sorted(times)[len(times) // 2]
        self.progress(f"provider {self.name}: {hw.cpus} CPUs ({hw.cpu_model}), {hw.memory_bytes // 2**30} GiB, "
                      f"GPUs {[g.model for g in hw.gpus] or 'none'}; cluster {self.cluster.address} "
                      f"({'own head' if self.cluster.owned else 'attached'}, {cluster_cpus} CPUs); "
                      f"speed {speed} (median of {len(times)})")
        opts = {"label_selector": {"provider": self.name}} if self.cfg.trusted_fleet else None
        self.pool = WorkerPool(self.cpus, cache_dir=str(self.data_dir / "keys"), actor_options=opts,
                               name_prefix=f"raymarket-worker-{self.name}-",
                               embedding_backend=self.cfg.embedding_backend)
        if self.cfg.warm_up:
            secs = self.pool.warm_up(["inference"])
            self.progress(f"provider {self.name}: embedding model loaded in {secs:.1f} s")
        threading.Thread(target=self._warm_challenge_key, name=f"challenge-key-{self.name}", daemon=True).start()
        offer = {"price_per_cpu_s_wei": int(self.cfg.price_per_cpu_s_wei),
                 "price_per_gpu_s_wei": int(self.cfg.price_per_gpu_s_wei), "cpus": self.slots,
                 "gpus": cluster_gpus or len(hw.gpus), "gpu_model": hw.gpu_model, "memory_bytes": hw.memory_bytes,
                 "speed": max(speed, 0.001), "price_per_constraint_wei": int(self.cfg.price_per_constraint_wei),
                 "price_per_sentence_wei": int(self.cfg.price_per_sentence_wei)}
        hardware = {"head": hw.to_dict(), "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
                    "cluster_cpus": cluster_cpus, "cluster_gpus": cluster_gpus, "bench": times,
                    "queue_depth": self.queue_depth, "challenges": 1,
                    "embedding_backend": self.cfg.embedding_backend}  # answers timed speed challenges
        try:
            self.registration = self._retry_unreachable(
                lambda: self.client.register(self.name, offer=offer, hardware=hardware,
                                             ray_address=self.cluster.address), "register", 120.0)
        except ApiError as exc:
            raise AgentError(f"provider {self.name}: the exchange refused the registration: {exc}") from None
        if self.cfg.dev_bond_wei and self.info.get("dev"):
            self.client.t.signed("/v1/dev/faucet", "dev.faucet", {"amount_wei": "0", "bond_wei": str(
                int(self.cfg.dev_bond_wei)), "provider_name": self.name})
            self.progress(f"provider {self.name}: bonded {self.cfg.dev_bond_wei} wei from the DEV faucet")
        self._write_pidfile()
        self._executor = ThreadPoolExecutor(max_workers=self.cpus, thread_name_prefix=f"lease-{self.name}")
        self._hb_thread = threading.Thread(target=self._heartbeat_loop, name=f"heartbeat-{self.name}", daemon=True)
        self._hb_thread.start()
        if self.cfg.batch_uploads:
            self._uploader = threading.Thread(target=self._upload_loop, name=f"uploads-{self.name}", daemon=True)
            self._uploader.start()
        self.progress(f"provider {self.name}: registered as {self.account.address} at {self.cfg.exchange_url}, "
                      f"asking {self.cfg.price_per_cpu_s_wei} wei/CPU-s, {self.cpus} leases at once, {self.slots} held")
        return {"provider": self.name, "address": self.account.address, "ray_address": self.cluster.address,
                "cluster_owned": self.cluster.owned, "cpus": self.cpus, "speed": speed,
                "exchange_url": self.cfg.exchange_url}

    def _cluster(self, detected_cpus: int) -> ProviderCluster:
        if self.cfg.ray_address:
            cluster = ProviderCluster.attach(self.name, self.cfg.ray_address, self.data_dir,
                                             token_file=self.cfg.ray_token_file)
            if cluster.token is None and not self.cfg.trusted_fleet:
                raise AgentError(f"cluster {self.cfg.ray_address} has no auth token: pass --ray-token-file (or set "
                                 "RAY_AUTH_TOKEN); a cluster without auth is only for --trusted-fleet")
            return cluster
        stale = ProviderCluster.from_pidfile(self.data_dir)
        if stale is not None:
            if stale.alive():
                raise AgentError(f"provider {self.name}: a Ray cluster of {self.data_dir} is still running at "
                                 f"{stale.address}: run `raymarket provider stop` first")
            stale.pidfile.unlink(missing_ok=True)
        numba_cache = os.environ.get("NUMBA_CACHE_DIR") or str(Path.home() / ".cache" / "raymarket-numba")
        try:
            return ProviderCluster.start(self.name, int(self.cfg.cpus or detected_cpus), self.data_dir,
                                         object_store_bytes=self.cfg.object_store_bytes,
                                         fast_health_check=self.cfg.fast_health_check,
                                         extra_env={"NUMBA_CACHE_DIR": numba_cache})
        except ClusterError as exc:
            raise AgentError(str(exc)) from None

    def _retry_unreachable(self, fn: Callable[[], Any], what: str, within_s: float) -> Any:
        deadline, delay = time.monotonic() + within_s, 0.5
        while True:
            try:
                return fn()
            except ApiError as exc:
                if not _transient(exc) or time.monotonic() > deadline or self._stop.is_set():
                    raise
                self.progress(f"provider {self.name}: {what}: {exc.code}; retrying in {delay:.1f} s")
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _write_pidfile(self) -> None:
        me = psutil.Process()
        rec = {"pid": me.pid, "create_time": me.create_time(), "name": self.name, "address": self.account.address,
               "exchange_url": self.cfg.exchange_url, "ray_address": self.cluster.address if self.cluster else None}
        tmp = self.data_dir / (AGENT_PIDFILE + ".tmp")
        tmp.write_text(json.dumps(rec), encoding="utf-8")
        tmp.replace(self.data_dir / AGENT_PIDFILE)

    # ---------------------------------------------------------------- loops
    def _heartbeat_loop(self) -> None:
        lease_s = float(self.info.get("lease_s") or 30.0)
        interval = self.cfg.heartbeat_s or max(0.5, lease_s / 3.0)
        last_error = ""
        while not self._stop.wait(interval):
            try:
                self.client.heartbeat(self.name, running=self.running_jobs(), draining=self.draining)
                if last_error:
                    self.progress(f"provider {self.name}: heartbeat ok again")
                last_error = ""
            except ApiError as exc:
                if exc.code != last_error:
                    self.progress(f"provider {self.name}: heartbeat failed: {exc.code}: {exc.message[:200]}")
                last_error = exc.code

    def run(self) -> None:
        """Poll leases and run them until :meth:`request_stop` (SIGTERM); then shut down (see "stop")."""
        delay = 0.5
        last_error = ""
        was_draining = False
        try:
            while not self._stop.is_set():
                if self.draining:
                    if not was_draining:
                        self.progress(f"provider {self.name}: draining: finishing {len(self.running_jobs())} "
                                      "lease(s), taking no new ones")
                        self._heartbeat_now()
                    was_draining = True
                    self._stop.wait(0.5)
                    continue
                if was_draining:
                    self.progress(f"provider {self.name}: drain ended; taking leases again")
                    was_draining = False
                    self._heartbeat_now()
                if self._own_node_dead():
                    self.node_died = True
                    self.progress(f"provider {self.name}: its Ray node died (raylet gone): stopping; restart the agent")
                    break
                free = self.slots - self._holding()
                if free <= 0:
                    self._stop.wait(0.2)
                    continue
                try:
                    leases = self.client.poll(self.name, max_leases=free, wait_s=self.cfg.poll_wait_s)
                    delay, last_error = 0.5, ""
                except ApiError as exc:
                    if exc.code != last_error:
                        self.progress(f"provider {self.name}: poll failed: {exc.code}: {exc.message[:200]}")
                    last_error = exc.code
                    self._stop.wait(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                batch: list[tuple[Any, _Running]] = []
                for lease in leases:
                    self._accept(lease, batch)
                self._dispatch_inference(batch)
                for ch in self.client.take_challenges():  # timed by the exchange: run it at once
                    self._executor.submit(self._answer_challenge, ch)
                if leases:
                    self._heartbeat_now()
        finally:
            self.shutdown()

    def _own_node_dead(self, every_s: float = 2.0) -> bool:
        """True when the cluster's GCS marks this process's own Ray node dead (checked at most every ``every_s``
        seconds; False when the GCS cannot be asked: that is not this check's call)."""
        now = time.monotonic()
        if now - self._node_checked < every_s:
            return False
        self._node_checked = now
        try:
            me = ray.get_runtime_context().get_node_id()
            return any(n.get("NodeID") == me and not n.get("Alive") for n in ray.nodes())
        except Exception:  # noqa: BLE001 -- Ray raises many kinds
            return False

    def _heartbeat_now(self) -> None:
        try:
            self.client.heartbeat(self.name, running=self.running_jobs(), draining=self.draining)
        except ApiError:
            pass

    def _accept(self, lease: dict[str, Any], batch: list[tuple[Any, "_Running"]] | None = None) -> None:
        """Check and start ``lease``; an inference lease goes to ``batch`` instead (:meth:`_dispatch_inference`)."""
        self.stats["leases"] += 1
        job_id = str(lease.get("job_id", "?"))
        if self._stop.is_set() or self.draining:
            self._give_back(lease, "provider is stopping or draining", [])
            return
        try:
            job = check_lease(lease, self.info)
        except JobError as exc:
            self.progress(f"provider {self.name}: refusing lease of {job_id}: {exc.message}")
            self._give_back(lease, f"bad ticket: {exc.message}", [f"refused: {exc.message}"])
            return
        run = _Running(lease_id=job.lease_id, job_id=job.job_id, started=time.time())
        with self._lock:
            self._running[job.lease_id] = run
        if batch is not None and job.kind == "inference" and self.cfg.inference_batch_sentences > 1:
            batch.append((job, run))
            return
        run.future = self._executor.submit(self._run_lease, job, run)

    def _dispatch_inference(self, items: list[tuple[Any, "_Running"]]) -> None:
        """Queue one poll's inference leases for batching. Each gets a task; the first task to start takes its lease
        and the other inference leases still waiting (this poll's, and earlier polls' not started yet: those
        queued while the workers were busy), in arrival order, while they fit ``inference_batch_sentences``
        sentences (:func:`take_batch`), and runs them as one worker call (:meth:`_run_inference_batch`; alone, like
        any lease). A task whose lease another batch took returns at once (the lease's future is that batch's)."""
        if not items:
            return
        with self._lock:  # one acquisition: no task takes a batch before the whole poll is queued
            for job, run in items:
                self._infer_waiting.append((job, run, len(sentences_from_text(job.ticket["text"]))))
            for _, run in items:
                run.future = self._executor.submit(self._inference_task, run)

    def _inference_task(self, run: "_Running") -> None:
        with self._lock:
            waiting = self._infer_waiting
            first = next((i for i, w in enumerate(waiting) if w[1] is run), None)
            if first is None:  # taken into another lease's batch
                return
            idx = take_batch([w[2] for w in waiting], first, int(self.cfg.inference_batch_sentences))
            chunk = [waiting[i] for i in idx]
            for i in sorted(idx, reverse=True):
                del waiting[i]
            for _, other, _ in chunk[1:]:
                other.future = run.future
        if len(chunk) == 1:
            self._run_lease(chunk[0][0], run)
        else:
            self._run_inference_batch(chunk)

    def _run_inference_batch(self, chunk: list[tuple[Any, "_Running", int]]) -> None:
        """Several inference leases in ONE model call on one worker; each job's result is signed and uploaded on
        its own (its own attestation); a failure of the call gives every lease of the batch back."""
        t0 = time.perf_counter()
        batch_id = f"ib-{chunk[0][0].lease_id[-10:]}"
        total = sum(n for _, _, n in chunk)
        for job, run, _ in chunk:
            run.logs.append(f"{_now()} provider {self.name}: started inference job {job.job_id} (lease {job.lease_id}) "
                            f"in batch {batch_id}: {len(chunk)} jobs, {total} sentences, one model call")
        try:
            results, info = self.pool.run_inference_batch([job for job, _, _ in chunk], self.cfg.job_timeout_s)
        except JobError as exc:
            self.progress(f"provider {self.name}: inference batch {batch_id} failed: {exc.reason}: "
                          f"{exc.message[:200]}")
            for job, run, _ in chunk:
                run.logs.append(f"{_now()} provider {self.name}: failed: {exc.reason}: {exc.message}")
                if not run.abandoned:
                    self._give_back({"lease_id": job.lease_id, "job_id": job.job_id},
                                    f"{exc.reason}: {exc.message}", run.logs)
                self._forget(job.lease_id)
            return
        secs = time.perf_counter() - t0
        self.stats["inference_batches"] += 1
        self.stats["batched_jobs"] += len(chunk)
        self.progress(f"provider {self.name}: inference batch {batch_id}: {len(chunk)} jobs, {total} sentences, "
                      f"{info.get('model_calls')} model call on worker pid {info.get('pid')} in {secs:.2f} s: "
                      + ", ".join(job.job_id for job, _, _ in chunk))
        for (job, run, _), result in zip(chunk, results):
            self._finish(job, run, result, secs)

    def _warm_challenge_key(self) -> None:
        """Build the speed challenges' proving key once, off the clock (one throwaway proof on the pool), so a
        timed challenge measures proving, not key generation."""
        try:
            self.pool.run(challenge_job({"challenge_id": "warm-up", "circuit": "mimc7", "rounds": CHALLENGE_ROUNDS,
                                         "preimage": 1, "deadline_at": time.time() + 600}), 600.0)
        except JobError as exc:
            self.progress(f"provider {self.name}: challenge key warm-up failed: {exc}")

    def _answer_challenge(self, ch: dict[str, Any]) -> None:
        """Prove a speed challenge on the cluster like a proof lease and answer it (the exchange times it)."""
        cid = str(ch.get("challenge_id", "?"))
        try:
            job = challenge_job(ch)
            proof = self.pool.run(job, max(1.0, job.expires_at - time.time()))
            verdict = self.client.answer_challenge(self.name, job.job_id, proof)
        except (JobError, ApiError) as exc:
            self.progress(f"provider {self.name}: speed challenge {cid} not answered: {exc}")
            return
        self.progress(f"provider {self.name}: speed challenge {cid}: " + (
            f"passed, measured speed {verdict.get('speed')}" if verdict.get("passed")
            else f"failed: {verdict.get('reason')}"))

    def _give_back(self, lease: dict[str, Any], reason: str, logs: list[str]) -> None:
        try:
            self._retry_unreachable(lambda: self.client.fail(lease, reason=reason, logs=logs), "lease.fail", 30.0)
            self.stats["failed"] += 1
        except (ApiError, KeyError) as exc:
            self.progress(f"provider {self.name}: could not give back lease of {lease.get('job_id')}: {exc}")

    def _run_lease(self, job: Any, run: _Running) -> None:
        log = run.logs
        t0 = time.perf_counter()
        log.append(f"{_now()} provider {self.name}: started {job.kind} job {job.job_id} (lease {job.lease_id})")
        try:
            if "zkey_sha256" in job.ticket:  # a registered circuit: its zkey by hash, fetched once, cached on disk
                try:
                    job.ticket["zkey_path"] = str(ensure_zkey(self.client.circuit_zkey, self.data_dir / "keys",
                                                              job.ticket["zkey_sha256"]))
                    if "wasm_sha256" in job.ticket:  # --input: the witness is computed here, from the wasm
                        job.ticket["wasm_path"] = str(ensure_wasm(self.client.circuit_wasm, self.data_dir / "keys",
                                                                  job.ticket["circuit"], job.ticket["wasm_sha256"]))
                except (ApiError, OSError) as fetch_exc:
                    raise JobError(job.job_id, "error", f"zkey fetch: {type(fetch_exc).__name__}: {fetch_exc}") \
                        from None
            try:
                result = self.pool.run(job, timeout_s=self.cfg.job_timeout_s)
            finally:  # the client's secret leaves this process's memory once proved (or failed)
                for name in SECRET_TICKET_FIELDS:
                    job.ticket.pop(name, None)
        except JobError as exc:
            log.append(f"{_now()} provider {self.name}: failed: {exc.reason}: {exc.message}")
            self.progress(f"provider {self.name}: job {job.job_id} failed: {exc.reason}: {exc.message[:200]}")
            if not run.abandoned:
                self._give_back({"lease_id": job.lease_id, "job_id": job.job_id}, f"{exc.reason}: {exc.message}",
                                log)
            self._forget(job.lease_id)
            return
        self._finish(job, run, result, time.perf_counter() - t0)

    def _finish(self, job: Any, run: _Running, result: bytes, secs: float) -> None:
        """Sign ``result`` (the job's own attestation) and queue or send its upload."""
        log = run.logs
        result_hash, signature = sign_result(self.account, job, result)
        log.append(f"{_now()} provider {self.name}: done in {secs:.2f} s, {len(result)} bytes, "
                   f"result hash {result_hash}")
        if run.abandoned:
            self._forget(job.lease_id)
            return
        upload = _Upload(job, result, result_hash, signature, log, secs)
        if self._uploader is not None:
            run.uploading = True
            self._uploads.put(upload)  # the upload thread sends it, with whatever else finished meanwhile
            return
        self._upload_one(upload)

    def _upload_one(self, u: "_Upload") -> None:
        job = u.job
        try:
            answer = self._retry_unreachable(
                lambda: self.client.complete({"lease_id": job.lease_id, "job_id": job.job_id}, result=u.result,
                                             result_hash=u.result_hash, signature=u.signature, logs=u.logs),
                f"upload of {job.job_id}", max(60.0, self.cfg.job_timeout_s))
            self._answered(u, answer)
        except ApiError as exc:
            self.progress(f"provider {self.name}: upload of {job.job_id} refused: {exc}")
        finally:
            self._forget(job.lease_id)

    def _answered(self, u: "_Upload", answer: dict[str, Any]) -> None:
        status = answer.get("status")
        if status == "error":
            self.progress(f"provider {self.name}: upload of {u.job.job_id} refused: {answer.get('error')}: "
                          f"{str(answer.get('message'))[:200]}")
            return
        self.stats["completed" if status == "paid" else "rejected"] += 1
        self.progress(f"provider {self.name}: job {u.job.job_id} {status} ({u.secs:.2f} s)"
                      + (f": {answer.get('reason')}" if answer.get("reason") else ""))

    def _upload_loop(self) -> None:
        """Send queued results: everything queued while the last request was in flight goes in the next one."""
        while True:
            first = self._uploads.get()
            if first is None:
                return
            batch, size, stop = [first], len(first.result), False
            while len(batch) < MAX_BATCH_UPLOADS and size < UPLOAD_BATCH_BYTES:
                try:
                    nxt = self._uploads.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
                size += len(nxt.result)
            self._upload_batch(batch)
            if stop:
                return

    def _upload_batch(self, batch: list["_Upload"]) -> None:
        if len(batch) == 1 or not self._batch_route:
            for u in batch:
                self._upload_one(u)
            return
        uploads = [{"lease": {"lease_id": u.job.lease_id, "job_id": u.job.job_id}, "result": u.result,
                    "result_hash": u.result_hash, "signature": u.signature, "logs": u.logs} for u in batch]
        try:
            answers = self._retry_unreachable(lambda: self.client.complete_many(uploads), "batch upload",
                                              max(60.0, self.cfg.job_timeout_s))
        except ApiError as exc:
            if exc.status in (404, 405):  # an exchange without lease.complete_batch: one request each
                self._batch_route = False
            else:
                self.progress(f"provider {self.name}: batch upload refused ({exc}); uploading one by one")
            for u in batch:
                self._upload_one(u)
            return
        for u, answer in zip(batch, answers):
            self._answered(u, answer)
            self._forget(u.job.lease_id)

    def _forget(self, lease_id: str) -> None:
        with self._lock:
            self._running.pop(lease_id, None)

    # ---------------------------------------------------------------- stop
    def shutdown(self) -> None:
        """Stop polling, let running leases finish (up to ``stop_grace_s``), give back the rest, stop the
        heartbeat, the workers and an own Ray cluster (by PID). Idempotent."""
        self._stop.set()
        if getattr(self, "_shut", False):
            return
        self._shut = True
        deadline = time.monotonic() + self.cfg.stop_grace_s
        with self._lock:
            running = list(self._running.values())
        if running:
            self.progress(f"provider {self.name}: stopping; waiting up to {self.cfg.stop_grace_s:.0f} s for "
                          f"{len(running)} lease(s)")
        for r in running:
            if r.future is not None:
                try:
                    r.future.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception:  # noqa: BLE001 -- timeout or the job's own failure (already reported)
                    pass
        if self._uploader is not None:  # results already computed are uploaded, not given back
            self._uploads.put(None)
            self._uploader.join(max(1.0, deadline - time.monotonic()))
        with self._lock:
            left = [r for r in self._running.values() if r.future is None or not r.future.done()]
            for r in left:
                r.abandoned = True
        for r in left:
            self.progress(f"provider {self.name}: giving back lease of {r.job_id} (stopping)")
            try:
                self.client.fail({"lease_id": r.lease_id, "job_id": r.job_id}, reason="provider stopped",
                                 logs=r.logs + [f"{_now()} provider {self.name}: stopped before the job finished"])
            except ApiError as exc:
                self.progress(f"provider {self.name}: could not give back {r.job_id}: {exc.code}")
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self.pool is not None:
            try:
                self.pool.shutdown()
            except Exception:  # noqa: BLE001 -- the cluster may be gone already
                pass
        try:
            if ray.is_initialized():
                ray.shutdown()
        except Exception:  # noqa: BLE001
            pass
        if self.cluster is not None and self.cluster.owned:
            n = self.cluster.stop()
            self.progress(f"provider {self.name}: stopped its Ray cluster ({n} processes, by PID)")
        self.client.close()
        try:
            rec = json.loads((self.data_dir / AGENT_PIDFILE).read_text(encoding="utf-8"))
            if rec.get("pid") == os.getpid():
                (self.data_dir / AGENT_PIDFILE).unlink()
        except (OSError, ValueError):
            pass


def take_batch(sizes: list[int], first: int, bound: int) -> list[int]:
    """The batch a starting inference task takes from the waiting leases (sentence counts ``sizes``, arrival
    order): ``first`` (its own lease, even when over ``bound``), then every other lease in order that still fits
    ``bound`` sentences in all."""
    out, total = [first], sizes[first]
    for i, n in enumerate(sizes):
        if i != first and total + n <= bound:
            out.append(i)
            total += n
    return out


def _transient(exc: ApiError) -> bool:
    """An exchange that is down or restarting (worth retrying), as opposed to a refusal."""
    return exc.code in ("unreachable", "http") and (exc.status == 0 or exc.status >= 500)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --------------------------------------------------------------------------- entry points for the CLI


def run_agent(config: AgentConfig, *, progress: Callable[[str], None] = print,
              on_started: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the provider agent until SIGTERM/SIGINT (``raymarket provider start``); blocks.

    Loads the keystore (password from ``config.password``, ``config.password_file`` or ``RAYMARKET_PASSWORD``),
    starts or attaches the cluster, registers, then polls and runs leases. Signal handlers (SIGTERM, SIGINT:
    stop; SIGUSR1: drain) are installed when called from the main thread.

    Args:
        on_started: called once with the registration summary (``provider, address, ray_address,
            cluster_owned, cpus, speed, exchange_url``) before the first poll.
    Returns:
        the final summary: the registration plus ``stats`` (leases, completed, failed, rejected).
    Raises:
        providers.errors.KeystoreError: keystore or password problem.
        AgentError: cluster or registration problem (the agent's own cluster is stopped again).
    """
    account = load_keystore(config.keystore, read_password(config.password, config.password_file))
    agent = Agent(config, account, progress)
    main_thread = threading.current_thread() is threading.main_thread()

    def install_handlers() -> None:
        if main_thread:
            signal.signal(signal.SIGTERM, lambda *_: agent.request_stop())
            signal.signal(signal.SIGINT, lambda *_: agent.request_stop())
            signal.signal(signal.SIGUSR1, lambda *_: agent.drain())

    install_handlers()
    try:
        summary = agent.start()
    except BaseException:
        agent.shutdown()
        raise
    install_handlers()  # again: ray.init installs its own SIGTERM handler (which exits at once)
    if on_started is not None:
        on_started(summary)
    agent.run()
    return summary | {"stats": dict(agent.stats), "node_died": agent.node_died}


def _agent_record(data_dir: Path) -> tuple[dict[str, Any], psutil.Process | None]:
    path = Path(data_dir) / AGENT_PIDFILE
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise AgentError(f"no agent pidfile at {path}: is `raymarket provider start` running with this data dir?") from None
    try:
        proc = psutil.Process(int(rec["pid"]))
        if abs(proc.create_time() - float(rec["create_time"])) > 0.01:
            proc = None
    except psutil.NoSuchProcess:
        proc = None
    return rec, proc


def drain_agent(data_dir: Path | str) -> dict[str, Any]:
    """``raymarket provider drain``: write ``<data_dir>/drain`` and send SIGUSR1 to the agent.

    Returns ``{"name", "pid", "draining": true, "running": bool}``.
    Raises:
        AgentError: no pidfile under ``data_dir``.
    """
    rec, proc = _agent_record(Path(data_dir))
    (Path(data_dir) / DRAIN_FILE).touch()
    if proc is not None:
        proc.send_signal(signal.SIGUSR1)
    return {"name": rec.get("name"), "pid": rec["pid"], "draining": True, "running": proc is not None}


def undrain_agent(data_dir: Path | str) -> dict[str, Any]:
    """Remove ``<data_dir>/drain``: the agent takes leases again."""
    (Path(data_dir) / DRAIN_FILE).unlink(missing_ok=True)
    return {"draining": False}


def stop_agent(data_dir: Path | str, timeout_s: float = 60.0) -> dict[str, Any]:
    """``raymarket provider stop``: SIGTERM the agent recorded under ``data_dir`` and wait for it to exit.

    If it does not exit within ``timeout_s`` it is killed, and its own Ray cluster (``<data_dir>/ray/
    cluster.json``) is stopped by PID. Returns ``{"name", "pid", "stopped": bool, "killed": bool,
    "cluster_processes_stopped": int}``.
    Raises:
        AgentError: no pidfile under ``data_dir``.
    """
    data_dir = Path(data_dir)
    rec, proc = _agent_record(data_dir)
    killed = False
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            killed = True
    n = 0
    cluster = ProviderCluster.from_pidfile(data_dir)
    if cluster is not None:
        n = cluster.stop()
    (data_dir / AGENT_PIDFILE).unlink(missing_ok=True)
    return {"name": rec.get("name"), "pid": rec["pid"], "stopped": True, "killed": killed,
            "cluster_processes_stopped": n}


def start_provider(**_: Any) -> dict[str, Any]:
    """Removed: providers no longer join a shared cluster and write the database; use :func:`run_agent`.

    Raises:
        AgentError: always (kept only so that an old ``cli.py`` still imports).
    """
    raise AgentError("`provider start` now runs the agent against an exchange: "
                     "raymarket provider start --exchange URL --key KEYSTORE")


def main(argv: list[str] | None = None) -> int:
    """``python -m providers.agent``: the agent without the CLI (tests, ``dev up``); same options as
    ``raymarket provider start``. Prints the registration as one JSON line on stdout once started."""
    p = argparse.ArgumentParser(prog="python -m providers.agent", description=__doc__.split("\n\n")[0])
    p.add_argument("--exchange", required=True)
    p.add_argument("--key", required=True, type=Path, help="v3 keystore")
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--password-file", type=Path)
    p.add_argument("--name")
    p.add_argument("--ray-address")
    p.add_argument("--ray-token-file", type=Path)
    p.add_argument("--price-per-cpu-s-wei", type=int, default=DEFAULT_PRICE_PER_CPU_S_WEI)
    p.add_argument("--price-per-constraint-wei", type=int, default=0, help="ask per constraint of a proof job")
    p.add_argument("--price-per-sentence-wei", type=int, default=0, help="ask per sentence of an inference job")
    p.add_argument("--cpus", type=int)
    p.add_argument("--trusted-fleet", action="store_true")
    p.add_argument("--poll-wait-s", type=float, default=10.0)
    p.add_argument("--heartbeat-s", type=float)
    p.add_argument("--job-timeout-s", type=float, default=1800.0)
    p.add_argument("--stop-grace-s", type=float, default=30.0)
    p.add_argument("--fast-health-check", action="store_true")
    p.add_argument("--warm-up", action="store_true")
    p.add_argument("--benchmark-runs", type=int, default=5)
    p.add_argument("--dev-bond-wei", type=int, default=0)
    p.add_argument("--queue-depth", type=int, default=1, help="leases held per CPU (short jobs: no round wait)")
    p.add_argument("--no-batch-uploads", action="store_true", help="one lease.complete request per result")
    p.add_argument("--embedding-backend", choices=EMBEDDING_BACKENDS, default="torch",
                   help="how inference jobs embed: torch (sentence-transformers), onnx, onnx-int8")
    p.add_argument("--inference-batch-sentences", type=int, default=DEFAULT_INFERENCE_BATCH_SENTENCES,
                   help="inference leases of one poll run in one model call on one worker, up to this many "
                        "sentences per batch (0: one call per job)")
    a = p.parse_args(argv)
    cfg = AgentConfig(exchange_url=a.exchange, keystore=a.key, data_dir=a.data_dir, name=a.name,
                      password_file=a.password_file, ray_address=a.ray_address, ray_token_file=a.ray_token_file,
                      price_per_cpu_s_wei=a.price_per_cpu_s_wei, cpus=a.cpus, trusted_fleet=a.trusted_fleet,
                      price_per_constraint_wei=a.price_per_constraint_wei,
                      price_per_sentence_wei=a.price_per_sentence_wei,
                      poll_wait_s=a.poll_wait_s, heartbeat_s=a.heartbeat_s, job_timeout_s=a.job_timeout_s,
                      stop_grace_s=a.stop_grace_s, fast_health_check=a.fast_health_check, warm_up=a.warm_up,
                      benchmark_runs=a.benchmark_runs, dev_bond_wei=a.dev_bond_wei, queue_depth=a.queue_depth,
                      batch_uploads=not a.no_batch_uploads, embedding_backend=a.embedding_backend,
                      inference_batch_sentences=a.inference_batch_sentences)

    def started(summary: dict[str, Any]) -> None:
        print(json.dumps(summary), flush=True)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        summary = run_agent(cfg, progress=log, on_started=started)
    except ProviderError as exc:
        log(f"error: {exc}")
        return 2
    log(f"provider {summary['provider']}: exited ({summary['stats']})")
    return 3 if summary.get("node_died") else 0


if __name__ == "__main__":
    sys.exit(main())
