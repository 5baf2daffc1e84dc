"""Benchmark: the proving pipeline vs the naive baseline, on the same local Ray providers.

Starts its own local cluster (a head + ``--providers`` provider nodes of ``--cpus-per-provider``
logical CPUs each; never touches another cluster), builds a MiMC-7 preimage circuit of
``--rounds`` rounds with a dev key, and for every arrival rate runs, in the same process, first the pipeline at every rate, then (its actors gone) the baseline:

* **pipeline** -- :class:`market.pipeline.runtime.ProvingPipeline`: windows + adaptive batches,
  one prover actor per provider holding the key, batched verification (random linear
  combination), provenance written, in-memory idempotent payments;
* **baseline** -- one Ray task per job pinned round-robin to the providers, the proving key
  loaded (read from its zkey file, hash checked) in every task, every proof verified one by one in the driver.

Both use the same prover backend (``--prover``, default the numba prover), the same witnesses
and the same open-loop arrival schedule (evenly spaced at ``rate`` jobs/s; ``inf`` submits all at
once = saturation). Reported per rate: throughput (proofs/s, verified proofs over the time from
the first submission to the last verified proof), latency p50/p99 (submission -> verified and
paid), the baseline's, ``speedup = proofs_per_s / baseline_proofs_per_s``, and the CPU each
path spent per proof (driver + every cluster process: GCS, raylets, workers; see
:func:`cluster_cpu_s`), which other tenants of a shared machine do not distort.

Usage::

    python benchmarks/pipeline.py                 # table to stdout
    python benchmarks/pipeline.py --json          # JSON rows to stdout
    python benchmarks/pipeline.py --rates 2,inf --duration-s 10 --rounds 16 --verify-workers 2
    python benchmarks/pipeline.py --service --burst-jobs 60    # through the real product path (below)

``--service``: the same comparison through the REAL product path, the exchange service (subprocess, SQLite, a
real anvil node or ``--chain in-process``) and ``--providers`` real provider agents on their own Ray clusters,
started by ``benchmarks.market.Market`` (a signed client submits ``--burst-jobs`` MiMC-7 proof jobs on one
circuit at once, ``--submit-batch`` per request; rounds match them; the agents prove, attest and upload; the
exchange verifies, pays and settles). Two fresh markets, one after the other:

* **pipeline** -- agents hold ``--queue-depth`` leases per CPU (the round's proof leases of one provider on one
  circuit key form a proof batch, ``market.exchange.service.batches``), upload finished results together
  (``lease.complete_batch``) and the exchange batch-verifies each upload's proofs (one random linear
  combination, bisection on failure);
* **naive** -- queue depth 1, one upload per request (``lease.complete``), each proof pairing-checked alone.

Reported per path: proofs/s (paid jobs over first submit -> last paid), p50/p99 submit -> paid, the mean stage
seconds (``benchmarks.market.market_phase``), and the exchange's own pipeline figures (``GET
/v1/pipeline/stats``: mean batch and verification-group sizes, checks); ``ratio`` = pipeline / naive proofs/s.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import queue
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402
import ray  # noqa: E402

from market.pipeline.batching import ControllerConfig, WindowPolicy  # noqa: E402
from market.pipeline.metrics import percentile as pct  # noqa: E402
from market.pipeline.placement import ProviderSlot  # noqa: E402
from market.pipeline.provenance import ProvenanceStore, pk_hash  # noqa: E402
from market.pipeline.runtime import PipelineSettings, ProvingPipeline  # noqa: E402
from market.pipeline.stages import CircuitSpec, InMemoryPayments  # noqa: E402
from providers.cluster import LocalCluster  # noqa: E402
from providers.prover_worker import ProverWorker, resolve_prover, set_prover_threads  # noqa: E402
from proving.circuits.mimc import preimage_circuit  # noqa: E402
from proving.groth16.setup import dev_setup  # noqa: E402
from proving.groth16.verifier import verify  # noqa: E402
from proving.r1cs import check_witness  # noqa: E402


@dataclass
class Row:
    """One arrival rate's results (all times in seconds)."""

    arrival_rate: float | str
    jobs: int
    proofs_per_s: float
    p50_s: float
    p99_s: float
    baseline_proofs_per_s: float
    baseline_p50_s: float
    baseline_p99_s: float
    speedup: float
    deadline_s: float
    p99_within_deadline: bool
    mean_batch_size: float
    all_verified: bool
    cpu_ms_per_proof: float
    baseline_cpu_ms_per_proof: float


def cluster_cpu_s() -> float:
    """CPU seconds (user + system) used so far by this driver and every process under it: the local
    cluster's GCS, raylets, Ray workers and actors are all its descendants. A CPU cost per proof
    that the other tenants of a shared machine do not distort the way they distort wall time."""
    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


def percentile(values, q):
    return pct(values, q)


def schedule(n_jobs: int, rate: float) -> list[float]:
    """Submission offsets (s) of ``n_jobs`` evenly spaced at ``rate`` jobs/s (all 0 for inf)."""
    return [0.0 if math.isinf(rate) else i / rate for i in range(n_jobs)]


def run_arrivals(offsets, submit) -> threading.Thread:
    """Call ``submit(i)`` at ``t0 + offsets[i]`` in a background thread; returns the started thread."""
    def go() -> None:
        t0 = time.monotonic()
        for i, off in enumerate(offsets):
            delay = t0 + off - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            submit(i)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def run_pipeline(pipe, spec, witnesses, offsets, tag: str, deadline_s: float, timeout_s: float):
    """Submit on schedule, wait for all; returns (throughput, latencies, mean batch size)."""
    ids = [f"{tag}-{i}" for i in range(len(offsets))]
    jobs = {}
    before = pipe.metrics.snapshot()["stages"]["prove"]["batches"]

    def submit(i: int) -> None:
        job = pipe.new_job(ids[i], spec.circuit_id, witnesses[i % len(witnesses)], deadline_in_s=deadline_s,
                           price_wei=1)
        jobs[ids[i]] = job
        pipe.submit(job)

    t_start = pipe.now()
    run_arrivals(offsets, submit).join()
    out = pipe.wait(ids, timeout_s)
    done = [o for o in out.values() if o.completed_s is not None]
    lat = [o.completed_s - o.job.submitted_s for o in done]
    span = max((o.completed_s for o in done), default=t_start) - t_start
    batches = pipe.metrics.snapshot()["stages"]["prove"]["batches"] - before
    ok = len(done) == len(ids) and all(o.status.value == "paid" for o in out.values())
    return len(done) / max(span, 1e-9), lat, len(ids) / max(1, batches), ok


def run_baseline(naive_task, providers, key_path, vk, spec, witnesses, offsets, timeout_s: float):
    """One pinned task per job (key loaded per job), proofs verified one by one in the driver."""
    submitted: queue.Queue = queue.Queue()

    def submit(i: int) -> None:
        p = providers[i % len(providers)]
        w = witnesses[i % len(witnesses)]
        ref = naive_task.options(resources={f"provider:{p}": 1}, max_retries=0).remote(str(key_path), w)
        submitted.put((i, ref, time.monotonic()))

    t_start = time.monotonic()
    feeder = run_arrivals(offsets, submit)
    pending, lat, ok, end = {}, [], True, t_start + timeout_s
    while (len(lat) < len(offsets)) and time.monotonic() < end:
        while not submitted.empty():
            i, ref, t = submitted.get()
            pending[ref] = (i, t)
        if not pending:
            time.sleep(0.002)
            continue
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.05)
        for ref in ready:
            i, t = pending.pop(ref)
            proof = ray.get(ref, timeout=60)
            try:
                verify(vk, spec.public_signals(witnesses[i % len(witnesses)]), proof)
            except Exception:  # noqa: BLE001
                ok = False
            lat.append(time.monotonic() - t)
    feeder.join()
    span = time.monotonic() - t_start
    return len(lat) / span, lat, ok and len(lat) == len(offsets)


def naive_prove(key_path: str, witness):
    """The baseline's task: load the proving key from its zkey file, then prove one witness."""
    set_prover_threads(1)  # as the pipeline's workers: one numba thread per reserved CPU
    path = Path(key_path)
    pk = ProvenanceStore(path.parent.parent).load_key(path.stem)
    return resolve_prover(os.environ.get("RM_BENCH_PROVER", "fast"))(pk, witness)


def build_circuit(rounds: int, n_witnesses: int):
    r1cs = preimage_circuit(None, n_rounds=rounds).r1cs
    pk = dev_setup(r1cs, seed=424242)
    spec = CircuitSpec(f"mimc7-r{rounds}", pk, pk_hash(pk), functools.partial(check_witness, r1cs))
    witnesses = [tuple(preimage_circuit(10_000 + i, n_rounds=rounds).witness) for i in range(n_witnesses)]
    return spec, witnesses


SERVICE_STAGES = ("submit", "queue_match", "dispatch", "run", "upload_verify", "pay", "settle")


def service_path(name: str, args, agent_args: list[str], log) -> dict:
    """One path through the real service (see the module docstring): ``market_phase``'s figures plus the
    exchange's pipeline stats."""
    import httpx  # noqa: PLC0415 -- only the --service mode talks HTTP

    from benchmarks.market import Market, market_phase  # noqa: PLC0415 -- its imports start nothing

    base = Path(tempfile.mkdtemp(prefix=f"rm-p-svc-{name}-", dir="/tmp"))
    log(f"{name}: starting the exchange and {args.providers} agents ({' '.join(agent_args)}) ...")
    m = Market(base, args.providers, args.cpus_per_provider, False, 0.1, agent_args, args.chain)
    try:
        log(f"{name}: {args.burst_jobs} proof jobs ...")
        r = market_phase(m, "proof", args.burst_jobs, args.rounds, args.threads, None, 0, args.submit_batch)
        snap = httpx.get(m.svc.url + "/v1/pipeline/stats", timeout=60).json()
    finally:
        m.close()
    st = snap["stages"]
    r.update(path=name, agent_args=agent_args, pipeline_stats={
        "mean_batch_size": st["queue_match"]["mean_batch_size"], "batches": snap["counters"].get("batches", 0),
        "mean_verify_group": st["verify"]["mean_batch_size"], "verify_checks": snap["counters"].get("verify_checks", 0),
        "bad_proofs": snap["counters"].get("bad_proofs", 0),
        "stage_p50_s": {k: v["p50_latency_s"] for k, v in st.items()},
        "stage_p99_s": {k: v["p99_latency_s"] for k, v in st.items()}})
    log(f"  -> {r['jobs_per_s']} proofs/s, p50 {r['p50_s']} s, p99 {r['p99_s']} s, batch "
        f"{r['pipeline_stats']['mean_batch_size']}, verify group {r['pipeline_stats']['mean_verify_group']}")
    return r


def run_service(args, log) -> dict:
    """``--service``: the pipeline path vs the naive path through the real service; the report dict."""
    paths = {"pipeline": ["--queue-depth", str(args.queue_depth)],
             "naive": ["--queue-depth", "1", "--no-batch-uploads"]}
    out = {"mode": "service", "jobs": args.burst_jobs, "rounds": args.rounds, "providers": args.providers,
           "cpus_per_provider": args.cpus_per_provider, "chain": args.chain, "submit_batch": args.submit_batch,
           "machine_cpus": os.cpu_count(), "paths": {}}
    for name, agent_args in paths.items():
        out["paths"][name] = service_path(name, args, agent_args, log)
    pipe, naive = out["paths"]["pipeline"], out["paths"]["naive"]
    out["ratio"] = round(pipe["jobs_per_s"] / naive["jobs_per_s"], 2) if naive["jobs_per_s"] else None
    return out


def print_service_table(r: dict) -> None:
    print(f"proving pipeline through the exchange service vs the naive product path: {r['jobs']} MiMC-7 "
          f"{r['rounds']}-round proof jobs, {r['providers']} agents x {r['cpus_per_provider']} CPU, chain "
          f"{r['chain']}, {r['machine_cpus']} cores")
    print(f"{'path':<9} {'paid':>5} {'proofs/s':>9} {'p50 s':>7} {'p99 s':>7} {'batch':>6} {'vgroup':>6} "
          f"{'checks':>6}  mean s/job: " + " ".join(SERVICE_STAGES) + "   load")
    for name, p in r["paths"].items():
        ps = p["pipeline_stats"]
        print(f"{name:<9} {p['paid']:>5} {p['jobs_per_s']:>9.2f} {p['p50_s']:>7.2f} {p['p99_s']:>7.2f} "
              f"{ps['mean_batch_size'] or 0:>6.1f} {ps['mean_verify_group'] or 0:>6.1f} {ps['verify_checks']:>6} "
              + " " + " ".join(f"{p['stage_s'][s]:.3f}" for s in SERVICE_STAGES) + f"   {p['load']}")
    print(f"ratio pipeline / naive: {r['ratio']}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="10,20,40,inf", help="arrival rates in jobs/s, comma-separated; inf = burst")
    ap.add_argument("--duration-s", type=float, default=8.0, help="arrival window per finite rate (s)")
    ap.add_argument("--burst-jobs", type=int, default=240, help="jobs of the inf (saturation) rate")
    ap.add_argument("--max-jobs", type=int, default=240, help="cap on jobs per rate")
    ap.add_argument("--rounds", type=int, default=4, help="MiMC-7 rounds of the circuit (4 constraints each)")
    ap.add_argument("--providers", type=int, default=3)
    ap.add_argument("--cpus-per-provider", type=int, default=1)
    ap.add_argument("--prover", default="fast", choices=["fast", "ref"])
    ap.add_argument("--deadline-s", type=float, default=60.0)
    ap.add_argument("--verify-workers", type=int, default=0,
                    help="pipeline verifier actors on the head node (0: verify in the driver)")
    ap.add_argument("--json", action="store_true", help="print JSON rows instead of the table")
    ap.add_argument("--json-file", help="also write the JSON rows to this file")
    ap.add_argument("--stats", action="store_true", help="log the pipeline's stage metrics after each rate")
    ap.add_argument("--skip-baseline", action="store_true", help="pipeline only (profiling)")
    ap.add_argument("--service", action="store_true", help="through the real exchange service and provider agents: "
                    "the pipeline path vs the naive product path (see the module docstring); jobs = --burst-jobs")
    ap.add_argument("--queue-depth", type=int, default=16, help="--service: the pipeline path's leases per CPU")
    ap.add_argument("--chain", choices=("anvil", "in-process"), default="anvil", help="--service: the chain")
    ap.add_argument("--submit-batch", type=int, default=64, help="--service: jobs per submit request (both paths)")
    ap.add_argument("--threads", type=int, default=4, help="--service: client threads submitting")
    args = ap.parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if args.service:
        report = run_service(args, log)
        doc = json.dumps(report, indent=2)
        if args.json_file:
            Path(args.json_file).write_text(doc)
        if args.json:
            print(doc)
        else:
            print_service_table(report)
        return 0

    os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "raymarket-numba"))
    os.environ["RM_BENCH_PROVER"] = args.prover
    rates = [math.inf if r.strip() == "inf" else float(r) for r in args.rates.split(",")]
    names = [f"p{i + 1}" for i in range(args.providers)]

    log(f"setting up a {args.rounds}-round MiMC circuit ...")
    spec, witnesses = build_circuit(args.rounds, 16)
    rows = run_all(args, rates, names, spec, witnesses, log)
    doc = json.dumps([asdict(r) for r in rows], indent=2)
    if args.json_file:
        Path(args.json_file).write_text(doc)
    if args.json:
        print(doc)
    else:
        print_table(rows, args)
    return 0


def run_all(args, rates, names, spec, witnesses, log) -> list[Row]:
    data_dir = Path(tempfile.mkdtemp(prefix="rm-bench-pipe-"))
    store = ProvenanceStore(data_dir)
    store.save_key(spec.pk, spec.pk_hash)
    key_path = store.key_path(spec.pk_hash)
    log(f"starting a local cluster: head + {len(names)} providers x {args.cpus_per_provider} CPU ...")
    cluster = LocalCluster(providers=list(names), cpus_per_provider=args.cpus_per_provider, head_cpus=1).start()
    try:
        settings = PipelineSettings(
            window=WindowPolicy(window_s=0.05, deadline_margin_s=2.0),
            controller=ControllerConfig(min_batch=1, max_batch=32, target_latency_s=3.0, prior_per_proof_s=0.1),
            verify_batch_max=64, prover=args.prover, actor_num_cpus=1, data_dir=data_dir,
            verify_workers=args.verify_workers)
        pipe = ProvingPipeline([spec], [ProviderSlot(n, 10.0) for n in names], InMemoryPayments(), settings,
                               worker_cls=ProverWorker)
        pipe.start()
        plan = [(rate, args.burst_jobs if math.isinf(rate) else
                 min(args.max_jobs, max(1, int(rate * args.duration_s)))) for rate in rates]
        # phase 1: the pipeline at every rate (its actors hold the providers' CPUs) ...
        log("pipeline: warming up ...")
        run_pipeline(pipe, spec, witnesses, [0.0] * len(names), "warm", args.deadline_s, 300)
        measured = {}
        for rate, n in plan:
            log(f"pipeline: rate {rate}/s, {n} jobs ...")
            cpu0 = cluster_cpu_s()
            measured[rate] = run_pipeline(pipe, spec, witnesses, schedule(n, rate), f"r{rate}", args.deadline_s, 900)
            measured[rate] += (1000 * (cluster_cpu_s() - cpu0) / n,)
            log(f"  -> {measured[rate][0]:.2f} proofs/s, p99 {percentile(measured[rate][1], 0.99):.2f} s")
            if args.stats:
                snap = pipe.metrics.snapshot()
                for st, v in snap["stages"].items():
                    log(f"     {st:>6}: batches {v['batches']:4d} mean size {v['mean_batch_size'] or 0:5.1f} "
                        f"p50 {v['p50_latency_s'] or 0:.3f} s p99 {v['p99_latency_s'] or 0:.3f} s "
                        f"max queue {v['max_queue_depth']}")
        pipe.stop()  # ... then its actors are gone and the baseline's tasks get the same CPUs
        if args.skip_baseline:
            return []
        naive = ray.remote(num_cpus=1, max_retries=0)(naive_prove)
        log("baseline: warming up ...")
        run_baseline(naive, names, key_path, spec.pk.vk, spec, witnesses, [0.0] * len(names), 300)
        rows = []
        for rate, n in plan:
            log(f"baseline: rate {rate}/s, {n} jobs ...")
            cpu0 = cluster_cpu_s()
            btput, blat, bok = run_baseline(naive, names, key_path, spec.pk.vk, spec, witnesses,
                                            schedule(n, rate), 1800)
            bcpu = 1000 * (cluster_cpu_s() - cpu0) / n
            tput, lat, batch, ok, cpu = measured[rate]
            p99 = percentile(lat, 0.99)
            rows.append(Row("inf" if math.isinf(rate) else rate, n, tput, percentile(lat, 0.5), p99, btput,
                            percentile(blat, 0.5), percentile(blat, 0.99), tput / btput, args.deadline_s,
                            p99 <= args.deadline_s, batch, ok and bok, cpu, bcpu))
            log(f"  -> baseline {btput:.2f} proofs/s: speedup {tput / btput:.1f}x")
        return rows
    finally:
        cluster.shutdown()


def print_table(rows: list[Row], args) -> None:
    print(f"proving pipeline vs naive baseline: MiMC-7 {args.rounds} rounds, {args.providers} providers x "
          f"{args.cpus_per_provider} CPU, prover {args.prover}, deadline {args.deadline_s:.0f} s")
    head = ("rate/s", "jobs", "proofs/s", "p50 s", "p99 s", "base proofs/s", "base p50", "base p99", "speedup",
            "batch", "p99<=ddl", "verified", "cpu ms/proof", "base cpu ms")
    print(" | ".join(f"{h:>13}" for h in head))
    for r in rows:
        cells = (str(r.arrival_rate), str(r.jobs), f"{r.proofs_per_s:.2f}", f"{r.p50_s:.2f}", f"{r.p99_s:.2f}",
                 f"{r.baseline_proofs_per_s:.2f}", f"{r.baseline_p50_s:.2f}", f"{r.baseline_p99_s:.2f}",
                 f"{r.speedup:.1f}x", f"{r.mean_batch_size:.1f}", str(r.p99_within_deadline), str(r.all_verified),
                 f"{r.cpu_ms_per_proof:.1f}", f"{r.baseline_cpu_ms_per_proof:.1f}")
        print(" | ".join(f"{c:>13}" for c in cells))


if __name__ == "__main__":
    raise SystemExit(main())
