"""Bounded fuzzing of the proving file formats (issue 14): 2,000 mutated inputs per format,
each rejected with a project error or accepted, never a crash or a hang; and a sample of
mutated zkeys parsed AND proved by the numba prover in a child process, so that a native
crash (SIGSEGV, SIGABRT in a kernel) is caught and counted instead of killing the suite.

Seeds are fixed: a failure names its case, and ``tests.fuzz.engine.case_input(target,
corpus, SEED, case)`` rebuilds the input. Longer runs: ``python benchmarks/fuzz.py``.
"""

from __future__ import annotations

from functools import cache

import pytest

from tests.fuzz.engine import load_targets, run_in_process, run_isolated

SEED = 20261201
CASES = 2000
#: Mutated zkeys replayed through parse + numba prove in a child process.
ISOLATED_SAMPLE = 200
#: Per-case limits, generous for a loaded 2-core CI box (a case takes milliseconds).
HANG_S = 10.0
ISOLATED_HANG_S = 60.0
FORMATS = ("zkey", "wtns", "r1cs", "proof_json", "vk_json", "public_json")
TARGETS = load_targets()


def _summary(tally) -> str:
    return f"{tally.as_dict()}"


@cache
def _in_process(name: str):
    return run_in_process(TARGETS[name], CASES, SEED, hang_s=HANG_S)


@pytest.mark.parametrize("name", FORMATS)
def test_mutated_inputs_fail_cleanly(name):
    tally = _in_process(name)
    assert tally.cases == CASES
    assert tally.crash == 0 and tally.hang == 0, _summary(tally)
    assert tally.clean_error + tally.accepted == CASES
    # the mutators reach the checks: most mutants are malformed, some stay valid
    assert tally.clean_error > CASES // 2 and tally.accepted > 0, _summary(tally)


def test_mutated_zkeys_never_crash_the_numba_prover():
    zkey = TARGETS["zkey"]
    parsed = _in_process("zkey")
    rejected = [i for i in range(CASES) if i not in set(parsed.accepted_cases)]
    sample = sorted((parsed.accepted_cases + rejected)[:ISOLATED_SAMPLE])
    assert len(parsed.accepted_cases) >= 50, "the sample must prove many zkeys that parse"
    tally = run_isolated(zkey, 0, SEED, hang_s=ISOLATED_HANG_S, indices=sample)
    assert tally.cases == ISOLATED_SAMPLE
    assert tally.crash == 0 and tally.hang == 0, _summary(tally)
    assert tally.accepted >= 1, _summary(tally)  # some mutants (e.g. a changed coefficient) still prove
