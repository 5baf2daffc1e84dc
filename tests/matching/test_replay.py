"""Determinism, canonical hashes and replay of recorded rounds."""

from __future__ import annotations

import json

import pytest

from tests.matching.oracle import NOW_S, make_instance
from market.core.matching import ReplayMismatch, RoundInputs, clear_round, replay


@pytest.fixture(scope="module")
def instance():
    return make_instance(300, 30, seed=7)


def test_same_inputs_and_seed_same_assignment(instance) -> None:
    jobs, offers, running = instance
    a = clear_round(jobs, offers, now_s=NOW_S, running=running, rule="second-price")
    b = clear_round(list(reversed(jobs)), list(reversed(offers)), now_s=NOW_S, running=running, rule="second-price")
    assert a.assignments == b.assignments and a.input_hash == b.input_hash and a.output_hash == b.output_hash
    assert len(a.assignments) > 100  # a real round, not a trivial one


def test_hash_changes_with_any_input(instance) -> None:
    jobs, offers, running = instance
    a = clear_round(jobs, offers, now_s=NOW_S, running=running)
    assert clear_round(jobs, offers, now_s=NOW_S + 1, running=running).input_hash != a.input_hash
    assert clear_round(jobs, offers, now_s=NOW_S, running=running, seed=1).input_hash != a.input_hash
    assert clear_round(jobs[1:], offers, now_s=NOW_S, running=running).input_hash != a.input_hash
    assert clear_round(jobs, offers, now_s=NOW_S, running={}).input_hash != a.input_hash


def test_replay_recomputes_and_matches(instance) -> None:
    jobs, offers, running = instance
    inputs = RoundInputs(tuple(jobs), tuple(offers), rule="reverse-dutch", now_s=NOW_S, running=running, seed=3,
                         ask_overrides={(jobs[0].job_id, offers[0].provider): 12345})
    result = inputs.clear()
    recorded = inputs.to_json(input_hash=result.input_hash, output_hash=result.output_hash)
    again = replay(recorded)
    assert (again.input_hash, again.output_hash) == (result.input_hash, result.output_hash)
    assert again.assignments == result.assignments
    doc = json.loads(recorded)
    doc["output_hash"] = "0" * 64
    with pytest.raises(ReplayMismatch, match="output_hash"):
        replay(json.dumps(doc))
    doc = json.loads(recorded)
    doc["jobs"][0]["max_price_wei"] += 1
    with pytest.raises(ReplayMismatch, match="input_hash"):
        replay(json.dumps(doc))
