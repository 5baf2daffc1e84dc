"""Bounded fuzzing of the job spec file and of the exchange API's request bodies (issue 14): 2,000 mutated
documents through the spec model (market.core.jobspec), only clean JobSpecErrors or acceptance; 2,000 mutated signed
and unsigned bodies against the FastAPI app in process, every refusal a clean 4xx with the ``{"error", "message",
"hint"}`` body that left the database unchanged, never a 500. Fixed seeds: a failure names its case, rebuilt by
``tests.fuzz.engine.case_input(target, corpus, SEED, case)``. Longer runs: ``python benchmarks/fuzz.py --targets
jobspec,api_body``."""

from __future__ import annotations

import json

import pytest

from tests.fuzz.engine import load_targets, run_in_process

SEED = 20261201
CASES = 2000
#: Per-case limit, generous for a loaded 2-core CI box (a case takes milliseconds).
HANG_S = 10.0
TARGETS = load_targets()


@pytest.mark.parametrize("name", ["jobspec", "api_body"])
def test_mutated_specs_and_bodies_fail_cleanly(name):
    tally = run_in_process(TARGETS[name], CASES, SEED, hang_s=HANG_S)
    summary = {k: v for k, v in tally.as_dict().items() if k != "failures"} | {"failures": tally.failures[:3]}
    assert tally.cases == CASES
    assert tally.crash == 0 and tally.hang == 0, summary
    assert tally.clean_error + tally.accepted == CASES
    # the mutators reach the checks: most mutants are refused, some stay valid
    assert tally.clean_error > CASES // 2 and tally.accepted > 0, summary


def test_the_api_check_flags_a_refusal_that_wrote_and_a_5xx(monkeypatch):
    """The API target's oracle is not weakened by skipping digests: a refused request that changed a table (here a
    row written while the request runs) is a crash, and so is a 5xx answer."""
    from sqlalchemy import text

    from tests.fuzz import api_targets

    w = api_targets.world()
    refused = json.dumps(api_targets._s("/v1/balance", "account.balance", {"extra": 1})).encode()
    with pytest.raises(api_targets.Refused):
        api_targets.check_api(refused)
    post = w._post

    def writing_post(case, expect_ok=False):
        with w.rt.engine.begin() as conn:
            conn.execute(text("INSERT INTO service_meta (key, value) VALUES ('fuzz-oracle-check', 'x')"))
        return post(case, expect_ok)

    monkeypatch.setattr(w, "_post", writing_post)
    with pytest.raises(AssertionError, match="service_meta"):
        api_targets.check_api(refused)
    monkeypatch.setattr(w, "_post", lambda case, expect_ok=False: (500, b'{"error": "internal"}'))
    with pytest.raises(AssertionError, match="500"):
        api_targets.check_api(refused)
