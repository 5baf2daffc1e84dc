"""Pure tests of the batching windows and the adaptive batch-size controller (no Ray)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.pipeline.batching import (
    BatchingWindows,
    BatchSizeController,
    ControllerConfig,
    FlushReason,
    GroupKey,
    ProofJob,
    WindowPolicy,
    batch_id_of,
    validate_job,
)
from market.pipeline.errors import InvalidJob, PipelineConfigError

PK_A = "a" * 64
PK_B = "b" * 64


def job(i: int, t: float, circuit: str = "mimc", pk: str = PK_A, deadline: float = 100.0) -> ProofJob:
    return ProofJob(job_id=f"j{i}", circuit_id=circuit, pk_hash=pk, witness=(1, i), submitted_s=t,
                    deadline_s=t + deadline)


def test_full_window_flushes_at_target_in_arrival_order():
    w = BatchingWindows(WindowPolicy(window_s=1.0))
    out = []
    for i in range(7):
        out += w.add(job(i, 0.01 * i), now_s=0.01 * i, target=3)
    assert [b.reason for b in out] == [FlushReason.FULL, FlushReason.FULL]
    assert [[j.job_id for j in b.jobs] for b in out] == [["j0", "j1", "j2"], ["j3", "j4", "j5"]]
    assert len(w) == 1


def test_lone_job_flushes_exactly_at_its_window():
    w = BatchingWindows(WindowPolicy(window_s=0.2, deadline_margin_s=0.0))
    assert w.add(job(0, 5.0), now_s=5.0, target=8) == []
    assert w.next_due_s() == pytest.approx(5.2)
    assert w.poll(5.19) == []
    (b,) = w.poll(5.2)
    assert b.reason is FlushReason.WINDOW and b.size == 1 and b.flushed_s - b.opened_s == pytest.approx(0.2)
    assert len(w) == 0 and w.next_due_s() is None


def test_groups_never_mix_circuits_or_keys():
    w = BatchingWindows(WindowPolicy(window_s=1.0))
    w.add(job(0, 0, "mimc", PK_A), 0, 10)
    w.add(job(1, 0, "mimc", PK_B), 0, 10)
    w.add(job(2, 0, "other", PK_A), 0, 10)
    w.add(job(3, 0, "mimc", PK_A), 0, 10)
    batches = w.drain(0.5)
    keys = {b.key: [j.job_id for j in b.jobs] for b in batches}
    assert keys == {GroupKey("mimc", PK_A): ["j0", "j3"], GroupKey("mimc", PK_B): ["j1"],
                    GroupKey("other", PK_A): ["j2"]}


def test_deadline_flushes_before_window():
    w = BatchingWindows(WindowPolicy(window_s=10.0, deadline_margin_s=0.5))
    assert w.add(job(0, 0.0, deadline=3.0), 0.0, target=8, expected_latency_s=1.0) == []
    assert w.next_due_s(1.0) == pytest.approx(1.5)
    assert w.poll(1.4, expected_latency_s=1.0) == []
    (b,) = w.poll(1.5, expected_latency_s=1.0)
    assert b.reason is FlushReason.DEADLINE


def test_batch_ids_are_deterministic_and_depend_on_attempt():
    def run():
        w = BatchingWindows(WindowPolicy(window_s=0.1))
        out = []
        for i in range(5):
            out += w.add(job(i, i * 0.03), i * 0.03, target=2)
        return [b.batch_id for b in out + w.drain(1.0)]

    assert run() == run()
    k = GroupKey("mimc", PK_A)
    assert batch_id_of(k, ["a", "b"]) != batch_id_of(k, ["a", "b"], attempt=1)
    assert batch_id_of(k, ["a", "b"]) != batch_id_of(k, ["b", "a"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=0.05), min_size=1, max_size=40),
       st.integers(min_value=1, max_value=6), st.floats(min_value=0.01, max_value=0.3))
def test_no_job_waits_past_its_window_and_none_is_lost(gaps, target, window_s):
    """Polling at every due time: each job leaves within window_s of its window's opening."""
    w = BatchingWindows(WindowPolicy(window_s=window_s, deadline_margin_s=0.0))
    t, out = 0.0, []
    for i, g in enumerate(gaps):
        due = w.next_due_s()
        while due is not None and due <= t + g:
            out += w.poll(due)
            due = w.next_due_s()
        t += g
        out += w.add(job(i, t), t, target)
    while (due := w.next_due_s()) is not None:
        out += w.poll(due)
    assert sorted(int(j.job_id[1:]) for b in out for j in b.jobs) == list(range(len(gaps)))
    for b in out:
        assert b.size <= target
        assert all(b.flushed_s - j.submitted_s <= window_s + 1e-9 for j in b.jobs)


def test_controller_follows_queue_depth_and_latency_bound():
    c = BatchSizeController(ControllerConfig(min_batch=1, max_batch=64, target_latency_s=2.0,
                                             prior_overhead_s=0.0, prior_per_proof_s=0.1))
    assert c.target(queue_depth=0, n_workers=3) == 1
    assert c.target(queue_depth=1, n_workers=3) == 1
    assert c.target(queue_depth=30, n_workers=3) == 10
    assert c.target(queue_depth=300, n_workers=3) == 20  # L(n) <= 2 s at 0.1 s/proof
    assert c.target(queue_depth=300, n_workers=3, min_slack_s=0.55) == 5  # deadline binds


def test_controller_fits_overhead_and_per_proof_from_measurements():
    c = BatchSizeController(ControllerConfig(ewma_alpha=0.5, target_latency_s=3.0, max_batch=100))
    for _ in range(20):
        for n in (2, 4, 8):
            c.observe(n, 0.4 + 0.25 * n)
    assert c.per_proof_s == pytest.approx(0.25, rel=0.05)
    assert c.overhead_s == pytest.approx(0.4, abs=0.05)
    assert c.target(queue_depth=1000, n_workers=1) == 10  # (3.0 - 0.4) / 0.25 = 10.4
    # the prover slows down: the controller shrinks the batch
    for _ in range(30):
        for n in (2, 4, 8):
            c.observe(n, 0.4 + 0.5 * n)
    assert c.target(queue_depth=1000, n_workers=1) == 5


def test_controller_with_constant_size_uses_per_proof_average():
    c = BatchSizeController(ControllerConfig(prior_overhead_s=0.1, target_latency_s=1.0))
    for _ in range(10):
        c.observe(4, 0.9)
    assert c.per_proof_s == pytest.approx(0.2)
    assert c.target(100, 1) == 4


def test_config_and_job_validation_name_the_field():
    with pytest.raises(PipelineConfigError) as e:
        WindowPolicy(window_s=0)
    assert e.value.field == "window_s"
    with pytest.raises(PipelineConfigError):
        ControllerConfig(min_batch=5, max_batch=2)
    with pytest.raises(InvalidJob) as e2:
        validate_job(ProofJob("j", "mimc", "zz", (1,), 0.0, 1.0))
    assert e2.value.field == "pk_hash"
    with pytest.raises(InvalidJob) as e3:
        validate_job(ProofJob("j", "mimc", PK_A, (1,), 1.0, 1.0))
    assert e3.value.field == "deadline_s"
    validate_job(job(1, 0.0))
