"""Issue 13: the explanation of an unmatched job names the resource that blocks it (``gpus``, ``gpu_model``,
``cpus``, ``memory``), with what the job asks and the most any offer has free; the same in a round's
explanations and in a quote. The numba size-shortfall kernel agrees with the plain-Python funnel reference."""

from __future__ import annotations

import random

import numpy as np
import pytest

from market.core import _matching_kernels as K
from market.core.explain import quote, reference_reason
from market.core.matching import clear_round
from market.core.orders import JobOrder, Offer, build_job_book, build_offer_book

NOW = 1_700_000_000.0
GIB = 2**30


def offers() -> list[Offer]:
    cpu = [Offer(provider=f"p{i}", cpus=4, memory_bytes=8 * GIB, price_per_cpu_s_wei=10**9, free_bond_wei=10**18)
           for i in range(3)]
    return cpu + [Offer(provider="g1", cpus=2, memory_bytes=16 * GIB, price_per_cpu_s_wei=10**9,
                        free_bond_wei=10**18, gpus=1, gpu_model="A100")]


def job(job_id: str = "j1", **kw) -> JobOrder:
    return JobOrder(job_id=job_id, client="c", kind="inference", duration_estimate_s=10, max_price_wei=10**16,
                    deadline_s=NOW + 3600, **kw)


CASES = [  # (job resources, blocking stage, resource, words the text must hold)
    (dict(memory_bytes=64 * GIB), "size", "memory", ["0 offers with free memory 64 GiB", "most free: 16 GiB"]),
    (dict(cpus=8), "size", "cpus", ["0 offers with free 8 CPUs", "most free: 4 CPUs"]),
    (dict(gpus=2), "size", "gpus", ["free 2 GPUs (most free: 1 GPU)", "3 offers lack GPUs"]),
    (dict(gpus=1, memory_bytes=32 * GIB), "size", "memory", ["free memory 32 GiB (most free: 16 GiB)"]),
    (dict(gpus=1, gpu_model="H100"), "model", "gpu_model", ["0 offers with gpu_model H100"]),
    (dict(cpus=3, memory_bytes=12 * GIB), "size", "memory",
     ["1 lack 3 CPUs (most free: 2 CPUs)", "3 lack memory 12 GiB (most free: 8 GiB)"]),
]


@pytest.mark.parametrize("resources,blocking,resource,words", CASES)
def test_quote_names_the_blocking_resource(resources, blocking, resource, words):
    q = quote(job(**resources), offers(), [], now_s=NOW)
    assert not q.feasible
    e = q.explanation
    assert (e.blocking, e.resource) == (blocking, resource), e.text
    for w in words:
        assert w in e.text, (w, e.text)


def test_no_gpu_offer_names_gpus():
    e = quote(job(gpus=1), offers()[:3], [], now_s=NOW).explanation
    assert (e.blocking, e.resource) == ("model", "gpus") and "0 offers with GPUs" in e.text


def test_feasible_and_non_resource_blocks_name_no_resource():
    assert quote(job(), offers(), [], now_s=NOW).feasible
    e = quote(job(collateral_wei=10**18 + 1), offers(), [], now_s=NOW).explanation
    assert (e.blocking, e.resource) == ("bond", None)


def test_round_explanations_name_the_resource():
    r = clear_round([job("a", memory_bytes=64 * GIB), job("b", gpus=1, gpu_model="H100"), job("c", cpus=8),
                     job("ok")], offers(), now_s=NOW)
    ex = r.explanations
    assert set(ex) == {"a", "b", "c"}
    assert (ex["a"].resource, ex["b"].resource, ex["c"].resource) == ("memory", "gpu_model", "cpus")
    assert "free memory 64 GiB (most free: 16 GiB)" in ex["a"].text


def test_size_shortfall_kernel_matches_the_reference_funnel():
    rng = random.Random(13)
    for trial in range(30):
        offs = [Offer(provider=f"o{i}", cpus=rng.randint(1, 8), memory_bytes=rng.randint(1, 32) * GIB,
                      price_per_cpu_s_wei=10**9, free_bond_wei=10**18, gpus=(g := rng.choice([0, 0, 1, 2, 4])),
                      gpu_model=rng.choice(["A100", "H100"]) if g else None,
                      reputation=rng.choice([1.0, 0.2]))
                for i in range(rng.randint(1, 25))]
        jobs = [job(f"j{t}", cpus=rng.randint(1, 8), memory_bytes=rng.randint(0, 32) * GIB, gpus=rng.choice([0, 1, 2]),
                    min_reputation=rng.choice([0.0, 0.5])) for t in range(5)]
        ob, models, labels = build_offer_book(offs, None)
        jb = build_job_book(jobs, ob, models, labels)
        short, most = K.size_shortfall(np.arange(len(jobs), dtype=np.int64), K.job_columns(jb), K.offer_columns(ob))
        for t in range(len(jobs)):  # job book rows are in job-id order
            jo = next(j for j in jobs if j.job_id == jb.job_ids[t])
            sized = [o for o in offs if reference_reason(jo, o, NOW, None) == "size"]
            need = (jo.cpus, jo.gpus, jo.memory_bytes)
            have = [(o.cpus, o.gpus, o.memory_bytes) for o in sized]
            for r in range(3):
                lacking = [h[r] for h in have if h[r] < need[r]]
                assert short[t, r] == len(lacking), (trial, t, r)
                assert most[t, r] == (max(lacking) if lacking else -1), (trial, t, r)
