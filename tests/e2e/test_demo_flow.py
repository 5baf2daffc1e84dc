"""End to end: the demo flow on real components.

* a real multi-node Ray cluster (head + provider nodes p1..p3, separate raylets),
* a real Postgres server and a real anvil node (both started by the test session),
* and the same flow on the embedded defaults (SQLite file, in-process EVM).

Checked: every job reaches ``settled``; balances add up (sum of balances = deposits, no
invariant violation); the on-chain root of each batch is the Merkle root of its attestation
leaves; each attestation's signer is the provider that ran the job, on that provider's node.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from market import ledger
from contracts.attestation import Attestation, JobKind, job_id_bytes32, recover_signer
from market.settings import Settings
from market.exchange.demo import demo_text_path, run_demo
from market.db.models import JobRecord, ProviderRecord
from contracts.merkle import merkle_root
from market.settlement.models import LeafRecord

pytestmark = [pytest.mark.ray, pytest.mark.slow]

PROOF_ROUNDS = 10  # small circuit: the flow, not the prover's speed, is under test here


def _short_text(tmp_path: Path, n: int = 40) -> Path:
    lines = demo_text_path().read_text(encoding="utf-8").splitlines()[:n]
    path = tmp_path / "input.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _check_settled_flow(runner, report) -> None:
    jobs = {j["job_id"]: j for j in report["jobs"]}
    assert {j["kind"] for j in jobs.values()} == {"inference", "proof"}
    assert all(j["status"] == "settled" for j in jobs.values()), jobs
    assert report["ledger"]["balanced"] and report["ledger"]["invariant_violations"] == []

    with Session(runner.engine) as s:
        assert ledger.check_invariants(s) == []
        balances = ledger.balances(s)
        assert sum(v for k, v in balances.items() if k != ledger.WORLD_ACCOUNT) == -balances[ledger.WORLD_ACCOUNT]
        fee_total = 0
        for job in s.scalars(select(JobRecord)):
            prov = s.get(ProviderRecord, job.provider)
            att = job.attestation
            # the provider that ran the job signed its attestation, on its own node
            rebuilt = Attestation(job_id=job_id_bytes32(job.job_id), input_hash=bytes.fromhex(job.input_hash[2:]),
                                  result_hash=bytes.fromhex(att["result_hash"][2:]), provider=prov.address,
                                  price_wei=int(job.cleared_price_wei),
                                  kind=JobKind.INFERENCE if job.kind == "inference" else JobKind.PROOF)
            assert recover_signer(rebuilt, bytes.fromhex(att["signature"][2:]), runner.contract.domain) == prov.address
            assert att["node_id"] == prov.node_id
            assert job.cleared_price_wei <= job.max_price_wei
            fee_total += int(job.cleared_price_wei) * runner.settings.fee_bps // 10_000
            if job.kind == "inference":
                emb = np.load(job.result_path)
                assert emb.dtype == np.float32 and emb.shape == (job.spec["params"]["n_sentences"], 384)
        assert balances[ledger.PROTOCOL_FEE_ACCOUNT] == fee_total
        # each batch's on-chain root is the Merkle root of its leaves
        batch_ids = {j.batch_id for j in s.scalars(select(JobRecord))}
        for batch_id in batch_ids:
            leaves = s.scalars(select(LeafRecord).where(LeafRecord.batch_id == batch_id)
                               .order_by(LeafRecord.leaf_index)).all()
            root = merkle_root([bytes.fromhex(leaf.leaf_hash[2:]) for leaf in leaves])
            onchain = runner.contract.get_batch(bytes.fromhex(batch_id[2:]))
            assert onchain.root == root
            assert onchain.leaf_count == len(leaves)


def test_demo_flow_on_postgres_anvil_and_ray(ray_cluster, pg_url, anvil, tmp_path):
    settings = Settings(database_url=pg_url, rpc_url=anvil.rpc_url, data_dir=tmp_path / "data", job_timeout_s=300)
    seen = {}
    report = run_demo(settings, text_path=_short_text(tmp_path), proof_rounds=PROOF_ROUNDS, proof_jobs=2,
                      progress=lambda m: None, inspect=lambda runner, rep: seen.setdefault("ok", _check_settled_flow(runner, rep) or True))
    assert seen.get("ok")
    assert report["chain"] == "rpc" and len(report["jobs"]) == 3
    # the jobs ran on the provider nodes of the cluster, not on the head
    providers = {j["provider"] for j in report["jobs"]}
    assert providers <= set(ray_cluster.providers)


def test_demo_flow_on_embedded_defaults(ray_cluster, tmp_path, monkeypatch):
    monkeypatch.delenv("RAYMARKET_DATABASE_URL", raising=False)
    settings = Settings(data_dir=tmp_path / "data", job_timeout_s=300)
    assert settings.resolved_database_url.startswith("sqlite:///")
    seen = {}
    report = run_demo(settings, text_path=_short_text(tmp_path, 25), proof_rounds=PROOF_ROUNDS, proof_jobs=1,
                      progress=lambda m: None, inspect=lambda runner, rep: seen.setdefault("ok", _check_settled_flow(runner, rep) or True))
    assert seen.get("ok")
    assert report["chain"] == "in-process"
    assert (tmp_path / "data" / "ledger.db").exists()
