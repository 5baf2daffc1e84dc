"""TEST ONLY: the real provider agent (``providers.agent.main``), able to return wrong results on request.

``python -m tests.chaos.liar_agent <agent options>`` runs the unchanged agent with wrappers around
``providers.jobs.WorkerPool.run`` and ``run_inference_batch`` (several inference leases in one call) in this process: while the control file ``<data_dir>/chaos-lie`` holds a
count N > 0, the next N results are falsified after the worker computed them, then signed and uploaded by
the agent as usual (a provider that lies under its own key). Proofs: ``pi_a`` replaced by the G1 generator
(a well-formed proof that does not verify). Embeddings: random unit rows of the right shape (only a spot
re-execution can catch those). Each lie is appended to ``<data_dir>/chaos-lies.jsonl`` (job id, kind), so the
chaos checks know which uploads were false. Nothing here is reachable from the production agent: it lives
under ``tests/`` and is started only by the chaos harness.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import providers.agent as agent
from providers.jobs import WorkerPool

LIE_FILE = "chaos-lie"
LIES_LOG = "chaos-lies.jsonl"
_lock = threading.Lock()


def _data_dir(argv: list[str]) -> Path:
    for i, arg in enumerate(argv):
        if arg == "--data-dir":
            return Path(argv[i + 1])
        if arg.startswith("--data-dir="):
            return Path(arg.split("=", 1)[1])
    raise SystemExit("liar_agent: --data-dir is required")


def _take_lie(data_dir: Path) -> bool:
    """Consume one lie from the control file (False when it is absent or 0)."""
    path = data_dir / LIE_FILE
    with _lock:
        try:
            left = int(path.read_text().strip() or 0)
        except (OSError, ValueError):
            return False
        if left <= 0:
            path.unlink(missing_ok=True)
            return False
        if left == 1:
            path.unlink(missing_ok=True)
        else:
            path.write_text(str(left - 1))
        return True


def falsify(kind: str, result: bytes, seed: int = 0) -> bytes:
    """A wrong result of the same shape as ``result`` (see the module docstring)."""
    if kind == "proof":
        obj = json.loads(result)
        obj["proof"]["pi_a"] = ["1", "2", "1"]
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    rows = np.load(io.BytesIO(result), allow_pickle=False)
    fake = np.random.default_rng(seed).normal(size=rows.shape).astype(np.float32)
    fake /= np.linalg.norm(fake, axis=1, keepdims=True)
    buf = io.BytesIO()
    np.save(buf, fake, allow_pickle=False)
    return buf.getvalue()


def install(data_dir: Path) -> None:
    """Wrap ``WorkerPool.run`` in this process (see the module docstring)."""
    honest = WorkerPool.run

    def run(self: Any, job: Any, timeout_s: float) -> bytes:
        out = honest(self, job, timeout_s)
        if job.input_hash == bytes(32):  # a speed challenge or the agent's challenge-key warm-up: not a market job
            return out
        if not _take_lie(data_dir):
            return out
        with _lock, open(data_dir / LIES_LOG, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"job_id": job.job_id, "lease_id": job.lease_id, "kind": job.kind,
                                 "at": time.time()}) + "\n")
        return falsify(job.kind, out, seed=len(out))

    WorkerPool.run = run  # type: ignore[method-assign]
    honest_batch = WorkerPool.run_inference_batch

    def run_inference_batch(self: Any, jobs: list[Any], timeout_s: float) -> tuple[list[bytes], dict[str, Any]]:
        """The agent's inference batches (several leases, one model call): a lie goes to one job of the batch."""
        outs, info = honest_batch(self, jobs, timeout_s)
        for i, job in enumerate(jobs):
            if _take_lie(data_dir):
                with _lock, open(data_dir / LIES_LOG, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"job_id": job.job_id, "lease_id": job.lease_id, "kind": job.kind,
                                         "at": time.time()}) + "\n")
                outs[i] = falsify(job.kind, outs[i], seed=len(outs[i]))
        return outs, info

    WorkerPool.run_inference_batch = run_inference_batch  # type: ignore[method-assign]


if __name__ == "__main__":
    install(_data_dir(sys.argv[1:]))
    sys.exit(agent.main(sys.argv[1:]))
