"""Each constraint of a round, with hand-checked outcomes."""

from __future__ import annotations

import pytest

from market.core.matching import clear_round
from market.core.orders import DuplicateId, InvalidOrder, JobOrder, Offer, Usage, ask_wei, reopen, run_seconds

GIB = 2**30
NOW = 10_000.0


def job(job_id: str = "j1", **kw) -> JobOrder:
    base = dict(client="alice", kind="proof", duration_estimate_s=100, max_price_wei=10**9, deadline_s=NOW + 10**6)
    base.update(kw)
    return JobOrder(job_id, **base)


def offer(provider: str = "p1", **kw) -> Offer:
    base = dict(cpus=8, memory_bytes=64 * GIB, price_per_cpu_s_wei=10, free_bond_wei=10**12)
    base.update(kw)
    return Offer(provider, **base)


def matched(jobs, offers, **kw) -> dict[str, str]:
    return {a.job_id: a.provider for a in clear_round(jobs, offers, now_s=NOW, **kw).assignments}


def test_ask_formula_by_hand() -> None:
    j = job(cpus=2, gpus=1, gpu_model="H100", memory_bytes=3 * GIB // 2, duration_estimate_s=100)
    o = offer(gpus=2, gpu_model="H100", price_per_cpu_s_wei=7, price_per_gpu_s_wei=1000, price_per_gib_s_wei=3, speed=1.5)
    # run = ceil(100 * 1000 / 1500) = 67 s; rate = 2*7 + 1*1000 + ceil(1.5 * 3) = 1019 wei/s
    assert run_seconds(100, 1500) == 67
    assert ask_wei(j, o) == 67 * 1019
    assert clear_round([j], [o], now_s=NOW).assignments[0].ask_wei == 67 * 1019


def test_cheapest_feasible_offer_wins_and_ties_go_to_the_smaller_provider_id() -> None:
    offers = [offer("p-b", price_per_cpu_s_wei=5), offer("p-a", price_per_cpu_s_wei=5), offer("p-c", price_per_cpu_s_wei=4)]
    assert matched([job()], offers) == {"j1": "p-c"}
    assert matched([job()], offers[:2]) == {"j1": "p-a"}


def test_gpu_model_must_match_and_any_model_takes_the_cheapest() -> None:
    offers = [offer("a100", gpus=1, gpu_model="A100", price_per_gpu_s_wei=50),
              offer("h100", gpus=1, gpu_model="H100", price_per_gpu_s_wei=90)]
    assert matched([job(gpus=1, gpu_model="H100")], offers) == {"j1": "h100"}
    assert matched([job(gpus=1)], offers) == {"j1": "a100"}
    assert matched([job(gpus=1, gpu_model="L4")], offers) == {}


def test_capacity_is_shared_across_the_round_and_running_jobs() -> None:
    offers = [offer("p1", cpus=8, price_per_cpu_s_wei=1), offer("p2", cpus=8, price_per_cpu_s_wei=2)]
    jobs = [job(f"j{i}", cpus=3) for i in range(5)]
    # p1 holds two 3-CPU jobs (6 <= 8), p2 two more; the fifth has no room anywhere
    out = matched(jobs, offers)
    assert sorted(out.values()) == ["p1", "p1", "p2", "p2"]
    # 4 CPUs of p1 are already running: only one 3-CPU job fits there now
    out = matched(jobs, offers, running={"p1": Usage(cpus=4)})
    assert sorted(out.values()) == ["p1", "p2", "p2"]


def test_memory_and_gpu_count_are_capacities() -> None:
    o = offer(gpus=2, gpu_model="L4", memory_bytes=10 * GIB, price_per_gpu_s_wei=1)
    jobs = [job("a", gpus=1, memory_bytes=6 * GIB), job("b", gpus=1, memory_bytes=6 * GIB), job("c", gpus=3)]
    assert len(matched(jobs, [o])) == 1


def test_free_bond_is_consumed_per_assignment() -> None:
    o = offer(free_bond_wei=25)
    jobs = [job(f"j{i}", cpus=1, collateral_wei=10) for i in range(4)]
    assert len(matched(jobs, [o])) == 2  # 10 + 10 <= 25 < 30
    assert matched([job(collateral_wei=26)], [o]) == {}


def test_deadline_is_checked_at_the_providers_speed() -> None:
    slow, fast = offer("slow", speed=0.5, price_per_cpu_s_wei=1), offer("fast", speed=2.0, price_per_cpu_s_wei=9)
    # 100 s at reference speed: 200 s on "slow", 50 s on "fast"; deadline in 150 s
    assert matched([job(deadline_s=NOW + 150)], [slow, fast]) == {"j1": "fast"}
    assert matched([job(deadline_s=NOW + 200)], [slow, fast]) == {"j1": "slow"}


def test_reputation_floor_labels_and_verification_policy() -> None:
    good = offer("good", reputation=0.95, labels=frozenset({"eu"}), price_per_cpu_s_wei=9)
    cheap = offer("cheap", reputation=0.5, verification=frozenset({"attestation"}), price_per_cpu_s_wei=1)
    assert matched([job(min_reputation=0.9)], [good, cheap]) == {"j1": "good"}
    assert matched([job(labels_required=frozenset({"eu"}))], [good, cheap]) == {"j1": "good"}
    assert matched([job(verification="proof")], [good, cheap]) == {"j1": "good"}
    assert matched([job()], [good, cheap]) == {"j1": "cheap"}


def test_allow_deny_and_exclude_lists() -> None:
    offers = [offer("p1", price_per_cpu_s_wei=1), offer("p2", price_per_cpu_s_wei=2), offer("p3", price_per_cpu_s_wei=3)]
    assert matched([job(allow_providers=frozenset({"p3"}))], offers) == {"j1": "p3"}
    assert matched([job(deny_providers=frozenset({"p1"}))], offers) == {"j1": "p2"}
    assert matched([job(exclude_providers=frozenset({"p1", "p2"}))], offers) == {"j1": "p3"}
    assert matched([job(allow_providers=frozenset({"nobody"}))], offers) == {}


def test_price_cap() -> None:
    o = offer(price_per_cpu_s_wei=10)  # ask = 100 s * 10 = 1000
    assert matched([job(max_price_wei=999)], [o]) == {}
    assert matched([job(max_price_wei=1000)], [o]) == {"j1": "p1"}


def test_welfare_beats_greedy_first_come() -> None:
    # A values the cheap offer slightly more, B (a long job) much more: the optimum gives B the cheap one.
    cheap, dear = offer("cheap", cpus=1, price_per_cpu_s_wei=1), offer("dear", cpus=1, price_per_cpu_s_wei=2)
    a = job("a", duration_estimate_s=1, max_price_wei=100)
    b = job("b", duration_estimate_s=5, max_price_wei=10)
    result = clear_round([a, b], [cheap, dear], now_s=NOW)
    assert {x.job_id: x.provider for x in result.assignments} == {"a": "dear", "b": "cheap"}
    assert result.welfare_wei == (100 - 2) + (10 - 5)


def test_reopen_for_re_auction() -> None:
    j = job(max_price_wei=1000, min_price_wei=900)
    again = reopen(j, failed_provider="p1", spent_wei=300)
    assert (again.attempt, again.max_price_wei, again.exclude_providers) == (1, 700, frozenset({"p1"}))
    assert again.min_price_wei == 700
    assert matched([again], [offer("p1", price_per_cpu_s_wei=1), offer("p2", price_per_cpu_s_wei=2)]) == {"j1": "p2"}
    with pytest.raises(InvalidOrder, match="max_price_wei"):
        reopen(j, failed_provider=None, spent_wei=1000)


def test_bad_input_names_the_field() -> None:
    with pytest.raises(InvalidOrder, match="duration_estimate_s"):
        job(duration_estimate_s=0)
    with pytest.raises(InvalidOrder, match="max_price_wei"):
        job(max_price_wei=1.5)
    with pytest.raises(InvalidOrder, match="gpu_model"):
        offer(gpus=1)
    with pytest.raises(DuplicateId):
        clear_round([job(), job()], [offer()], now_s=NOW)
    with pytest.raises(DuplicateId):
        clear_round([job()], [offer(), offer()], now_s=NOW)
