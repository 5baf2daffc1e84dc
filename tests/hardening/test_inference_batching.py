"""Issue 13: "inference jobs on the same model are batched on one worker". A real provider agent (its own Ray
cluster, the packaged MiniLM model) holding several inference leases of one poll runs them in ONE model call on
one worker (``JobWorker.embed_batch``: the sentences concatenated, split back per job); each job keeps its own
result, attestation and upload, and each is paid with the embeddings of its own text. Leases that arrive in later
polls while the worker is busy wait in the agent's queue and are batched together when it frees."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest

from market.client import Client
from market.core.tickets import sentences_from_text
from market.exchange.service import ServiceConfig
from market.settings import Settings
from providers.agent import take_batch
from providers.inference import embed
from tests.providers.harness import AgentProcess, bond, make_keystore, wait_for
from tests.service.harness import ThreadService

TEXTS = [
    b"The quick brown fox jumps over the lazy dog.\nA second sentence of the first job.\n",
    b"Ray schedules tasks on a cluster.\nEmbeddings map sentences to vectors.\nThe third job line.\n",
    b"One more job, a single sentence.\n",
]


@pytest.mark.ray
@pytest.mark.slow
def test_inference_leases_of_one_poll_run_in_one_worker_batch(tmp_path):
    settings = Settings(data_dir=tmp_path / "exchange", settlement_window_s=1.0, max_attempts=3)
    svc = ThreadService(settings, ServiceConfig(lease_s=20.0, round_interval_s=0.5, dev=True)).start()
    # one CPU, three leases held (queue depth 3): the three jobs arrive in one poll and take one worker
    agent = AgentProcess("batcher", svc.url, tmp_path, cpus=1, extra=["--queue-depth", "3", "--warm-up"])
    try:
        agent.start()
        key, _ = make_keystore(tmp_path / "client.keystore.json")
        client = Client(svc.url, key)
        client.faucet(10**18)
        agent.wait_started(600)
        bond(svc.url, agent)
        # one signed request, one transaction: the jobs are matched in the same round (attest-only: one provider
        # cannot have its spot-check sample re-executed by another)
        specs = [{"kind": "inference", "input_b64": base64.b64encode(t).decode(), "max_price_wei": str(10**13),
                  "verification": "attest-only"} for t in TEXTS]
        jobs = [j["job_id"] for j in client.submit_many(specs)]
        done = [client.wait(j, timeout_s=600) for j in jobs]
        assert {d["status"] for d in done} <= {"paid", "settled"}, done
        assert {d["provider"] for d in done} == {"batcher"}

        # each job: its own attested result, the embeddings of its own sentences
        for job_id, text in zip(jobs, TEXTS):
            rows = np.load(io.BytesIO(client.result(job_id)), allow_pickle=False)
            want = embed(sentences_from_text(text))
            assert rows.shape == want.shape == (len(sentences_from_text(text)), 384)
            cos = np.sum(rows * want, axis=1) / (np.linalg.norm(rows, axis=1) * np.linalg.norm(want, axis=1))
            assert float(cos.min()) > 0.9999, (job_id, cos)
        hashes = {client.result_info(j)["result_hash"] for j in jobs}
        assert len(hashes) == 3  # three results, three attestations

        # one worker batch: every job's log names the same batch, the agent's log the one model call on one pid
        batch_ids = set()
        for job_id in jobs:
            logs = "\n".join(client.logs(job_id))
            m = re.search(r"in batch (ib-\S+): 3 jobs, 6 sentences, one model call", logs)
            assert m, logs
            batch_ids.add(m.group(1))
        assert len(batch_ids) == 1
        (batch_id,) = batch_ids
        line = wait_for(lambda: next((ln for ln in agent.log().splitlines() if f"inference batch {batch_id}:" in ln),
                                     None), 30, "the agent's batch line")
        assert "3 jobs, 6 sentences, 1 model call on worker pid" in line and all(j in line for j in jobs), line

        # leases that arrive in later polls while the worker is busy wait in the agent's queue and are batched
        # together when it frees: a long job first, then two short ones submitted one by one while it runs
        def spec(text: bytes) -> dict:
            return {"kind": "inference", "input_b64": base64.b64encode(text).decode(), "max_price_wei": str(10**13),
                    "verification": "attest-only"}

        long_text = "".join(f"A longer job, sentence number {i} of it.\n" for i in range(400)).encode()
        long_job = client.submit(spec(long_text))["job_id"]
        wait_for(lambda: client.status(long_job)["status"] in ("running", "paid", "settled"), 120, "the long job")
        late = [client.submit(spec(t))["job_id"] for t in TEXTS[:2]]
        for j in [long_job, *late]:
            assert client.wait(j, timeout_s=600)["status"] in ("paid", "settled")
        late_logs = ["\n".join(client.logs(j)) for j in late]
        m = [re.search(r"in batch (ib-\S+): 2 jobs, 5 sentences", lg) for lg in late_logs]
        assert all(m) and m[0].group(1) == m[1].group(1), late_logs
        for job_id, text in zip(late, TEXTS[:2]):
            rows = np.load(io.BytesIO(client.result(job_id)), allow_pickle=False)
            assert rows.shape == (len(sentences_from_text(text)), 384)
        assert agent.terminate() == 0
        stats = agent.log().splitlines()[-1]
        assert "'inference_batches': 2" in stats and "'batched_jobs': 5" in stats, stats
    finally:
        agent.cleanup()
        svc.stop()


def test_a_batch_never_exceeds_its_sentence_bound():
    """The batching rule: the starting lease, then the waiting ones in order while their sentences fit the bound;
    a lease over the bound runs alone."""
    assert take_batch([2, 2, 3, 5, 1], 0, 4) == [0, 1]
    assert take_batch([2, 2, 3, 5, 1], 2, 4) == [2, 4]
    assert take_batch([1, 1, 1], 1, 256) == [1, 0, 2]
    assert take_batch([300, 1, 1], 0, 256) == [0]
    assert take_batch([300, 1, 1], 1, 256) == [1, 2]
