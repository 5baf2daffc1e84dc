"""Settler + watcher against real chains: batching, hooks, reorgs (anvil_reorg) and exactly-once restarts."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from eth_account import Account
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.bindings import SettlementContract
from contracts.chain import Chain, connect
from market.db.base import Base, make_engine
from market.settlement.batching import BatchingPolicy, Settler, batch_id_for, inclusion, leaf_from_record, unhex
from market.settlement.models import SETTLEMENT_TABLES, AppliedEvent, BatchRecord, BatchStatus, LeafRecord
from market.settlement.watcher import Watcher, WatcherConfig, WatcherHooks
from contracts.attestation import AttestationLeaf, SignedAttestation, sign_attestation
from tests.settlement.helpers import random_attestation, signed_leaf


def make_db(url: str):
    engine = make_engine(url)
    Base.metadata.create_all(engine, tables=SETTLEMENT_TABLES)
    return engine


class Recorder:
    """Hooks that count what the watcher told the exchange/ledger."""

    def __init__(self) -> None:
        self.net_settled: Counter[str] = Counter()
        self.jobs: dict[str, list[str]] = {}
        self.challenged: list[tuple[str, str, str]] = []
        self.finalized: list[str] = []

    def hooks(self) -> WatcherHooks:
        return WatcherHooks().register(
            on_batch_settled=self._settled, on_batch_reverted=self._reverted,
            on_leaf_challenged=lambda s, job, provider, reason: self.challenged.append((job, provider, reason)),
            on_batch_finalized=lambda s, batch_id, jobs: self.finalized.append(batch_id))

    def _settled(self, s, batch_id, jobs):
        self.net_settled[batch_id] += 1
        self.jobs[batch_id] = jobs

    def _reverted(self, s, batch_id, jobs):
        self.net_settled[batch_id] -= 1


def setup_settlement(chain: Chain, window_blocks: int = 50) -> tuple[SettlementContract, str, str]:
    owner, operator = chain.dev_keys[-1], chain.dev_keys[-2]
    settlement = SettlementContract.deploy(chain, owner, challenge_window_blocks=window_blocks)
    settlement.set_operator(owner, Account.from_key(operator).address)
    return settlement, owner, operator


def test_settler_batches_by_size_and_window_and_watcher_reports_jobs(tmp_path) -> None:
    chain = connect(None)
    settlement, owner, operator = setup_settlement(chain, window_blocks=3)
    start = chain.block_number()
    engine = make_db(f"sqlite:///{tmp_path / 'db.sqlite'}")
    settler = Settler(engine, settlement, operator, BatchingPolicy(max_batch_size=10, window_s=100.0))
    provider_key = "0x" + bytes(Account.create().key).hex()
    leaves = [signed_leaf(provider_key, settlement.domain) for _ in range(26)]
    for i, leaf in enumerate(leaves[:23]):  # 23 in window 10 (t = 1000..1022), 3 in window 11
        settler.add(leaf, job_ref=f"job-{i}", added_at_s=1000.0 + i)
    for i, leaf in enumerate(leaves[23:], start=23):
        settler.add(leaf, job_ref=f"job-{i}", added_at_s=1100.0 + i)
    assert settler.add(leaves[0], job_ref="job-0", added_at_s=5.0)  # idempotent re-add
    sent = settler.flush(now_s=1050.0)  # window 10 still open: only the two full batches close
    assert len(sent) == 2
    sent += settler.flush(now_s=1100.0)  # window 10 ends: its last 3 close; window 11 still open
    sent += settler.flush(now_s=1200.0)
    assert len(sent) == 4
    assert sent[0] == "0x" + batch_id_for(settlement.address, 10, 0).hex()
    recorder = Recorder()
    watcher = Watcher(settlement, engine, WatcherConfig(from_block=start, confirmations=0), recorder.hooks())
    events = watcher.poll_once()
    assert [e.event for e in events] == ["BatchSubmitted"] * 4
    assert sorted(len(j) for j in recorder.jobs.values()) == [3, 3, 10, 10]
    assert recorder.jobs[sent[0]] == [f"job-{i}" for i in range(10)]
    with Session(engine) as s:
        assert {b.status for b in s.scalars(select(BatchRecord))} == {BatchStatus.ONCHAIN.value}
        for i in (0, 9, 17, 25):  # inclusion from the DB verifies on chain
            inc = inclusion(s, f"job-{i}")
            assert settlement.verify_inclusion(unhex(inc.batch.batch_id), leaf_from_record(inc.leaf), inc.proof)
    assert watcher.poll_once() == []  # nothing new, nothing applied twice
    # a resubmission after a "crash" (status back to built) is idempotent on chain
    with Session(engine) as s, s.begin():
        s.get(BatchRecord, sent[0]).status = BatchStatus.BUILT.value
    assert settler.submit_pending() == [sent[0]]
    assert watcher.poll_once() == []
    # challenge + finalise flow through the hooks
    chain.mine(4)
    for b in sent:
        settlement.finalize_batch(owner, unhex(b))
    watcher.poll_once()
    assert sorted(recorder.finalized) == sorted(sent)
    with Session(engine) as s:
        assert {b.status for b in s.scalars(select(BatchRecord))} == {BatchStatus.FINALIZED.value}


def test_watcher_reports_a_challenge_for_the_exchange_job(tmp_path) -> None:
    chain = connect(None)
    settlement, owner, operator = setup_settlement(chain)
    start = chain.block_number()
    engine = make_db(f"sqlite:///{tmp_path / 'db.sqlite'}")
    settler = Settler(engine, settlement, operator, BatchingPolicy(max_batch_size=2, window_s=10.0))
    provider = "0x" + bytes(Account.create().key).hex()
    forger = "0x" + bytes(Account.create().key).hex()
    att = random_attestation(Account.from_key(provider).address)
    forged = sign_attestation(random_attestation(Account.from_key(forger).address), forger, settlement.domain)
    bad = AttestationLeaf(SignedAttestation(att, forged.signature, settlement.domain))
    settler.add(bad, job_ref="bad-job", added_at_s=1.0)
    settler.add(signed_leaf(provider, settlement.domain), job_ref="good-job", added_at_s=2.0)
    (batch_id,) = settler.flush(now_s=3.0)
    with Session(engine) as s:
        proof = inclusion(s, "bad-job").proof
    settlement.challenge_signature(chain.dev_keys[-3], unhex(batch_id), bad, proof)
    recorder = Recorder()
    Watcher(settlement, engine, WatcherConfig(from_block=start, confirmations=0), recorder.hooks()).poll_once()
    assert recorder.challenged == [("bad-job", att.provider, "bad_signature")]
    with Session(engine) as s:
        assert s.get(LeafRecord, "0x" + att.job_id.hex()).challenge_reason == 1
        assert s.get(BatchRecord, batch_id).challenged_count == 1


def canonical_events(settlement: SettlementContract, start: int) -> set[tuple[str, str, int]]:
    """(block hash, tx hash, log index) of every watched event on the canonical chain."""
    from eth_utils import event_abi_to_log_topic

    topics = {bytes(event_abi_to_log_topic(a)) for a in settlement.artifact.abi
              if a["type"] == "event" and a["name"] in ("BatchSubmitted", "LeafChallenged", "BatchFinalized")}
    logs = settlement.chain.w3.eth.get_logs({"address": settlement.address, "fromBlock": start, "toBlock": "latest"})
    return {("0x" + bytes(l["blockHash"]).hex(), "0x" + bytes(l["transactionHash"]).hex(), l["logIndex"])
            for l in logs if bytes(l["topics"][0]) in topics}


def assert_db_matches_chain(engine, settlement: SettlementContract, start: int, recorder: Recorder) -> None:
    with Session(engine) as s:
        applied = {(e.block_hash, e.tx_hash, e.log_index) for e in s.scalars(select(AppliedEvent))}
        assert applied == canonical_events(settlement, start)
        for b in s.scalars(select(BatchRecord)):
            onchain = settlement.get_batch(unhex(b.batch_id))
            if b.status in (BatchStatus.ONCHAIN.value, BatchStatus.EXTERNAL.value):
                assert onchain.exists and "0x" + onchain.root.hex() == b.root
                block = settlement.chain.w3.eth.get_block(b.block_number)
                assert "0x" + bytes(block["hash"]).hex() == b.block_hash
                assert recorder.net_settled[b.batch_id] == 1
            else:
                assert b.status == BatchStatus.BUILT.value and not onchain.exists
                assert recorder.net_settled[b.batch_id] == 0


@pytest.mark.anvil
@pytest.mark.postgres
def test_reorgs_of_depth_1_to_5_leave_the_database_equal_to_the_canonical_chain(anvil, pg_url) -> None:
    chain = connect(anvil.rpc_url, dev_keys=tuple(anvil.dev_keys))
    settlement, owner, operator = setup_settlement(chain)
    operator_addr = Account.from_key(operator).address
    start = chain.block_number()
    engine = make_db(pg_url)
    settler = Settler(engine, settlement, operator, BatchingPolicy(max_batch_size=3, window_s=1.0))
    recorder = Recorder()
    watcher = Watcher(settlement, engine, WatcherConfig(from_block=start, confirmations=0), recorder.hooks())
    provider = "0x" + bytes(Account.create().key).hex()
    t = 0.0
    for depth in range(1, 6):
        for _ in range(depth + 1):  # depth + 1 batches, one per block
            t += 1.0
            for _ in range(3):
                settler.add(signed_leaf(provider, settlement.domain), added_at_s=t)
        settler.flush(now_s=t + 1.0)
        watcher.poll_once()
        assert_db_matches_chain(engine, settlement, start, recorder)
        # the fork re-mines `depth` blocks: the first holds an unrelated batch from the same operator
        fork_block = chain.block_number() - depth
        nonce = chain.w3.eth.get_transaction_count(operator_addr, fork_block)
        tx = {"to": settlement.address, "data": settlement.encode("submitBatch", os.urandom(32), os.urandom(32), 1, 7),
              "gas": 200_000, "nonce": nonce, "chainId": chain.chain_id, **chain.fees(refresh=True)}
        raw = Account.from_key(operator).sign_transaction(tx).raw_transaction
        chain.w3.provider.make_request("anvil_reorg", [depth, [["0x" + bytes(raw).hex(), 0]]])
        events = watcher.poll_once()
        reverted = [e for e in events if e.action == "reverted"]
        assert len(reverted) == depth and all(e.event == "BatchSubmitted" for e in reverted)
        assert_db_matches_chain(engine, settlement, start, recorder)  # dropped batches are back to built
        settler.submit_pending()  # the settler resubmits them: same ids, same roots
        watcher.poll_once()
        assert_db_matches_chain(engine, settlement, start, recorder)
        with Session(engine) as s:
            assert {b.status for b in s.scalars(select(BatchRecord))} <= {BatchStatus.ONCHAIN.value,
                                                                           BatchStatus.EXTERNAL.value}


@pytest.mark.anvil
@pytest.mark.postgres
def test_confirmations_hold_back_events_until_they_are_deep_enough(anvil, pg_url) -> None:
    chain = connect(anvil.rpc_url, dev_keys=tuple(anvil.dev_keys))
    settlement, owner, operator = setup_settlement(chain)
    start = chain.block_number()
    engine = make_db(pg_url)
    settler = Settler(engine, settlement, operator, BatchingPolicy(max_batch_size=1, window_s=1.0))
    settler.add(signed_leaf("0x" + bytes(Account.create().key).hex(), settlement.domain), added_at_s=0.5)
    settler.flush(now_s=2.0)
    watcher = Watcher(settlement, engine, WatcherConfig(from_block=start, confirmations=3))
    assert watcher.poll_once() == []
    chain.mine(2)
    assert watcher.poll_once() == []
    chain.mine(1)
    assert [e.event for e in watcher.poll_once()] == ["BatchSubmitted"]


@pytest.mark.anvil
@pytest.mark.postgres
def test_watcher_killed_mid_stream_and_restarted_applies_every_event_exactly_once(anvil, pg_url) -> None:
    import json
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from sqlalchemy import text

    from tests.settlement.hook_counter import CREATE_TABLE

    chain = connect(anvil.rpc_url, dev_keys=tuple(anvil.dev_keys))
    settlement, owner, operator = setup_settlement(chain)
    start = chain.block_number() + 1
    engine = make_db(pg_url)
    with engine.begin() as conn:
        conn.execute(text(CREATE_TABLE))
    settler = Settler(engine, settlement, operator, BatchingPolicy(max_batch_size=1, window_s=1.0))
    provider = "0x" + bytes(Account.create().key).hex()
    for i in range(12):
        settler.add(signed_leaf(provider, settlement.domain), job_ref=f"j{i}", added_at_s=0.5)
    batch_ids = settler.flush(now_s=1.0)
    assert len(batch_ids) == 12
    repo = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "market.cli.settlement", "watch", "--rpc-url", anvil.rpc_url,
           "--contract", settlement.address, "--database-url", pg_url, "--from-block", str(start),
           "--confirmations", "0", "--json", "--max-blocks-per-poll", "1", "--poll-interval-s", "0.1",
           "--hooks", "tests.settlement.hook_counter:register"]
    env = dict(os.environ, PYTHONPATH=str(repo), RM_TEST_HOOK_DELAY_S="0.3")
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first = [json.loads(proc.stdout.readline()) for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-stream: possibly inside a chunk's transaction
        proc.wait(10)
    assert all(e["event"] == "BatchSubmitted" and e["action"] == "applied" for e in first)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM test_hook_calls")).scalar()
    assert 3 <= before < 12  # killed mid-stream
    done = subprocess.run(cmd + ["--once"], cwd=repo, env=dict(env, RM_TEST_HOOK_DELAY_S="0"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    resumed = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(resumed) == 12 - before  # resumed from the checkpoint, nothing replayed
    with engine.connect() as conn:
        calls = Counter(r[0] for r in conn.execute(text("SELECT batch_id FROM test_hook_calls")))
    assert calls == Counter({b: 1 for b in batch_ids})
    with Session(engine) as s:
        applied = {(e.block_hash, e.tx_hash, e.log_index) for e in s.scalars(select(AppliedEvent))}
    assert applied == canonical_events(settlement, start)


@pytest.mark.anvil
@pytest.mark.postgres
def test_batch_dropped_by_a_reorg_before_confirmation_is_resubmitted(anvil, pg_url) -> None:
    chain = connect(anvil.rpc_url, dev_keys=tuple(anvil.dev_keys))
    settlement, _owner, operator = setup_settlement(chain)
    engine = make_db(pg_url)
    settler = Settler(engine, settlement, operator, BatchingPolicy(max_batch_size=2, window_s=1.0))
    provider = "0x" + bytes(Account.create().key).hex()
    for _ in range(2):
        settler.add(signed_leaf(provider, settlement.domain), added_at_s=0.5)
    (batch_id,) = settler.flush(now_s=1.0)
    with Session(engine) as s:
        assert s.get(BatchRecord, batch_id).status == BatchStatus.SENT.value
    chain.w3.provider.make_request("anvil_reorg", [1, []])  # drops the submission; no watcher saw it
    assert not settlement.get_batch(unhex(batch_id)).exists
    assert settler.submit_pending() == [batch_id]  # reconciled to built, then sent again
    assert settlement.get_batch(unhex(batch_id)).exists
    assert settler.submit_pending() == []
