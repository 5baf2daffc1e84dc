"""Proof batches through the real service (issue 13): the round's proof leases of one provider on one circuit key
form a batch, its uploads are batch-verified with a faulty proof isolated, its provenance is stored, ``raymarket
replay pb-...`` re-verifies it (and catches a tampered stored proof), and the stage metrics are in ``/metrics``,
``GET /v1/pipeline/stats`` and ``raymarket pipeline stats``; migration 0010 upgrades and downgrades."""

from __future__ import annotations

import json
import time

import httpx
import typer
from sqlalchemy import create_engine, inspect, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from market.cli.pipeline import pipeline_app
from market.cli.replay import replay
from market.db import migrate
from market.db.models import ProofBatch, ProofBatchJob
from tests.service.conftest import ROUNDS
from tests.service.harness import Heartbeats, attest, run_lease

OTHER_ROUNDS = ROUNDS + 1  # a second registered circuit (the MiMC-7 example at another round count)


def _leases(pc, name, n, held, timeout_s=90):
    """``n`` leases for ``name``; their jobs go into ``held`` (heartbeated by the caller's ``Heartbeats``). A job
    the round gave the other provider (who never polls) comes back after that lease expires."""
    got, deadline = [], time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        new = pc.poll(name, max_leases=n - len(got), wait_s=2)
        held.extend(ls["job_id"] for ls in new)
        got += new
    assert len(got) == n, got
    return got


def _wrong_proof(lease, keys_dir):
    """A valid proof of another statement presented with this lease's public signal: provably wrong."""
    other = run_lease(dict(lease, ticket=dict(lease["ticket"], preimage="999")), keys_dir)
    proof = json.loads(other)
    proof["public"] = json.loads(run_lease(lease, keys_dir))["public"]
    return json.dumps(proof, separators=(",", ":"), sort_keys=True).encode()


def _cli(*args):
    app = typer.Typer()
    app.command("replay")(replay)
    app.add_typer(pipeline_app)
    return CliRunner().invoke(app, list(args))


def test_batches_per_circuit_isolation_replay_and_metrics(service, parties, keys_dir):
    client, provs = parties
    jobs = {client.submit_proof(200 + i, rounds=r, max_price_wei=10**15)["job_id"]: r
            for i, r in enumerate((ROUNDS, ROUNDS, OTHER_ROUNDS, OTHER_ROUNDS))}
    pc, key = provs["p1"]
    held: list[str] = []
    with Heartbeats(pc, "p1", held):
        leases = _leases(pc, "p1", 4, held)
        assert all(ls["batch_id"].startswith("pb-") for ls in leases), leases
        by_batch: dict[str, set[int]] = {}
        for ls in leases:
            by_batch.setdefault(ls["batch_id"], set()).add(jobs[ls["job_id"]])
        assert all(len(rounds) == 1 for rounds in by_batch.values()), by_batch  # two circuits never share a batch
        bad = next(ls for ls in leases if jobs[ls["job_id"]] == ROUNDS)
        uploads = []
        for ls in leases:
            result = _wrong_proof(ls, keys_dir) if ls is bad else run_lease(ls, keys_dir)
            h, sig = attest(ls, key, result)
            uploads.append({"lease": ls, "result": result, "result_hash": h, "signature": sig, "logs": []})
        answers = pc.complete_many(uploads)
    status = {ls["job_id"]: a["status"] for ls, a in zip(leases, answers)}
    assert status[bad["job_id"]] == "rejected" and answers[leases.index(bad)]["reason"].startswith("proof rejected")
    assert sorted(status.values()) == ["paid", "paid", "paid", "rejected"], answers  # only the faulty one

    url = service.runtime.settings.resolved_database_url
    engine = create_engine(url)
    try:
        with Session(engine) as s:
            batches = {b.batch_id: b for b in s.scalars(select(ProofBatch))}
            delivered = {ls["lease_id"] for ls in leases}
            members = [m for m in s.scalars(select(ProofBatchJob)) if m.lease_id in delivered]
            assert len(members) == 4 and set(by_batch) <= set(batches)
            for m in members:
                b = batches[m.batch_id]
                assert b.provider == "p1" and b.pk_sha256 == b.circuit_id and b.vk_sha256 and b.code.get("git_commit")
                assert m.verdict == ("rejected" if m.job_id == bad["job_id"] else "ok"), (m.job_id, m.verdict)
                assert m.proof_sha256 and m.publics_sha256 and m.result_hash and m.delivered_at and m.verified_at
                assert m.verify_group == 2  # the proofs of one circuit were checked together
            bad_member = next(m for m in members if m.job_id == bad["job_id"])
            assert "PairingCheckFailed" in bad_member.reason
            bad_batch = batches[bad_member.batch_id]
            assert bad_batch.n_rejected == 1 and bad_batch.verify_checks >= 3  # the group check, then bisection
            assert all(b.verified_at for b in batches.values() if b.batch_id in by_batch)
            good = next(m for m in members if m.verdict == "ok")

        # replay: every batch matches its record (the rejected proof is still rejected)
        for bid in by_batch:
            res = _cli("replay", bid, "--database-url", url, "--json")
            assert res.exit_code == 0, res.output
            rep = json.loads(res.output)
            assert rep["outputs_match"] and rep["mode"] == "reverify" and rep["vk_matches"] and rep["record_matches"]
        res = _cli("pipeline", "replay", bad_member.batch_id, "--database-url", url)
        assert res.exit_code == 0 and "MATCH" in res.output, res.output
        assert _cli("replay", "pb-nosuchbatch", "--database-url", url).exit_code == 4

        # a tampered stored proof: replay reports the mismatch (exit 1)
        with Session(engine) as s, s.begin():
            stored = s.get(ProofBatchJob, good.lease_id).result
            obj = json.loads(stored)
            obj["proof"]["pi_a"][0] = str(int(obj["proof"]["pi_a"][0]) + 1)
            s.execute(update(ProofBatchJob).where(ProofBatchJob.lease_id == good.lease_id)
                      .values(result=json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()))
        res = _cli("replay", good.batch_id, "--database-url", url, "--json")
        assert res.exit_code == 1, res.output
        rep = json.loads(res.stdout)
        assert rep["mismatches"] == [good.job_id] and not rep["outputs_match"]
        job = next(j for j in rep["jobs"] if j["job_id"] == good.job_id)
        assert job["checks"]["result_hash"] is False and job["replay_verdict"] == "rejected"
    finally:
        engine.dispose()

    # stage metrics: /metrics, GET /v1/pipeline/stats and `raymarket pipeline stats`
    body = httpx.get(service.url + "/metrics", timeout=30).text
    for stage in ("queue_match", "dispatch", "prove", "verify", "pay"):
        assert f'raymarket_pipeline_stage_seconds_count{{stage="{stage}"}}' in body, stage
    assert "raymarket_pipeline_proofs_verified_total 3.0" in body
    assert "raymarket_pipeline_proofs_rejected_total 1.0" in body
    assert "raymarket_pipeline_batch_size_count" in body and "raymarket_pipeline_proofs_per_second" in body
    snap = httpx.get(service.url + "/v1/pipeline/stats", timeout=30).json()
    assert snap["source"] == "exchange" and snap["stage_order"] == ["queue_match", "dispatch", "prove", "verify", "pay"]
    assert snap["stages"]["verify"]["items_out"] == 3 and snap["stages"]["verify"]["failures"] == 1
    assert snap["stages"]["pay"]["items_out"] == 3 and snap["stages"]["prove"]["p50_latency_s"] is not None
    assert snap["counters"]["completed"] == 3 and snap["counters"]["bad_proofs"] == 1
    assert snap["recorded"]["ok"] == 3 and snap["recorded"]["rejected"] == 1
    res = _cli("pipeline", "stats", "--exchange", service.url, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["counters"]["completed"] == 3
    res = _cli("pipeline", "stats", "--exchange", service.url)
    assert res.exit_code == 0 and "exchange proving pipeline stages" in res.output, res.output


def test_single_upload_is_recorded_as_checked_alone(service, parties, keys_dir):
    client, provs = parties
    client.submit_proof(300, rounds=ROUNDS, max_price_wei=10**15)
    pc, key = provs["p1"]
    held: list[str] = []
    with Heartbeats(pc, "p1", held):
        (ls,) = _leases(pc, "p1", 1, held)
        result = run_lease(ls, keys_dir)
        h, sig = attest(ls, key, result)
        assert pc.complete(ls, result=result, result_hash=h, signature=sig)["status"] == "paid"
    engine = create_engine(service.runtime.settings.resolved_database_url)
    try:
        with Session(engine) as s:
            m = s.get(ProofBatchJob, ls["lease_id"])
            assert (m.batch_id, m.verdict, m.verify_group, m.verify_checks) == (ls["batch_id"], "ok", 1, 1)
            assert m.verify_s is not None and m.verify_s > 0
    finally:
        engine.dispose()


def test_migration_0010_upgrades_and_downgrades(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        assert {"proof_batches", "proof_batch_jobs"} <= set(inspect(engine).get_table_names())
        migrate.downgrade(url, "0009_job_verifying")
        assert not {"proof_batches", "proof_batch_jobs"} & set(inspect(engine).get_table_names())
        assert migrate.current(url) == "0009_job_verifying"
        migrate.upgrade(url)
        assert {"proof_batches", "proof_batch_jobs"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
