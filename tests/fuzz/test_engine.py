"""The fuzz engine counts what it claims: native crashes and hangs in an isolated child,
unexpected exceptions in process, and the same cases for the same seed."""

from __future__ import annotations

from tests.fuzz.engine import case_input, corpus_of, run_in_process, run_isolated
from tests.fuzz.selftest_targets import MISBEHAVING, UNEXPECTED


def _expected(target, cases, seed):
    kinds = [case_input(target, corpus_of(target), seed, i)[0] % 4 for i in range(cases)]
    return {name: kinds.count(k) for k, name in enumerate(("accepted", "clean_error", "crash", "hang"))}


def test_isolated_run_counts_segfaults_and_hangs_and_resumes():
    tally = run_isolated(MISBEHAVING, 12, seed=5, hang_s=2.0, start_timeout_s=120)
    want = _expected(MISBEHAVING, 12, 5)
    assert want["crash"] and want["hang"], "seed 5 should draw both crashes and hangs in 12 cases"
    got = {k: getattr(tally, k) for k in want}
    assert got == want and tally.cases == 12
    crashes = [f for f in tally.failures if f["outcome"] == "crash"]
    assert crashes and all("-11" in f["detail"] for f in crashes)  # SIGSEGV, pinpointed per case


def test_in_process_counts_unexpected_exceptions_as_crashes():
    tally = run_in_process(UNEXPECTED, 50, seed=1)
    odd = sum(case_input(UNEXPECTED, [b"\x00"], 1, i)[0] % 2 for i in range(50))
    assert (tally.crash, tally.accepted, tally.clean_error) == (odd, 50 - odd, 0)
    assert "KeyError" in tally.failures[0]["detail"]


def test_same_seed_same_cases():
    a = [case_input(MISBEHAVING, [b"\x00"], 9, i) for i in range(20)]
    assert a == [case_input(MISBEHAVING, [b"\x00"], 9, i) for i in range(20)]
    assert a != [case_input(MISBEHAVING, [b"\x00"], 10, i) for i in range(20)]
