"""Explanations name the real blocking constraint; quotes say feasible or not and estimate the price."""

from __future__ import annotations

from market.core.explain import quote
from market.core.matching import clear_round
from tests.matching.test_constraints import NOW, job, offer

GIB = 2**30


def explain_one(j, offers):
    result = clear_round([j], offers, now_s=NOW, explain=True)
    assert result.unmatched == [j.job_id]
    return result.explanations[j.job_id]


def test_missing_gpu_model_is_named() -> None:
    offers = [offer(f"a{i}", gpus=1, gpu_model="A100") for i in range(3)] + [offer("cpu")]
    e = explain_one(job(gpus=1, gpu_model="H100"), offers)
    assert e.blocking == "model" and e.counts == {"model": 4}
    assert e.text.startswith("j1: 0 offers with gpu_model H100")


def test_price_names_the_cheapest_feasible_ask() -> None:
    offers = [offer("p1", price_per_cpu_s_wei=12), offer("p2", price_per_cpu_s_wei=15),
              offer("p3", price_per_cpu_s_wei=1, free_bond_wei=0), offer("p4", price_per_cpu_s_wei=1, reputation=0.1)]
    e = explain_one(job(max_price_wei=1000, collateral_wei=5, min_reputation=0.5), offers)
    assert e.blocking == "price"
    assert e.counts == {"reputation": 1, "bond": 1, "price": 2}
    assert e.cheapest_ask_wei == 1200 and e.cap_wei == 1000
    assert "2 offers too expensive, cheapest feasible ask 1.2e+03 wei > cap 1e+03 wei" in e.text
    assert "1 offers lack free bond" in e.text


def test_bond_blocks_when_it_is_the_last_filter() -> None:
    e = explain_one(job(collateral_wei=10**15), [offer("p1"), offer("p2", gpus=1, gpu_model="L4")])
    assert e.blocking == "bond" and e.counts == {"bond": 2}


def test_capacity_taken_by_the_round_is_reported_as_such() -> None:
    offers = [offer("p1", cpus=4)]
    result = clear_round([job("a", cpus=4, max_price_wei=10**6), job("b", cpus=4, max_price_wei=10**4)], offers,
                         now_s=NOW, explain=True)
    assert [a.job_id for a in result.assignments] == ["a"]
    e = result.explanations["b"]
    assert e.blocking == "taken" and e.counts == {"taken": 1}
    assert "filled by higher-welfare jobs" in e.text


def test_no_offers_at_all() -> None:
    result = clear_round([job()], [], now_s=NOW)
    assert result.explanations["j1"].blocking == "no offers"


def test_quote_feasible_with_percentiles() -> None:
    offers = [offer("p1", price_per_cpu_s_wei=12), offer("p2", price_per_cpu_s_wei=15, cpus=1)]
    q = quote(job(cpus=2, max_price_wei=10**6), offers, [100, 400, 200, 300, 500, 900, 800, 700, 600, 1000], now_s=NOW)
    assert q.feasible and q.feasible_offers == 1 and q.cheapest_ask_wei == 2400
    assert (q.p50_wei, q.p90_wei, q.samples) == (500, 900, 10)
    assert q.explanation.counts == {"size": 1}


def test_quote_infeasible_says_why() -> None:
    q = quote(job(deadline_s=NOW + 50), [offer("slow", speed=1.0)], [], now_s=NOW)
    assert not q.feasible and q.explanation.blocking == "deadline"
    assert q.p50_wei is None and q.cheapest_ask_wei is None
