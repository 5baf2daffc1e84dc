"""Hypothesis strategies: small random rounds that exercise every constraint."""

from __future__ import annotations

from hypothesis import strategies as st

from market.core.orders import JobOrder, Offer, Usage

GIB = 2**30
NOW_S = 1_000_000.0
MODELS = ["H100", "A100", "L4"]


@st.composite
def offers(draw, n_max: int = 4) -> list[Offer]:
    n = draw(st.integers(1, n_max))
    out = []
    for i in range(n):
        gpus = draw(st.sampled_from([0, 1, 2, 4]))
        out.append(Offer(
            provider=f"p{i}", cpus=draw(st.integers(2, 24)), memory_bytes=draw(st.integers(8, 64)) * GIB,
            gpus=gpus, gpu_model=draw(st.sampled_from(MODELS)) if gpus else None,
            price_per_cpu_s_wei=draw(st.integers(1, 1000)), price_per_gpu_s_wei=draw(st.integers(0, 20_000)),
            price_per_gib_s_wei=draw(st.integers(0, 30)), free_bond_wei=draw(st.integers(0, 2 * 10**7)),
            reputation=draw(st.sampled_from([0.5, 0.8, 0.95, 1.0])), labels=draw(st.sampled_from([frozenset(), frozenset({"eu"}), frozenset({"eu"})])),
            speed=draw(st.sampled_from([0.5, 1.0, 1.333, 2.0])),
            verification=draw(st.sampled_from([frozenset({"attestation"}), frozenset({"attestation", "proof"})]))))
    return out


@st.composite
def jobs(draw, providers: list[str], n_max: int = 8) -> list[JobOrder]:
    """Jobs that are mostly feasible somewhere (so capacity contention decides), with rarer hard constraints."""
    n = draw(st.integers(1, n_max))
    out = []
    rare = lambda p: draw(st.integers(0, 99)) < p  # noqa: E731
    for i in range(n):
        gpus = draw(st.sampled_from([0, 0, 0, 1, 2]))
        cpus = draw(st.sampled_from([1, 1, 2, 2, 4, 8]))
        dur = draw(st.integers(1, 5000))
        budget_rate = draw(st.integers(1, 4000)) * cpus + draw(st.integers(0, 40_000)) * gpus + draw(st.integers(0, 20_000))
        out.append(JobOrder(
            job_id=f"j{i:02d}", client="c", kind="proof", duration_estimate_s=dur,
            max_price_wei=dur * budget_rate + draw(st.integers(1, 10**6)),
            deadline_s=NOW_S + dur * draw(st.sampled_from([1, 2, 3, 4, 4, 4])) + draw(st.integers(0, 10)),
            cpus=cpus, gpus=gpus, gpu_model=draw(st.sampled_from([None, None, *MODELS])) if gpus else None,
            memory_bytes=draw(st.integers(0, 12)) * GIB,
            collateral_wei=draw(st.sampled_from([0, 0, 0, 10**5, 10**6, 5 * 10**6])),
            min_reputation=0.9 if rare(15) else 0.0,
            labels_required=frozenset({"eu"}) if rare(15) else frozenset(),
            verification="proof" if rare(15) else "attestation",
            deny_providers=frozenset({draw(st.sampled_from(providers))}) if rare(15) else frozenset(),
            allow_providers=frozenset(draw(st.lists(st.sampled_from(providers), min_size=1, max_size=2)))
            if rare(10) else frozenset()))
    return out


@st.composite
def rounds(draw, n_jobs: int = 8, n_offers: int = 4):
    offs = draw(offers(n_offers))
    js = draw(jobs([o.provider for o in offs], n_jobs))
    running = {o.provider: Usage(cpus=o.cpus // 4, gpus=o.gpus // 4) for o in offs if draw(st.booleans())}
    return js, offs, running
