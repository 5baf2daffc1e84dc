"""Many uploads in one signed request (``lease.complete_batch``, ``POST /v1/leases/complete-batch``).

Same checks and effects as one ``lease.complete`` per item (``completion``), with the per-request costs paid
once: one envelope signature and nonce, the Groth16 proofs of the batch that share a verifying key checked
together (``proving.groth16.batch.find_invalid``: one random linear combination, bisected when it fails, so a
bad proof is still named and only its job is rejected; grouped by the key's value, so the jobs of one registered
circuit are one group), and every item applied in ONE transaction (one ledger
batch, one commit). If any item is refused while applying (its lease expired, was revoked, is not the signer's),
that transaction is rolled back and every item is applied in its own transaction, so one bad item never sinks
the others. The answer lists one outcome per item, in order: the ``lease.complete`` answer
(``{"job_id", "status", "reason"}``), or ``{"job_id", "lease_id", "status": "error", "error", "message"}``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from eth_hash.auto import keccak

from market.core.tickets import TicketInputError, parse_proof_bytes
from market.exchange.service import batches, completion
from market.exchange.service.auth import consume_nonce
from market.exchange.service.errors import ServiceError, conflict
from market.exchange.service.runtime import Runtime
from market.exchange.verification import Expected, ResultRejected, verify_attestation
from market.protocol import CompletePayload, SignedRequest
from proving.errors import ProvingError
from proving.formats.snarkjs_json import proof_from_json, public_from_json
from market.pipeline.records import CountingChecks


def _prechecked_proof(exp: Expected, result: bytes, p: CompletePayload) -> tuple[Any, list[int], Any]:
    """Every check of a proof upload but the pairing: ``(attestation, public inputs, proof)``.

    Raises:
        ResultRejected: the hash, the attestation, a malformed proof or other public signals.
    """
    if keccak(result) != bytes.fromhex(p.result_hash[2:]):
        raise ResultRejected(exp.job_id, "result hash does not match the result bytes")
    att = verify_attestation(exp, bytes.fromhex(p.result_hash[2:]), bytes.fromhex(p.signature[2:]))
    try:
        proof_json, public_json = parse_proof_bytes(result)
        public, proof = public_from_json(public_json), proof_from_json(proof_json)
    except (TicketInputError, ProvingError, KeyError, TypeError, ValueError) as exc:
        raise ResultRejected(exp.job_id, f"malformed proof result: {exc}") from None
    if tuple(public) != tuple(exp.public_inputs):
        raise ResultRejected(exp.job_id, f"proof is for public inputs {public}, not {list(exp.public_inputs)}")
    return att, list(public), proof


def verify_one(exp: Expected, result: bytes, p: CompletePayload) -> completion.Verdict:
    """``completion.verify`` of one upload (``lease.complete``), timed: the verdict's ``figures`` say it was
    checked alone (one check) and how long it took.

    Raises:
        ServiceError: ``invalid`` (see ``completion.verify``).
    """
    received, t0 = time.time(), time.perf_counter()
    verdict = completion.verify(exp, result, p)
    took = time.perf_counter() - t0
    return dataclasses.replace(verdict, figures=batches.VerifyFigures(
        group_size=1, checks=int(exp.kind == "proof"), verify_s=took, received_at=received, done_at=received + took))


def verify_many(exps: list[Expected | None], results: list[bytes | None],
                items: list[CompletePayload], received_at: float | None = None) -> list[completion.Verdict | None]:
    """A verdict per item (None where there is nothing to verify): proofs under one key batch-checked, every
    other item through ``completion.verify``. Never raises for a bad result. Each verdict's ``figures``
    (``batches.VerifyFigures``) say how many proofs were checked together, the combined checks that took
    (bisection included) and the seconds; ``received_at``: when the upload arrived (Unix s, default now)."""
    received = time.time() if received_at is None else received_at
    verdicts: list[completion.Verdict | None] = [None] * len(items)
    groups: dict[Any, list[tuple[int, Any, list[int], Any]]] = {}
    for i, (exp, result, p) in enumerate(zip(exps, results, items)):
        if exp is None or result is None:
            continue
        if exp.kind != "proof" or exp.vk is None:
            verdicts[i] = verify_one(exp, result, p)
            continue
        try:
            att, public, proof = _prechecked_proof(exp, result, p)
        except ResultRejected as rej:
            verdicts[i] = completion.Verdict(result, rejection=rej, figures=batches.VerifyFigures(
                checks=0, received_at=received, done_at=time.time()))
            continue
        groups.setdefault(exp.vk, []).append((i, att, public, proof))  # one group per key (a value: equal keys)
    for members in groups.values():
        vk = exps[members[0][0]].vk  # type: ignore[union-attr]
        counter, t0 = CountingChecks(), time.perf_counter()
        bad = counter.find_invalid(vk, [m[2] for m in members], [m[3] for m in members])
        took = time.perf_counter() - t0
        fig = batches.VerifyFigures(group_size=len(members), checks=counter.checks, verify_s=took,
                                    received_at=received, done_at=time.time())
        for pos, (i, att, _, _) in enumerate(members):
            exp, result = exps[i], results[i]
            if pos in bad:
                err = bad[pos]
                verdicts[i] = completion.Verdict(result, rejection=ResultRejected(  # type: ignore[arg-type]
                    exp.job_id, f"proof rejected: {type(err).__name__}: {err}"),  # type: ignore[union-attr]
                    figures=fig)
            else:
                verdicts[i] = completion.Verdict(result, att, figures=fig)  # type: ignore[arg-type]
    return verdicts


def _error(p: CompletePayload, exc: ServiceError) -> dict[str, Any]:
    return {"job_id": p.job_id, "lease_id": p.lease_id, "status": "error", "error": exc.code, "message": exc.message}


def _apply_one(rt: Runtime, s: Any, signer: str, p: CompletePayload, exp: Expected | None,
               verdict: completion.Verdict | None) -> dict[str, Any]:
    lease = completion.owned_lease(s, signer, p.lease_id, p.job_id)
    if lease.status in completion.DONE:
        return dict(lease.outcome or {})  # a retried upload: the same answer
    if exp is None or verdict is None:
        raise conflict(f"lease {p.lease_id} is {lease.status}; the upload is not taken", "drop the job")
    return completion.apply(s, lease, exp, verdict, p, fee_bps=rt.settings.fee_bps,
                            max_attempts=rt.settings.max_attempts, now_s=time.time())


def complete_batch(rt: Runtime, req: SignedRequest, signer: str, items: list[CompletePayload]) -> dict[str, Any]:
    """Verify and apply ``items`` (see the module docstring); ``{"results": [outcome per item]}``.

    Raises:
        ServiceError: ``replayed_nonce`` (the whole request); per-item refusals are in the answer.
    """
    received = time.time()
    vk_for = completion.verifying_key_cache(rt.verifying_keys, rt.settings.data_dir / "keys")
    exps: list[Expected | None] = []
    results: list[bytes | None] = []
    early: dict[int, dict[str, Any]] = {}
    with rt.read() as s:
        for i, p in enumerate(items):
            try:
                results.append(completion.decode_result(p, rt.config.max_result_bytes))
                lease = completion.owned_lease(s, signer, p.lease_id, p.job_id)
                exps.append(completion.expected(s, lease, rt.attestation_domain, vk_for)
                            if lease.status == "running" else None)
            except ServiceError as exc:
                early[i] = _error(p, exc)
                results += [None] * (i + 1 - len(results))
                exps += [None] * (i + 1 - len(exps))
    verdicts = verify_many(exps, results, items, received)
    now = time.time()
    try:
        with rt.tx() as s:
            consume_nonce(s, req, now)
            out = [early[i] if i in early else _apply_one(rt, s, signer, p, exps[i], verdicts[i])
                   for i, p in enumerate(items)]
        return {"results": out}
    except ServiceError as exc:
        if exc.code == "replayed_nonce":
            raise
    with rt.tx() as s:  # one item was refused: the nonce alone, then each item in its own transaction
        consume_nonce(s, req, now)
    out = []
    for i, p in enumerate(items):
        if i in early:
            out.append(early[i])
            continue
        try:
            with rt.tx() as s:
                out.append(_apply_one(rt, s, signer, p, exps[i], verdicts[i]))
        except ServiceError as exc:
            out.append(_error(p, exc))
    return {"results": out}
