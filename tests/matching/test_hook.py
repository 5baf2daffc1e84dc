"""Provider pricing hooks (run in a worker process): entry point or file, time limit, fallback to the static ask,
refusal of invalid asks, use in a round."""

from __future__ import annotations

import pytest

from market.core.matching import clear_round
from market.core.orders import ask_wei
from market.exchange.pricing_hooks import run_hook
from tests.matching.test_constraints import NOW, job, offer

HOOK_FILE = '''
import time

def half_price(job, offer):
    return job["duration_estimate_s"] * job["cpus"] * offer["price_per_cpu_s_wei"] // 2

def picky(job, offer):
    if job["kind"] == "proof":
        raise ValueError("no proofs today")
    return 7

def slow(job, offer):
    time.sleep(1.0)
    return 1

def bad(job, offer):
    return 1.5
'''


@pytest.fixture()
def hook_file(tmp_path):
    path = tmp_path / "pricing.py"
    path.write_text(HOOK_FILE)
    return str(path)


def test_load_by_file_and_by_entry_point(hook_file) -> None:
    o = offer(price_per_cpu_s_wei=3)
    j = job(duration_estimate_s=10, cpus=2)
    assert run_hook(f"{hook_file}:half_price", o, [j]).asks == {("j1", "p1"): 30}
    report = run_hook("operator:countOf", o, [j])  # an entry point: countOf(job, offer) == 0 keys equal the offer
    assert report.asks == {} and "ask 0 wei refused" in report.refusals[0].reason
    for spec, why in (("/nonexistent/x.py:f", "not found"), (f"{hook_file}:nope", "missing"),
                      ("just_a_module", "':function'")):
        report = run_hook(spec, o, [j])
        assert report.asks == {("j1", "p1"): ask_wei(j, o)} and why in report.fallbacks[0].reason, spec


def test_hook_asks_are_used_in_the_round(hook_file) -> None:
    hooked, rival = offer("hooked", price_per_cpu_s_wei=10), offer("rival", price_per_cpu_s_wei=6)
    j = job()
    report = run_hook(f"{hook_file}:half_price", hooked, [j])
    assert report.asks == {("j1", "hooked"): 500} and report.fallbacks == [] and report.hook_calls_ok == 1
    result = clear_round([j], [hooked, rival], now_s=NOW, ask_overrides=report.asks)
    assert [(a.provider, a.ask_wei) for a in result.assignments] == [("hooked", 500)]  # static asks: 1000 vs 600


def test_exception_falls_back_to_the_static_ask(hook_file) -> None:
    o = offer()
    jobs = [job("a", kind="proof"), job("b", kind="inference")]
    report = run_hook(f"{hook_file}:picky", o, jobs)
    assert report.asks == {("a", "p1"): ask_wei(jobs[0], o), ("b", "p1"): 7}
    assert [(f.job_id, f.reason) for f in report.fallbacks] == [("a", "raised ValueError: no proofs today")]


def test_timeout_falls_back_and_skips_the_rest(hook_file) -> None:
    o = offer()
    jobs = [job("a"), job("b")]
    report = run_hook(f"{hook_file}:slow", o, jobs, timeout_s=0.05)
    assert report.asks == {("a", "p1"): ask_wei(jobs[0], o), ("b", "p1"): ask_wei(jobs[1], o)}
    assert [f.reason for f in report.fallbacks] == ["timed out after 0.05 s", "skipped after timeout"]


def test_bad_value_is_refused_and_bad_spec_falls_back(hook_file) -> None:
    o = offer()
    report = run_hook(f"{hook_file}:bad", o, [job()])
    assert report.asks == {} and "an ask must be an int" in report.refusals[0].reason
    report = run_hook("/nonexistent/x.py:f", o, [job()])
    assert report.fallbacks[0].reason.startswith("load failed")
