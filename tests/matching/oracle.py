"""Yardsticks for the matching engine (test / benchmark dependency only, never imported by ``market``):

* :func:`make_instance` — random but realistic rounds: mixed CPU / GPU jobs, 4 GPU models, lognormal
  (skewed) prices and durations, some tight deadlines, reputation floors, region labels, proof jobs
  needing the ``proof`` policy, bonds that do not always cover collateral, running load on offers.
* :func:`exact_optimum` — the exact welfare optimum as a MIP solved by HiGHS (``scipy.optimize.milp``):
  one binary per statically feasible (job, offer) pair (every constraint but capacity, incl. price),
  one "at most once" row per job, four capacity rows per offer (CPUs, GPUs, memory, bond), rows scaled
  by capacity. Pairs, asks and feasibility come from plain numpy / Python (``pairs_reference``),
  independent of the numba kernels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from market.core.orders import GIB_BYTES, JobOrder, Offer, Usage, ask_wei, build_job_book, build_offer_book
from market.core.explain import reference_reason

MODELS = ("H100", "A100", "L40S", "RTX4090")
MODEL_WEIGHT = np.array([0.2, 0.3, 0.3, 0.2])
#: wei per GPU-second at list price (ETH at $3000: $1/h ~ 9.26e10 wei/s)
GPU_PRICE = {"H100": 2.5e11, "A100": 1.4e11, "L40S": 8.0e10, "RTX4090": 4.5e10}
GPU_SPEED = {"H100": 1.0, "A100": 0.6, "L40S": 0.45, "RTX4090": 0.35}
CPU_PRICE = 3.0e9
GIB_PRICE = 3.5e8
NOW_S = 1_800_000_000.0


def make_instance(n_jobs: int, n_offers: int, seed: int = 0, scarcity: float = 1.15
                  ) -> tuple[list[JobOrder], list[Offer], dict[str, Usage]]:
    """A random realistic round: ``scarcity`` ~ demand / supply of CPUs and GPUs (capacity is scaled to it)."""
    rng = np.random.default_rng(seed)
    jobs = _make_jobs(rng, n_jobs)
    cpu_demand = sum(j.cpus for j in jobs)
    gpu_demand = sum(j.gpus for j in jobs)
    offers, running = _make_offers(rng, n_offers, cpu_demand / scarcity, gpu_demand / scarcity)
    return jobs, offers, running


def _make_jobs(rng: np.random.Generator, n: int) -> list[JobOrder]:
    out = []
    is_gpu = rng.random(n) < 0.3
    dur = np.clip(rng.lognormal(np.log(600), 1.0, n), 30, 6 * 3600).astype(np.int64)
    markup = rng.lognormal(np.log(1.6), 0.5, n)
    for i in range(n):
        if is_gpu[i]:
            gpus = int(rng.choice([1, 1, 1, 2, 4, 8]))
            model = str(rng.choice(MODELS, p=MODEL_WEIGHT))
            cpus, mem = 4 * gpus, int(32 * gpus * GIB_BYTES)
            rate = gpus * GPU_PRICE[model] + cpus * CPU_PRICE + 32 * gpus * GIB_PRICE
            kind, model_req = "inference", (model if rng.random() < 0.6 else None)
        else:
            cpus = int(rng.choice([1, 2, 4, 8, 16], p=[0.3, 0.3, 0.2, 0.15, 0.05]))
            mem = int(cpus * int(rng.choice([2, 4, 8])) * GIB_BYTES)
            gpus, model_req = 0, None
            rate = cpus * CPU_PRICE + mem / GIB_BYTES * GIB_PRICE
            kind = "proof"
        max_price = int(dur[i] * rate * markup[i])
        out.append(JobOrder(
            job_id=f"job-{i:07d}", client=f"client-{i % 97}", kind=kind, duration_estimate_s=int(dur[i]),
            max_price_wei=max_price, deadline_s=NOW_S + float(dur[i]) * float(rng.uniform(1.2, 8.0)),
            cpus=cpus, gpus=gpus, gpu_model=model_req, memory_bytes=mem, collateral_wei=max_price // 10,
            min_reputation=0.8 if rng.random() < 0.2 else 0.0,
            labels_required=frozenset({"region:eu"}) if rng.random() < 0.1 else frozenset(),
            verification="proof" if (kind == "proof" and rng.random() < 0.3) else "attestation",
            min_price_wei=max_price // 4, bidding_start_s=NOW_S - 300.0, ramp_period_s=600.0))
    return out


def _make_offers(rng: np.random.Generator, n: int, cpu_supply: float, gpu_supply: float
                 ) -> tuple[list[Offer], dict[str, Usage]]:
    is_gpu = rng.random(n) < 0.4
    n_gpu = max(1, int(is_gpu.sum()))
    n_cpu = max(1, n - n_gpu)
    gpus_per = max(1, int(round(gpu_supply / n_gpu)))
    cpus_per = max(8, int(round(cpu_supply * 0.8 / n_cpu)))
    offers, running = [], {}
    for i in range(n):
        name = f"prov-{i:05d}"
        if is_gpu[i]:
            model = str(rng.choice(MODELS, p=MODEL_WEIGHT))
            gpus = int(max(1, round(gpus_per * rng.uniform(0.5, 1.5))))
            cpus, mem = 6 * gpus, 48 * gpus * GIB_BYTES
            speed = float(rng.lognormal(0, 0.1))
            pg = int(GPU_PRICE[model] * rng.lognormal(0, 0.35))
        else:
            model, gpus = None, 0
            cpus = int(max(4, round(cpus_per * rng.uniform(0.5, 1.5))))
            mem = cpus * 8 * GIB_BYTES
            speed = float(rng.lognormal(0, 0.15))
            pg = 0
        offers.append(Offer(
            provider=name, cpus=cpus, memory_bytes=int(mem), gpus=gpus, gpu_model=model,
            price_per_cpu_s_wei=int(CPU_PRICE * rng.lognormal(0, 0.4)), price_per_gpu_s_wei=pg,
            price_per_gib_s_wei=int(GIB_PRICE * rng.lognormal(0, 0.4)),
            free_bond_wei=int(min(5e17, rng.lognormal(np.log(2e16), 1.5))), reputation=float(rng.beta(8, 2)),
            labels=frozenset({"region:eu"}) if rng.random() < 0.3 else frozenset({"region:us"}),
            speed=round(speed, 3),
            verification=frozenset({"proof", "attestation", "reexec"}) if rng.random() < 0.8 else frozenset({"attestation"})))
        if rng.random() < 0.3:
            running[name] = Usage(cpus=cpus // 4, gpus=gpus // 4, memory_bytes=int(mem) // 4)
    return offers, running


@dataclass
class Pairs:
    """Statically feasible (job, offer) pairs with exact asks (wei) and welfare (wei)."""

    job: np.ndarray
    offer: np.ndarray
    ask: np.ndarray
    welfare: np.ndarray


def pairs_reference(jobs: list[JobOrder], offers: list[Offer], now_s: float, running: dict[str, Usage],
                    caps: dict[str, int] | None = None) -> Pairs:
    """Plain-Python pairs (``reference_reason`` + ``ask_wei``): use on small instances (tests)."""
    js = sorted(jobs, key=lambda j: j.job_id)
    os_ = sorted(offers, key=lambda o: o.provider)
    rows = []
    for a, j in enumerate(js):
        cap = j.max_price_wei if caps is None else caps[j.job_id]
        for b, o in enumerate(os_):
            if reference_reason(j, o, now_s, cap, running) == "ok":
                ask = ask_wei(j, o)
                rows.append((a, b, ask, j.max_price_wei - ask))
    arr = np.asarray(rows, dtype=object).reshape(-1, 4)
    return Pairs(arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2], arr[:, 3])


def pairs_vectorised(jobs: list[JobOrder], offers: list[Offer], now_s: float, running: dict[str, Usage]) -> Pairs:
    """numpy (J x O broadcast, int64/float) pairs for benchmark sizes; same rules as ``reference_reason``."""
    ob, models, labels = build_offer_book(offers, running)
    jb = build_job_book(jobs, ob, models, labels)
    assert not jb.has_allow.any() and len(jb.deny_idx) == 0, "allow/deny lists: use pairs_reference"
    J, O = jb.n, ob.n
    out = [[], [], [], []]
    step = max(1, 2_000_000 // max(O, 1))
    for lo in range(0, J, step):
        hi = min(J, lo + step)
        s = slice(lo, hi)
        c = lambda a: a[s][:, None]  # noqa: E731
        gpu_ok = (c(jb.gpus) == 0) | ((ob.model[None, :] >= 0) & ((c(jb.model) == -1) | (c(jb.model) == ob.model[None, :])))
        lab = np.all((ob.mask[None, :, :] & jb.mask[s][:, None, :]) == jb.mask[s][:, None, :], axis=2) & ~c(jb.impossible_label)
        ok = gpu_ok & lab & (ob.reputation[None, :] >= c(jb.min_reputation))
        ok &= (ob.cpus_free[None, :] >= c(jb.cpus)) & (ob.gpus_free[None, :] >= c(jb.gpus)) & (ob.mem_free[None, :] >= c(jb.mem))
        run_s = (c(jb.duration_s) * 1000 + ob.speed_milli[None, :] - 1) // ob.speed_milli[None, :]
        ok &= now_s + run_s <= c(jb.deadline_s)
        ok &= ob.bond_free[None, :] >= c(jb.collateral)
        mterm = -(-(c(jb.mem) // 1024) * ob.price_gib[None, :] // (GIB_BYTES // 1024))  # exact: mem multiple of 1 KiB
        rate = c(jb.cpus) * ob.price_cpu[None, :] + c(jb.gpus) * ob.price_gpu[None, :] + mterm
        assert float((run_s * rate.astype(np.float64)).max(initial=0)) < 2**62
        ask = run_s * rate
        ok &= ask <= c(jb.max_price)
        jj, oo = np.nonzero(ok)
        out[0].append(jj + lo)
        out[1].append(oo)
        out[2].append(ask[jj, oo])
        out[3].append(jb.max_price[jj + lo] - ask[jj, oo])
    cat = [np.concatenate(x) if x else np.zeros(0, np.int64) for x in out]
    return Pairs(*cat)


@dataclass
class ExactResult:
    """HiGHS outcome: ``welfare`` of the best solution found, ``bound`` (proven upper bound), ``optimal``
    (solved to ``mip_rel_gap``), ``seconds``, ``status`` message."""

    welfare: float | None
    bound: float | None
    optimal: bool
    seconds: float
    status: str
    chosen: np.ndarray | None = None


def exact_optimum(jobs: list[JobOrder], offers: list[Offer], now_s: float, running: dict[str, Usage], pairs: Pairs,
                  time_limit_s: float = 60.0, mip_rel_gap: float = 1e-6, relax: bool = False) -> ExactResult:
    """Solve the round's welfare MIP exactly (to ``mip_rel_gap``) with HiGHS within ``time_limit_s``;
    ``relax=True`` solves the LP relaxation instead (its optimum is an upper bound of the MIP's)."""
    t0 = time.perf_counter()
    js = sorted(jobs, key=lambda j: j.job_id)
    os_ = sorted(offers, key=lambda o: o.provider)
    n, J, O = len(pairs.job), len(js), len(os_)
    if n == 0:
        return ExactResult(0.0, 0.0, True, time.perf_counter() - t0, "no feasible pairs")
    used = [running.get(o.provider, Usage()) for o in os_]
    cap = {
        "cpus": np.array([o.cpus - u.cpus for o, u in zip(os_, used)], float),
        "gpus": np.array([o.gpus - u.gpus for o, u in zip(os_, used)], float),
        "mem": np.array([o.memory_bytes - u.memory_bytes for o, u in zip(os_, used)], float),
        "bond": np.array([o.free_bond_wei for o in os_], float),
    }
    need = {
        "cpus": np.array([j.cpus for j in js], float), "gpus": np.array([j.gpus for j in js], float),
        "mem": np.array([j.memory_bytes for j in js], float), "bond": np.array([j.collateral_wei for j in js], float),
    }
    cols = np.arange(n)
    blocks = [sp.csr_matrix((np.ones(n), (pairs.job, cols)), shape=(J, n))]
    ub = [np.ones(J)]
    for k in ("cpus", "gpus", "mem", "bond"):
        scale = np.maximum(cap[k], 1.0)
        coef = need[k][pairs.job] / scale[pairs.offer]
        blocks.append(sp.csr_matrix((coef, (pairs.offer, cols)), shape=(O, n)))
        ub.append(cap[k] / scale + 1e-9)
    A = sp.vstack(blocks).tocsr()
    w = np.asarray(pairs.welfare, dtype=float)
    w_scale = max(1.0, float(w.max()))  # HiGHS misbehaves with objective coefficients ~1e15
    res = milp(-w / w_scale, constraints=LinearConstraint(A, -np.inf, np.concatenate(ub)),
               integrality=np.zeros(n) if relax else np.ones(n),
               bounds=Bounds(0, 1), options={"time_limit": time_limit_s, "mip_rel_gap": mip_rel_gap, "disp": False})
    secs = time.perf_counter() - t0
    welfare = None if res.x is None else float(w @ (res.x if relax else np.round(res.x)))
    if relax:
        bound = welfare  # the LP optimum bounds the MIP optimum from above
    else:
        dual = getattr(res, "mip_dual_bound", None)
        bound = None if dual is None else -float(dual) * w_scale
    chosen = None if res.x is None else np.nonzero(np.round(res.x) > 0)[0]
    return ExactResult(welfare, bound, res.status == 0, secs, str(res.message), chosen)
