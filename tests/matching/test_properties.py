"""Property tests (hypothesis): no assignment violates a constraint, welfare close to the exact optimum,
determinism; the kernels' pair checks agree with the plain-Python reference."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.matching.oracle import exact_optimum, pairs_reference
from market.core.explain import reference_reason
from market.core.matching import clear_round
from market.core.orders import Usage, ask_wei
from tests.matching.strategies import NOW_S, rounds

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_feasible(result, jobs, offers, running) -> None:
    """Every assignment passes every constraint; per-provider sums stay within free capacity and bond."""
    by_job = {j.job_id: j for j in jobs}
    by_prov = {o.provider: o for o in offers}
    used: dict[str, list[int]] = {}
    for a in result.assignments:
        job, offer = by_job[a.job_id], by_prov[a.provider]
        assert reference_reason(job, offer, NOW_S, job.max_price_wei, running) == "ok", (a, job, offer)
        assert a.ask_wei == ask_wei(job, offer) and a.ask_wei <= a.price_wei <= job.max_price_wei
        u = used.setdefault(a.provider, [0, 0, 0, 0])
        for i, v in enumerate((job.cpus, job.gpus, job.memory_bytes, job.collateral_wei)):
            u[i] += v
    for prov, (c, g, m, b) in used.items():
        o, r = by_prov[prov], running.get(prov, Usage())
        assert c <= o.cpus - r.cpus and g <= o.gpus - r.gpus and m <= o.memory_bytes - r.memory_bytes
        assert b <= o.free_bond_wei


@SETTINGS
@given(rounds(), st.sampled_from(["pay-as-bid", "second-price"]))
def test_no_assignment_violates_a_constraint(rnd, rule) -> None:
    jobs, offers, running = rnd
    result = clear_round(jobs, offers, now_s=NOW_S, running=running, rule=rule)
    check_feasible(result, jobs, offers, running)
    assert sorted(result.unmatched + [a.job_id for a in result.assignments]) == sorted(j.job_id for j in jobs)


@SETTINGS
@given(rounds(n_jobs=10, n_offers=4))
def test_welfare_within_one_percent_of_exact_optimum(rnd) -> None:
    jobs, offers, running = rnd
    result = clear_round(jobs, offers, now_s=NOW_S, running=running)
    pairs = pairs_reference(jobs, offers, NOW_S, running)
    exact = exact_optimum(jobs, offers, NOW_S, running, pairs, time_limit_s=20)
    assert exact.optimal
    assert result.welfare_wei >= 0.99 * exact.welfare - 1, (result.welfare_wei, exact.welfare)


@settings(max_examples=40, deadline=None)
@given(rounds(), st.integers(0, 3))
def test_same_inputs_same_result_whatever_the_input_order(rnd, seed) -> None:
    jobs, offers, running = rnd
    a = clear_round(jobs, offers, now_s=NOW_S, running=running, seed=seed)
    shuffled_jobs, shuffled_offers = jobs[:], offers[:]
    random.Random(seed).shuffle(shuffled_jobs)
    random.Random(seed + 1).shuffle(shuffled_offers)
    b = clear_round(shuffled_jobs, shuffled_offers, now_s=NOW_S, running=dict(running), seed=seed)
    assert (a.input_hash, a.output_hash) == (b.input_hash, b.output_hash)
    assert a.assignments == b.assignments


@SETTINGS
@given(rounds())
def test_explanations_name_a_constraint_every_offer_really_fails(rnd) -> None:
    jobs, offers, running = rnd
    result = clear_round(jobs, offers, now_s=NOW_S, running=running, explain=True)
    by_job = {j.job_id: j for j in jobs}
    for job_id, expl in result.explanations.items():
        job = by_job[job_id]
        reasons = [reference_reason(job, o, NOW_S, job.max_price_wei, running) for o in offers]
        expected = {r: reasons.count(r) for r in set(reasons) if r != "ok"}
        counts = dict(expl.counts)
        taken = counts.pop("taken", 0)
        assert counts == expected  # the funnel counts equal the reference, reason by reason
        assert taken == reasons.count("ok")  # offers that passed everything were full
        assert expl.blocking in (*expected, "taken", "no offers")
