"""The whole market, end to end: many small jobs through the real product path, beside raw Ray doing the same work.

Product path: the exchange service as a subprocess (``python -m market.exchange.service --dev``: SQLite, and a
real anvil node (``--chain anvil``, default) or the embedded in-process EVM (``--chain in-process``, py-evm: slow,
and its transactions run under the service's write lock)), ``--providers`` provider agents
(``python -m providers.agent``, ``--queue-depth`` leases held per CPU, batch uploads), each on its OWN token-auth Ray
cluster, a client signing every request with ``market.client``: submit (escrow) -> round (match, lease) -> poll
-> run on the provider's cluster -> attest (EIP-712, in the agent) -> upload -> verify (Groth16 pairing check or
embedding shape/norms) -> pay (ledger) -> settle (Merkle batch on-chain, watcher marks ``settled``).

Baseline (``raw_ray``): the same work functions (``providers.jobs.JobWorker.prove`` / ``.embed``) as plain Ray
tasks on the SAME provider clusters (a driver per cluster with that cluster's token), as many in flight per
cluster as the agent runs at once (its CPUs), started together after the market phase, workers warmed first.
No exchange, no signing, no verification, no ledger.

    python -m benchmarks.market [--proof-jobs 300] [--embed-jobs 60] [--rounds 4] [--json] [--profile DIR]
    python -m benchmarks.market --queue-depth 1 --no-batch-uploads --submit-batch 1 --chain in-process  # "before"

The client submits ``--submit-batch`` jobs per signed request (``Client.submit_many``; 1 = ``job.submit`` each)
from ``--threads`` threads.

Stages (seconds, mean per job, from the service's job history and the agents' log lines): ``submit`` (client
request latency), ``queue_match`` (submitted -> matched), ``dispatch`` (matched -> delivered by a poll), ``run``
(the agent's measured run), ``upload_verify`` (delivered -> verified, minus run: attest, upload, verify),
``pay`` (verified -> paid), ``settle`` (paid -> settled on-chain). Throughput is jobs / (last paid - first
submit); ``ratio`` = market / raw Ray. ``--profile DIR`` samples the service and one agent with py-spy during
the proof phase and prints the top functions (self and inclusive %% of samples).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from sqlalchemy import create_engine, text

from market.client import Client
from market.settings import Settings
from tests.fixtures.services import AnvilNode
from tests.providers.harness import AgentProcess, bond, start_agents, wait_for
from tests.service.harness import ProcessService

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 0.6
TARGET_JOBS_PER_S = 1000.0
#: Job deadline, s: long, because a round only offers a job to providers whose benchmarked speed meets it, and
#: a loaded machine benchmarks slow (a 30 s estimate at speed 0.007 is ~4,300 s).
DEADLINE_S = 86400.0
SENTENCES = ["The market clears jobs against offers.", "A provider runs the job on its own cluster.",
             "The result is verified before payment.", "Attestations settle in one Merkle root."]

RAW_DRIVER = r"""
import json, sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False)
kind, n, window, rounds, cache, start = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], int(sys.argv[7])

@ray.remote(num_cpus=0, max_retries=0)
def job(kind, arg, rounds, cache):
    import providers.jobs as pj
    w = getattr(pj, "_raw_bench_worker", None)
    if w is None:
        w = pj._raw_bench_worker = pj.JobWorker(cache)
    if kind == "proof":
        from market.core.tickets import DEV_SETUP_SEED
        return w.prove("mimc7", rounds, arg, DEV_SETUP_SEED)
    return w.embed(arg)

def arg(i):
    return start + i if kind == "proof" else ("\n".join(f"{s} ({start + i})" for s in %r)).encode()

def run(k, base):
    out, pending, i = 0, [], 0
    while out < k:
        while len(pending) < window and i < k:
            pending.append(job.remote(kind, arg(base + i), rounds, cache)); i += 1
        done, pending = ray.wait(pending, num_returns=1)
        ray.get(done); out += len(done)

run(2 * window, 10**6)  # warm the workers (key / model loaded, numba compiled)
print("READY", flush=True)
sys.stdin.readline()
t0 = time.time(); run(n, 0); t1 = time.time()
print("RAW " + json.dumps({"t0": t0, "t1": t1, "n": n}), flush=True)
""" % (SENTENCES,)


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def load() -> str:
    """The 1/5/15-minute load average (the machine is shared)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _paid_count(url: str) -> dict[str, int]:
    body = httpx.get(url + "/metrics", timeout=30).text
    return {m.group(1): int(float(m.group(2))) for m in re.finditer(r'raymarket_jobs\{status="(\w+)"\} (\S+)', body)}


class Profiler:
    """py-spy ``record --format raw`` on a PID for a while (no-op when py-spy is missing)."""

    def __init__(self, pid: int, out: Path, duration_s: int) -> None:
        self.out, self.proc = out, None
        exe = shutil.which("py-spy")
        if exe:
            self.proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--format", "raw", "--nonblocking",
                                          "--rate", "200", "--duration", str(duration_s), "--threads",
                                          "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def top_functions(raw: Path, n: int = 15) -> dict[str, Any]:
    """Self and inclusive shares of py-spy's collapsed stacks (``frame;frame;... count``)."""
    if not raw.exists():
        return {}
    self_c, incl_c, total = Counter(), Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        if not stack or not count.isdigit():  # a line cut short when py-spy was stopped
            continue
        c = int(count)
        frames = [re.sub(r":\d+\)$", ")", re.sub(r" \(/[^)]*/(site-packages|main)/", " (", f))
                  for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("thread ") and not f.startswith("process ")]
        if not frames:
            continue
        total += c
        self_c[frames[-1]] += c
        for f in set(frames):
            incl_c[f] += c
    return {"samples": total,
            "self": [(f, round(100 * c / total, 1)) for f, c in self_c.most_common(n)],
            "inclusive": [(f, round(100 * c / total, 1)) for f, c in incl_c.most_common(n + 25)]}


class Market:
    """The service, the agents and a funded client (everything stopped by :meth:`close`)."""

    def __init__(self, base: Path, n_providers: int, cpus: int, warm_embed: bool, round_interval_s: float,
                 agent_args: list[str], chain: str) -> None:
        self.base = base
        self.settings = Settings(data_dir=base / "exchange")
        self.anvil = AnvilNode().start() if chain == "anvil" else None
        rpc = ["--rpc-url", self.anvil.rpc_url] if self.anvil is not None else []
        self.svc = ProcessService(["--dev", "--data-dir", str(base / "exchange"), "--lease-s", "30", *rpc,
                                   "--round-interval-s", str(round_interval_s), "--settlement-window-s", "1.0"],
                                  base / "service.log")
        self.agents: list[AgentProcess] = []
        try:
            self.svc.start()
        except BaseException:
            self.svc.stop()
            if self.anvil is not None:
                self.anvil.stop()
            raise
        extra = ["--warm-up"] if warm_embed else []
        self.agents = [AgentProcess(f"mb{i}", self.svc.url, base, price_per_cpu_s_wei=10**9, cpus=cpus,
                                    extra=extra + ["--poll-wait-s", "10", "--heartbeat-s", "5", *agent_args])
                       for i in range(n_providers)]
        try:
            start_agents(self.agents, 600)
            for a in self.agents:
                bond(self.svc.url, a)
            self.key = Account.create().key.hex()
            self.client = Client(self.svc.url, self.key, timeout_s=300)
            self.client.faucet(10**19)
            wait_for(lambda: sum(p["online"] for p in self.client.providers()) >= n_providers, 120,
                     "providers online")
        except BaseException:
            self.close()
            raise

    def submit_all(self, specs: list[dict[str, Any]], threads: int,
                   batch: int = 1) -> tuple[list[str], list[float], float]:
        """Submit ``specs`` from ``threads`` clients at once, ``batch`` per request (``Client.submit_many`` when
        above 1); (job ids, seconds per job (a request's time / its jobs), first submit time)."""
        ids: list[str] = []
        lat: list[float] = []
        lock = threading.Lock()
        t_first = time.time()

        def worker(part: list[dict[str, Any]]) -> None:
            with Client(self.svc.url, self.key, timeout_s=900) as c:  # a first MiMC job builds its key
                for k in range(0, len(part), batch):
                    chunk = part[k:k + batch]
                    t0 = time.perf_counter()
                    got = c.submit_many(chunk) if batch > 1 else [c.submit(chunk[0])]
                    dt = (time.perf_counter() - t0) / len(chunk)
                    bad = [g for g in got if g["status"] == "error"]
                    if bad:
                        raise RuntimeError(f"submit refused: {bad[0]}")
                    with lock:
                        ids.extend(g["job_id"] for g in got)
                        lat.extend([dt] * len(got))

        ts = [threading.Thread(target=worker, args=(specs[i::threads],)) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return ids, lat, t_first

    def wait_status(self, n_before: int, n: int, statuses: tuple[str, ...], timeout_s: float) -> float:
        """Wait until ``n`` more jobs than ``n_before`` reached one of ``statuses``; returns when (time.time())."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            c = _paid_count(self.svc.url)
            if sum(c.get(s, 0) for s in statuses) >= n_before + n:
                return time.time()
            time.sleep(0.05)
        raise TimeoutError(f"{n} jobs not {statuses} within {timeout_s} s: {_paid_count(self.svc.url)}")

    def history(self, ids: list[str]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        """``job -> {event: first at_s}`` and ``job -> run seconds`` (the agents' ``done in X s`` lines)."""
        engine = create_engine(self.settings.resolved_database_url)
        wanted = set(ids)
        ev: dict[str, dict[str, float]] = defaultdict(dict)
        runs: dict[str, float] = {}
        try:
            with engine.connect() as conn:
                for job_id, event, at_s in conn.execute(text("SELECT job_id, event, at_s FROM job_events ORDER BY id")):
                    if job_id in wanted:
                        ev[job_id].setdefault(event, float(at_s))
                for job_id, line in conn.execute(text("SELECT job_id, line FROM job_logs")):
                    m = re.search(r"done in ([0-9.]+) s", line)
                    if m and job_id in wanted:
                        runs[job_id] = float(m.group(1))
        finally:
            engine.dispose()
        return ev, runs

    def close(self) -> None:
        for a in self.agents:
            try:
                a.cleanup()
            except Exception:  # noqa: BLE001 -- best effort; every agent gets its turn
                pass
        self.svc.stop()
        if self.anvil is not None:
            self.anvil.stop()


def proof_spec(i: int, rounds: int) -> dict[str, Any]:
    return {"kind": "proof", "circuit": "mimc7", "rounds": rounds, "preimage": str(i + 1), "max_price_wei": str(10**14),
            "deadline_s": DEADLINE_S, "cpus": 1, "gpus": 0, "gpu_model": None, "memory_bytes": 0, "collateral_wei": "0"}


def embed_spec(i: int) -> dict[str, Any]:
    import base64

    data = ("\n".join(f"{s} ({i})" for s in SENTENCES)).encode()
    return {"kind": "inference", "input_b64": base64.b64encode(data).decode(), "max_price_wei": str(10**14),
            "deadline_s": DEADLINE_S, "cpus": 1, "gpus": 0, "gpu_model": None, "memory_bytes": 0, "collateral_wei": "0"}


def market_phase(m: Market, kind: str, n: int, rounds: int, threads: int, profile: Path | None,
                 offset: int, batch: int) -> dict[str, Any]:
    """Warm up, then ``n`` jobs of ``kind`` through the market; throughput, latency and stage seconds."""
    make = (lambda i: proof_spec(i, rounds)) if kind == "proof" else embed_spec
    done = ("paid", "settled")
    before = sum(_paid_count(m.svc.url).get(s, 0) for s in done)
    warm = [make(offset + 10**5 + i) for i in range(2 * len(m.agents))]
    m.submit_all(warm, threads)
    m.wait_status(before, len(warm), done, 600)
    before += len(warm)
    profs: list[Profiler] = []
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        profs = [Profiler(m.svc.proc.pid, profile / f"service-{kind}.raw", 600),
                 Profiler(m.agents[0].proc.pid, profile / f"agent-{kind}.raw", 600)]
        time.sleep(1.0)
    la0 = load()
    ids, lat, t_first = m.submit_all([make(offset + i) for i in range(n)], threads, batch)
    t_submitted = time.time()
    t_paid = m.wait_status(before, n, done, 1800)
    for p in profs:
        p.stop()
    ev, runs = m.history(ids)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and sum("settled" in ev[j] for j in ids) < sum("paid" in ev[j] for j in ids):
        time.sleep(1.0)
        ev, runs = m.history(ids)
    lat_paid = [ev[j]["paid"] - ev[j]["submitted"] for j in ids if "paid" in ev[j] and "submitted" in ev[j]]
    n_paid = len(lat_paid)

    def mean_gap(a: str, b: str) -> float:
        xs = [ev[j][b] - ev[j][a] for j in ids if a in ev[j] and b in ev[j]]
        return round(statistics.fmean(xs), 4) if xs else float("nan")

    run_s = statistics.fmean(runs.values()) if runs else float("nan")
    stages = {"submit": round(statistics.fmean(lat), 4), "queue_match": mean_gap("submitted", "matched"),
              "dispatch": mean_gap("matched", "started"), "run": round(run_s, 4),
              "upload_verify": round(mean_gap("started", "verified") - run_s, 4),
              "pay": mean_gap("verified", "paid"), "settle": mean_gap("paid", "settled")}
    wall = t_paid - t_first
    return {"kind": kind, "jobs": n, "paid": n_paid, "failed": n - n_paid, "wall_s": round(wall, 3),
            "jobs_per_s": round(n_paid / wall, 2), "submit_wall_s": round(t_submitted - t_first, 3), "p50_s": round(_pct(lat_paid, 0.5), 3),
            "p99_s": round(_pct(lat_paid, 0.99), 3), "stage_s": stages,
            "settled": sum("settled" in ev[j] for j in ids), "load": la0 + " -> " + load()}


def raw_phase(m: Market, kind: str, n: int, rounds: int, cpus: int) -> dict[str, Any]:
    """The same work as raw Ray tasks on the agents' own clusters (see the module docstring)."""
    per = [n // len(m.agents) + (1 if i < n % len(m.agents) else 0) for i in range(len(m.agents))]
    procs = []
    for i, (a, k) in enumerate(zip(m.agents, per)):
        env = {key: v for key, v in os.environ.items() if not key.startswith("RAY_")}
        env.update(a.cluster.env())
        env["PYTHONPATH"] = str(ROOT)
        procs.append(subprocess.Popen([sys.executable, "-c", RAW_DRIVER, a.summary["ray_address"], kind, str(k),
                                       str(cpus), str(rounds), str(a.data_dir / "keys"), str(10**7 * (i + 1))],
                                      env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    for p in procs:
        line = p.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"raw driver failed: {line}{p.stderr.read()[-3000:]}")
    la0 = load()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    res = []
    for p in procs:
        out, err = p.communicate(timeout=1800)
        got = [ln for ln in out.splitlines() if ln.startswith("RAW ")]
        if not got:
            raise RuntimeError(f"raw driver failed: {err[-3000:]}")
        res.append(json.loads(got[0][4:]))
    wall = max(r["t1"] for r in res) - min(r["t0"] for r in res)
    return {"kind": kind, "jobs": n, "wall_s": round(wall, 3), "jobs_per_s": round(n / wall, 2),
            "load": la0 + " -> " + load()}


def measure(n_proof: int, n_embed: int, *, rounds: int = 4, providers: int = 3, cpus: int = 1, threads: int = 4,
            round_interval_s: float = 0.1, profile: Path | None = None, queue_depth: int = 16,
            batch_uploads: bool = True, submit_batch: int = 64, chain: str = "anvil") -> dict[str, Any]:
    """Run both phases (market, then raw Ray) for proof and embedding jobs; the report dict (see ``--json``)."""
    base = Path(tempfile.mkdtemp(prefix="rm-h-mkt-", dir="/tmp"))
    agent_args = ["--queue-depth", str(queue_depth)] + ([] if batch_uploads else ["--no-batch-uploads"])
    m = Market(base, providers, cpus, n_embed > 0, round_interval_s, agent_args, chain)
    out: dict[str, Any] = {"providers": providers, "cpus_per_provider": cpus, "rounds": rounds,
                           "queue_depth": queue_depth, "batch_uploads": batch_uploads, "submit_batch": submit_batch,
                           "chain": chain,
                           "machine_cpus": os.cpu_count(), "raw_ray_baseline":
                           "providers.jobs.JobWorker work as plain Ray tasks on the same provider clusters, "
                           "<= agent CPUs in flight per cluster, no exchange", "phases": {}}
    try:
        for kind, n in (("proof", n_proof), ("inference", n_embed)):
            if n <= 0:
                continue
            mk = market_phase(m, kind, n, rounds, threads, profile, 0 if kind == "proof" else 5 * 10**5,
                              submit_batch)
            raw = raw_phase(m, kind, n, rounds, cpus)
            mk["raw_ray_jobs_per_s"] = raw["jobs_per_s"]
            mk["raw_ray_load"] = raw["load"]
            mk["ratio"] = round(mk["jobs_per_s"] / raw["jobs_per_s"], 3)
            out["phases"][kind] = mk
    finally:
        m.close()
    head = out["phases"].get("proof") or next(iter(out["phases"].values()))
    out.update({k: head[k] for k in ("jobs", "jobs_per_s", "p50_s", "p99_s", "raw_ray_jobs_per_s", "ratio")})
    out["stage_s"] = head["stage_s"]
    out["targets"] = {"ratio": TARGET_RATIO, "jobs_per_s": TARGET_JOBS_PER_S}
    if profile is not None:
        out["profile"] = {p.stem: top_functions(p) for p in sorted(profile.glob("*.raw"))}
    shutil.rmtree(base, ignore_errors=True)
    return out


def table(r: dict[str, Any]) -> str:
    """The human-readable table."""
    lines = [f"{'phase':<10} {'paid':>5} {'market/s':>9} {'raw Ray/s':>9} {'ratio':>6} {'p50 s':>7} {'p99 s':>7}  "
             "stages (mean s/job: submit queue+match dispatch run upload+verify pay settle)   load"]
    for k, p in r["phases"].items():
        st = p["stage_s"]
        lines.append(f"{k:<10} {p['paid']:>5} {p['jobs_per_s']:>9.1f} {p['raw_ray_jobs_per_s']:>9.1f} "
                     f"{p['ratio']:>6.2f} {p['p50_s']:>7.2f} {p['p99_s']:>7.2f}  "
                     + " ".join(f"{st[s]:.3f}" for s in ("submit", "queue_match", "dispatch", "run",
                                                          "upload_verify", "pay", "settle"))
                     + f"   {p['load']} | raw {p['raw_ray_load']}")
    lines.append(f"targets: ratio >= {TARGET_RATIO} (got {r['ratio']:.2f}), >= {TARGET_JOBS_PER_S:.0f} tiny jobs/s "
                 f"(got {r['jobs_per_s']:.1f}); {r['providers']} providers x {r['cpus_per_provider']} CPU on "
                 f"{r['machine_cpus']} cores")
    for name, prof in (r.get("profile") or {}).items():
        if not prof:
            continue
        lines.append(f"profile {name} ({prof['samples']} samples), top self %:")
        lines += [f"  {pct:5.1f}  {f}" for f, pct in prof["self"][:10]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proof-jobs", type=int, default=300)
    ap.add_argument("--embed-jobs", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=4, help="MiMC-7 rounds of the proof jobs")
    ap.add_argument("--providers", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=1, help="CPUs (concurrent leases) per provider")
    ap.add_argument("--threads", type=int, default=4, help="client threads submitting")
    ap.add_argument("--round-interval-s", type=float, default=0.1)
    ap.add_argument("--queue-depth", type=int, default=16, help="agents' leases held per CPU (1: no prefetch)")
    ap.add_argument("--chain", choices=("anvil", "in-process"), default="anvil",
                    help="the exchange's chain: a real anvil node, or the embedded in-process EVM (py-evm)")
    ap.add_argument("--submit-batch", type=int, default=64, help="jobs per submit request (1: job.submit each)")
    ap.add_argument("--no-batch-uploads", action="store_true", help="agents upload one result per request")
    ap.add_argument("--profile", type=Path, help="py-spy the service and an agent; raw stacks kept in this dir")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = measure(a.proof_jobs, a.embed_jobs, rounds=a.rounds, providers=a.providers, cpus=a.cpus, threads=a.threads,
                round_interval_s=a.round_interval_s, profile=a.profile, queue_depth=a.queue_depth,
                batch_uploads=not a.no_batch_uploads, submit_batch=a.submit_batch, chain=a.chain)
    print(json.dumps(r, indent=1) if a.json else table(r))


if __name__ == "__main__":
    main()
