"""Pricing rules (pay-as-bid, second-price, reverse Dutch) and the Dutch lock lifecycle, by hand."""

from __future__ import annotations

import pytest

from market.core.matching import clear_round
from market.core.pricing import (InvalidTransition, LockStatus, UnknownRule, expire, fulfil, lock, open_job,
                            ramp_price_wei)
from tests.matching.test_constraints import NOW, job, offer

# asks for a 100 s, 1-CPU job: 100 * price_per_cpu_s
OFFERS = [offer("p1", price_per_cpu_s_wei=3), offer("p2", price_per_cpu_s_wei=5), offer("p3", price_per_cpu_s_wei=8)]


def prices(rule: str, jobs, offers=OFFERS, now_s: float = NOW) -> dict[str, tuple[str, int, int]]:
    r = clear_round(jobs, offers, now_s=now_s, rule=rule)
    return {a.job_id: (a.provider, a.ask_wei, a.price_wei) for a in r.assignments}


def test_pay_as_bid_pays_the_winning_ask() -> None:
    assert prices("pay-as-bid", [job(max_price_wei=1000)]) == {"j1": ("p1", 300, 300)}


def test_second_price_pays_the_next_lowest_feasible_ask() -> None:
    assert prices("second-price", [job(max_price_wei=1000)]) == {"j1": ("p1", 300, 500)}
    # capped at the job's max price
    assert prices("second-price", [job(max_price_wei=450)]) == {"j1": ("p1", 300, 450)}
    # a lone feasible offer: the max price acts as the second bid (reserve)
    assert prices("second-price", [job(max_price_wei=1000)], OFFERS[:1]) == {"j1": ("p1", 300, 1000)}
    # an offer the job cannot use does not set its price (p2 lacks the label)
    labelled = [offer("p1", price_per_cpu_s_wei=3, labels=frozenset({"eu"})), OFFERS[1],
                offer("p3", price_per_cpu_s_wei=8, labels=frozenset({"eu"}))]
    assert prices("second-price", [job(labels_required=frozenset({"eu"}))], labelled) == {"j1": ("p1", 300, 800)}


def test_reverse_dutch_ramp_by_hand() -> None:
    assert ramp_price_wei(100, 1100, 1000.0, 10.0, 999.0) == 100
    assert ramp_price_wei(100, 1100, 1000.0, 10.0, 1002.5) == 350
    assert ramp_price_wei(100, 1100, 1000.0, 10.0, 1010.0) == 1100
    assert ramp_price_wei(100, 1100, 1000.0, 10.0, 5000.0) == 1100


def test_reverse_dutch_locks_when_the_ramp_reaches_an_ask_and_pays_the_ramp_price() -> None:
    j = job(max_price_wei=1100, min_price_wei=100, bidding_start_s=NOW, ramp_period_s=10.0)
    assert prices("reverse-dutch", [j], now_s=NOW + 1) == {}  # ramp at 200 < cheapest ask 300
    assert prices("reverse-dutch", [j], now_s=NOW + 2.5) == {"j1": ("p1", 300, 350)}
    assert prices("reverse-dutch", [j], now_s=NOW + 20) == {"j1": ("p1", 300, 1100)}


def test_unknown_rule() -> None:
    with pytest.raises(UnknownRule, match="pay-as-bid"):
        clear_round([job()], OFFERS, now_s=NOW, rule="first-price")


def test_lock_fulfil_lifecycle() -> None:
    s = open_job(job())
    s = lock(s, provider="p1", price_wei=350, collateral_wei=40, now_s=100.0, lock_timeout_s=60.0)
    assert (s.status, s.provider, s.lock_expires_s) == (LockStatus.LOCKED, "p1", 160.0)
    with pytest.raises(InvalidTransition):
        lock(s, provider="p2", price_wei=400, collateral_wei=40, now_s=101.0, lock_timeout_s=60.0)
    with pytest.raises(InvalidTransition):
        fulfil(s, provider="p2", now_s=120.0)
    assert fulfil(s, provider="p1", now_s=160.0).status is LockStatus.FULFILLED
    assert expire(s, now_s=150.0, deadline_s=1000.0) == (s, None)


def test_lock_timeout_is_slashed_and_the_job_reopens_without_that_provider() -> None:
    s = lock(open_job(job()), provider="p1", price_wei=350, collateral_wei=41, now_s=100.0, lock_timeout_s=60.0)
    with pytest.raises(InvalidTransition, match="expired"):
        fulfil(s, provider="p1", now_s=161.0)
    s2, slash = expire(s, now_s=161.0, deadline_s=1000.0)
    assert slash is not None and (slash.provider, slash.collateral_wei, slash.burn_wei, slash.reward_wei) == ("p1", 41, 20, 21)
    assert (s2.status, s2.provider, s2.slashed) == (LockStatus.OPEN, None, ("p1",))
    with pytest.raises(InvalidTransition, match="slashed"):
        lock(s2, provider="p1", price_wei=1, collateral_wei=1, now_s=170.0, lock_timeout_s=60.0)
    s3 = lock(s2, provider="p2", price_wei=500, collateral_wei=41, now_s=170.0, lock_timeout_s=60.0)
    assert fulfil(s3, provider="p2", now_s=200.0).status is LockStatus.FULFILLED
    # a lock that times out after the job's deadline expires the job
    s4, slash4 = expire(s3, now_s=1001.0, deadline_s=1000.0)
    assert s4.status is LockStatus.EXPIRED and slash4 is not None and slash4.provider == "p2"
