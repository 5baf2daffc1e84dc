"""The verify stage: merge proved batches, batch-verify them, isolate the bad proofs, record provenance.

Runs in the pipeline's ``verify`` thread: ``[verify q] -> merge proved batches of one circuit up
to verify_batch_max within verify_window_s (level 2 of the batching hierarchy) -> one RLC batch
check, bisection on failure (:func:`~market.pipeline.stages.find_invalid_proofs`), in parallel
chunks on the verifier actors when there are any -> [pay q]``: a :class:`~market.pipeline.stages.VerifiedJob`
for each good proof, a :class:`Slash` for each bad one (its provider is slashed and the job
re-auctioned by the pay stage). Every proved batch gets its provenance record.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayError

from market.pipeline.batching import ProofJob
from market.pipeline.dispatch import Proved
from market.pipeline.provenance import BatchRecord, JobRecord, canonical_hash, code_version, inputs_hash
from market.pipeline.state import TICK_S, StageContext
from market.pipeline.stages import CircuitSpec, VerifiedJob, chunk_bounds, find_invalid_proofs
from market.pipeline.workers import ProviderPool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Slash:
    """A job whose proof failed verification: ``provider`` is to be slashed, the job re-auctioned."""

    job: ProofJob
    provider: str
    batch_id: str


def padded(p: Proved) -> list[Any]:
    """The worker's proofs, one per job: missing ones are None (then invalid, and slashed)."""
    proofs = list(p.result.proofs)[: p.batch.size]
    return proofs + [None] * (p.batch.size - len(proofs))


def each_invalid(spec: CircuitSpec, publics: Sequence[Sequence[int]], proofs: Sequence[Any]) -> list[str | None]:
    """Check proofs one by one: per proof, why it is invalid (None when valid)."""
    out: list[str | None] = []
    for x, proof in zip(publics, proofs):
        try:
            bad = find_invalid_proofs(spec.pk.vk, [x], [proof])
            out.append(bad[0] if bad else None)
        except Exception as exc:  # noqa: BLE001
            out.append(f"{type(exc).__name__}: {exc}")
    return out


class VerifyStage:
    """Batched verification and provenance (one loop, :meth:`run`).

    Args:
        ctx: the pipeline's wiring.
        pool: where the verifier actors are (none: verify in this thread).
    """

    def __init__(self, ctx: StageContext, pool: ProviderPool) -> None:
        self.ctx = ctx
        self.pool = pool

    def run(self) -> None:
        """Until stop: gather a verification batch, verify it per circuit."""
        ctx, s = self.ctx, self.ctx.settings
        while not ctx.stop.is_set():
            first = ctx.verify_q.get(TICK_S * 4)
            if first is None:
                continue
            group = [first]
            end = time.monotonic() + s.verify_window_s
            while sum(p.batch.size for p in group) < s.verify_batch_max:
                nxt = ctx.verify_q.get(max(0.0, end - time.monotonic()))
                if nxt is None:
                    break
                group.append(nxt)
            by_circuit: dict[str, list[Proved]] = collections.defaultdict(list)
            for p in group:
                by_circuit[p.batch.key.circuit_id].append(p)
            for cid, items in by_circuit.items():
                self.verify_group(ctx.circuits[cid], items)

    def verify_group(self, spec: CircuitSpec, items: list[Proved]) -> None:
        """Verify the proved batches ``items`` of ``spec`` as one batch; queue payments and slashes."""
        ctx = self.ctx
        t0 = time.perf_counter()
        jobs = [(p, j, proof) for p in items for j, proof in zip(p.batch.jobs, padded(p), strict=True)]
        ctx.metrics.entered("verify", len(jobs))
        publics = [spec.public_signals(j.witness) for _, j, _ in jobs]
        try:
            bad = self._find_invalid(spec, publics, [proof for _, _, proof in jobs])
        except Exception as exc:  # noqa: BLE001 - a proof so broken the verifier cannot even screen it
            log.warning("verification batch unscreenable (%s): checking proofs one by one", exc)
            bad = {i: str(e) for i, e in enumerate(each_invalid(spec, publics, [x for _, _, x in jobs])) if e}
        ok = [i not in bad for i in range(len(jobs))]
        vb_id = canonical_hash([p.batch.batch_id for p in items])[:32]
        ctx.metrics.batch_done("verify", len(jobs), time.perf_counter() - t0, failed=ok.count(False))
        for (p, j, proof), good in zip(jobs, ok):
            if good:
                item: Any = VerifiedJob(j, p.result.provider, p.batch.batch_id, vb_id, proof, canonical_hash(proof))
            else:
                ctx.metrics.count("bad_proofs")
                item = Slash(j, p.result.provider, p.batch.batch_id)
            ctx.put_blocking(ctx.pay_q, item)
        for p in items:
            flags = [good for (q, _, _), good in zip(jobs, ok) if q is p]
            self._record(spec, p, flags)

    def _find_invalid(self, spec: CircuitSpec, publics: list[list[int]], proofs: list[Any]) -> dict[int, str]:
        """Invalid proofs of a verification batch: in parallel chunks on the verifier actors if any."""
        verifiers = self.pool.verifiers
        bounds = chunk_bounds(len(proofs), len(verifiers)) if verifiers else [(0, len(proofs))]
        if len(bounds) == 1:
            return find_invalid_proofs(spec.pk.vk, publics, proofs)
        refs = [v.find_invalid.remote(spec.circuit_id, publics[a:b], proofs[a:b])
                for v, (a, b) in zip(verifiers, bounds)]
        bad: dict[int, str] = {}
        for ref, (a, b) in zip(refs, bounds):
            try:
                part = ray.get(ref, timeout=600)
            except RayError:  # a verifier died: check its chunk here instead
                part = find_invalid_proofs(spec.pk.vk, publics[a:b], proofs[a:b])
            bad.update({a + i: reason for i, reason in part.items()})
        return bad

    def _record(self, spec: CircuitSpec, p: Proved, verified: list[bool]) -> None:
        ctx = self.ctx
        if ctx.store is None:
            return
        jobs = [JobRecord(j.job_id, canonical_hash(list(j.witness)), spec.public_signals(j.witness),
                          canonical_hash(proof), good)
                for j, proof, good in zip(p.batch.jobs, padded(p), verified)]
        params = {"batch_size": p.batch.size, "flush_reason": p.batch.reason.value,
                  "window_s": ctx.settings.window.window_s, "opened_s": p.batch.opened_s,
                  "flushed_s": p.batch.flushed_s, "controller": ctx.sizing.state(spec.circuit_id),
                  "per_job_s": p.result.per_job_s}
        rec = BatchRecord(p.batch.batch_id, p.batch.attempt, spec.circuit_id, spec.pk_hash, p.result.provider,
                          p.result.hardware, p.result.prover, ctx.settings.blinding, p.seed, params,
                          code_version(), p.result.code, jobs, inputs_hash([r.witness_sha256 for r in jobs]),
                          p.result.prove_s)
        ctx.store.save(rec, [j.witness for j in p.batch.jobs])
