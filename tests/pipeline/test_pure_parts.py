"""Pure tests of placement, metrics, provenance records, intake checks, bisection and the payment sink."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.pipeline.batching import ProofJob
from market.pipeline.errors import (
    BatchNotFound,
    InvalidJob,
    NoProviders,
    PipelineConfigError,
    QueueFull,
    UnknownCircuit,
)
from market.pipeline.metrics import PipelineMetrics, percentile, read_snapshot, write_snapshot
from market.pipeline.placement import ProviderSlot, choose_provider, split_by_speed
from market.pipeline.provenance import BatchRecord, JobRecord, ProvenanceStore, canonical_hash, inputs_hash
from market.pipeline.stages import (
    BoundedQueue,
    CircuitSpec,
    InMemoryPayments,
    chunk_bounds,
    intake_check,
    verify_with_bisection,
)


def test_choose_provider_earliest_finish_and_exclusions():
    slots = [ProviderSlot("fast", 10.0, max_inflight=2), ProviderSlot("slow", 1.0)]
    assert choose_provider(slots, 4, {}, {}).name == "fast"
    # fast has 40 proofs queued (4 s), slow finishes 4 proofs in 4 s: tie broken by name
    assert choose_provider(slots, 4, {"fast": 36}, {"fast": 1}).name == "fast"
    assert choose_provider(slots, 4, {"fast": 40}, {"fast": 1}).name == "slow"
    assert choose_provider(slots, 4, {}, {"fast": 2}).name == "slow"  # fast is at max_inflight
    assert choose_provider(slots, 4, {}, {"fast": 2, "slow": 2}) is None  # all busy: wait
    assert choose_provider(slots, 4, {}, {}, exclude=["fast"]).name == "slow"
    with pytest.raises(NoProviders) as e:
        choose_provider(slots, 4, {}, {}, circuit_id="c", exclude=["fast", "slow"])
    assert e.value.excluded == frozenset({"fast", "slow"})
    with pytest.raises(PipelineConfigError):
        ProviderSlot("x", 0.0)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 500), st.lists(st.floats(0.1, 100.0), min_size=1, max_size=6))
def test_split_by_speed_sums_and_is_proportional(n, speeds):
    slots = [ProviderSlot(f"p{i}", s) for i, s in enumerate(speeds)]
    counts = split_by_speed(n, slots)
    assert sum(counts.values()) == n
    total = sum(speeds)
    for s in slots:  # largest remainder: within one job of the exact quota
        assert abs(counts[s.name] - n * s.proofs_per_s / total) < 1.0 + 1e-9


def test_metrics_snapshot_and_file_roundtrip(tmp_path):
    t = [100.0]
    m = PipelineMetrics(clock=lambda: t[0])
    m.set_capacity("prove", 8)
    m.queue_depth("prove", 5)
    m.queue_depth("prove", 2)
    m.batch_done("prove", 4, 1.0)
    m.batch_done("prove", 2, 3.0, failed=1)
    for lat in (1.0, 2.0, 3.0, 10.0):
        m.job_done(lat)
    t[0] = 110.0
    snap = m.snapshot()
    pv = snap["stages"]["prove"]
    assert (pv["queue_depth"], pv["max_queue_depth"], pv["queue_capacity"]) == (2, 5, 8)
    assert (pv["items_out"], pv["failures"], pv["mean_batch_size"]) == (5, 1, 3.0)
    assert pv["p50_latency_s"] == 1.0 and pv["p99_latency_s"] == 3.0
    assert snap["jobs"]["p50_s"] == 2.0 and snap["jobs"]["p99_s"] == 10.0
    assert snap["jobs"]["proofs_per_s"] == pytest.approx(0.4)
    write_snapshot(snap, tmp_path)
    assert read_snapshot(tmp_path) == json.loads(json.dumps(snap))
    assert read_snapshot(tmp_path / "none") is None
    assert math.isnan(percentile([], 0.5))


def _record(batch_id="b1"):
    jobs = [JobRecord("j0", canonical_hash([1, 2, 3]), [2], "ab" * 32, True)]
    return BatchRecord(batch_id, 0, "c", "f" * 64, "p1", {"cpu_model": "x"}, "fast", "derived", "00" * 16,
                       {"batch_size": 1}, {"raymarket": "0"}, {"python": "3"}, jobs,
                       inputs_hash([jobs[0].witness_sha256]), 0.1)


def test_provenance_record_roundtrip_and_tamper_detection(tmp_path):
    store = ProvenanceStore(tmp_path)
    rec = _record()
    store.save(rec, [(1, 2, 3)])
    loaded, witnesses = store.load("b1")
    assert loaded == rec and witnesses == [(1, 2, 3)]
    assert store.list_batches() == ["b1"]
    with pytest.raises(BatchNotFound):
        store.load("nope")
    assert canonical_hash({"b": 1, "a": (1, 2)}) == canonical_hash({"a": [1, 2], "b": 1})


def test_proving_key_store_roundtrip(tmp_path, mimc_circuit):
    store = ProvenanceStore(tmp_path)
    spec = mimc_circuit.spec
    assert store.save_key(spec.pk) == spec.pk_hash
    pk = store.load_key(spec.pk_hash)
    assert pk == spec.pk and canonical_hash(pk) == spec.pk_hash


def _job(job_id="j", circuit="c", pk_hash="a" * 64, witness=(1, 5, 6)):
    return ProofJob(job_id, circuit, pk_hash, witness, 0.0, 10.0, 1, "alice")


class _PK:
    n_vars = 3
    n_public = 1


def test_intake_check_names_the_field():
    def sat(w):
        if w[2] != w[1] + 1:
            raise ValueError("constraint 0 not satisfied")

    circuits = {"c": CircuitSpec("c", _PK(), "a" * 64, sat)}
    assert intake_check(_job(), circuits).circuit_id == "c"
    for bad, field, err in [(_job(circuit="zz"), "circuit_id", UnknownCircuit),
                            (_job(pk_hash="b" * 64), "pk_hash", UnknownCircuit),
                            (_job(witness=(1, 2)), "witness", InvalidJob),
                            (_job(witness=(2, 5, 6)), "witness", InvalidJob),
                            (_job(witness=(1, 5, 7)), "witness", InvalidJob)]:
        with pytest.raises(err) as e:
            intake_check(bad, circuits)
        assert e.value.field == field
    assert CircuitSpec("c", _PK(), "a" * 64).public_signals((1, 5, 6)) == [5]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=0, max_size=40))
def test_bisection_finds_exactly_the_bad_items(flags):
    calls = []

    def batch_verify(vk, publics, proofs):
        calls.append(len(proofs))
        if not all(proofs):
            raise ValueError("bad")

    ok = verify_with_bisection(None, [[0]] * len(flags), flags, batch_verify)
    assert ok == flags
    k = flags.count(False)
    if flags and k == 0:
        assert calls == [len(flags)]  # one batched check when everything is valid
    if k:
        assert len(calls) <= 2 * k * (math.ceil(math.log2(len(flags))) + 1) + 1


def test_in_memory_payments_are_idempotent():
    pay = InMemoryPayments()
    j = _job()
    assert pay.pay(j, "p1", "h", "b") is True
    assert pay.pay(j, "p2", "h", "b2") is False
    assert pay.slash(j, "p3", "b", "wrong_result") is True
    assert pay.slash(j, "p3", "b", "wrong_result") is False
    assert pay.paid_job_ids() == ["j"] and pay.slashed() == [("j", "p3")] and pay.duplicate_attempts == 2


def test_bounded_queue_refuses_when_full_and_reports_depth():
    m = PipelineMetrics()
    q = BoundedQueue("verify", 2, m)
    q.put(1)
    q.put(2)
    with pytest.raises(QueueFull) as e:
        q.put(3, timeout_s=0.01)
    assert (e.value.stage, e.value.capacity) == ("verify", 2)
    assert m.snapshot()["stages"]["verify"]["max_queue_depth"] == 2
    assert q.get(0.01) == 1 and q.get_nowait() == 2 and q.get(0.01) is None and len(q) == 0


@given(st.integers(0, 200), st.integers(1, 8), st.integers(1, 6))
def test_chunk_bounds_cover_contiguously(n, parts, min_chunk):
    bounds = chunk_bounds(n, parts, min_chunk)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert len(bounds) <= parts
    sizes = [b - a for a, b in bounds]
    assert max(sizes) - min(sizes) <= 1
    if len(bounds) > 1:
        assert min(sizes) >= min_chunk
