"""Provenance of the exchange's proof batches (``proof_batches`` / ``proof_batch_jobs`` rows), and their replay.

The exchange service records every proof batch it forms (``market.exchange.service.batches``): which jobs,
which provider, which circuit key, what was uploaded and the verdict. This module is what both the recorder and
the replay use, so that they agree on every hash:

* :func:`result_hashes` -- ``(proof_sha256, publics_sha256)`` of an uploaded result: ``canonical_hash`` (the
  standalone pipeline's :func:`market.pipeline.provenance.canonical_hash`) of ``proof.json`` and of the public
  signals as decimal strings.
* :func:`record_of` / :func:`record_hash` -- the batch's canonical record (the fields that say what was proved
  and decided) and its sha256, stored as ``ProofBatch.record_sha256``.
* :func:`reverify_batch` -- the replay of a service batch. Witnesses are client secrets and are deleted after
  the job, so nothing can be re-proved; instead every stored proof is checked again: its bytes against the
  recorded keccak, its proof and public-signal hashes, its public signals against the job's statement (and the
  statement's input hash), its Groth16 pairing check against the circuit's stored verification key (whose hash
  must still be the recorded ``vk_sha256``) -- all the batch's proofs checked together, bisected when the check
  fails -- and the recomputed verdict against the recorded one; then the record hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import asdict, dataclass
from typing import Any

from eth_hash.auto import keccak
from sqlalchemy import select
from sqlalchemy.orm import Session

from market.core.tickets import circuit_input_hash, parse_proof_bytes
from market.db.models import CircuitRecord, ProofBatch, ProofBatchJob
from market.pipeline.errors import BatchNotFound
from market.pipeline.provenance import canonical_hash, canonical_json
from proving.formats.snarkjs_json import proof_from_json, public_from_json, vk_from_json
from proving.groth16 import batch as groth16_batch
from proving.groth16 import rlc

#: Verdicts that end a member (``lost`` ones: the lease closed without a verdict on a proof).
LOST = ("expired", "failed", "revoked")


def result_hashes(result: bytes) -> tuple[str | None, str | None]:
    """``(proof_sha256, publics_sha256)`` of a proof result (``canonical_proof_bytes``), ``(None, None)`` when it
    does not parse."""
    try:
        proof_json, public_json = parse_proof_bytes(result)
        return canonical_hash(proof_json), canonical_hash([str(int(x)) for x in public_json])
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:  # TicketInputError is a ValueError
        del exc
        return None, None


def record_of(batch: ProofBatch, members: list[ProofBatchJob]) -> dict[str, Any]:
    """The canonical record of a batch: its group, provider, round and, per member in position order, the job,
    attempt, statement, hashes and verdict (not timings: they are not provenance of the result)."""
    return {"batch_id": batch.batch_id, "provider": batch.provider, "round_id": batch.round_id,
            "circuit_id": batch.circuit_id, "pk_sha256": batch.pk_sha256, "vk_sha256": batch.vk_sha256,
            "jobs": [{"lease_id": m.lease_id, "job_id": m.job_id, "attempt": m.attempt, "input_hash": m.input_hash,
                      "public": [str(x) for x in m.public], "result_hash": m.result_hash,
                      "proof_sha256": m.proof_sha256, "publics_sha256": m.publics_sha256, "verdict": m.verdict}
                     for m in sorted(members, key=lambda m: m.position)]}


def record_hash(batch: ProofBatch, members: list[ProofBatchJob]) -> str:
    """Hex sha256 of :func:`record_of` (canonical JSON)."""
    return canonical_hash(record_of(batch, members))


def members_of(s: Session, batch_id: str) -> list[ProofBatchJob]:
    """The batch's members in position order."""
    return list(s.scalars(select(ProofBatchJob).where(ProofBatchJob.batch_id == batch_id)
                          .order_by(ProofBatchJob.position)))


@dataclass
class CountingChecks:
    """Groth16 batch verification (``proving.groth16.batch``'s kernels) that counts its combined checks: one
    for the whole group, one per bisection subset (``checks``)."""

    checks: int = 0

    def find_invalid(self, vk: Any, publics: list[list[int]], proofs: list[Any]) -> dict[int, Any]:
        """``proving.groth16.batch.find_invalid``, counting (see the class docstring)."""
        k = groth16_batch.KERNELS

        def all_hold(b: Any) -> bool:
            self.checks += 1
            return k.all_hold(b)

        def subset_holds(b: Any, idx: Any) -> bool:
            self.checks += 1
            return k.subset_holds(b, idx)

        kernels = dataclasses.replace(k, all_hold=all_hold, subset_holds=subset_holds)
        return rlc.find_invalid(kernels, vk, publics, proofs, None)


@dataclass
class ReverifiedJob:
    """One member of a re-verified batch.

    Attributes:
        job_id, lease_id: the member; recorded_verdict: ``ok`` / ``rejected`` / a lost lease / None (pending).
        replay_verdict: ``ok`` when every check passes, ``rejected`` when one fails, None when nothing was
            uploaded. checks: each check's outcome (``result_hash``, ``proof_sha256``, ``publics_sha256``,
            ``public``, ``input_hash``, ``pairing``: True / False; absent when not applicable).
        matches: the replay agrees with the record; why: what differs (empty when it matches).
    """

    job_id: str
    lease_id: str
    recorded_verdict: str | None
    replay_verdict: str | None
    checks: dict[str, bool]
    matches: bool
    why: list[str]


@dataclass
class ReverifyReport:
    """Result of :func:`reverify_batch` (``raymarket replay pb-...``).

    Attributes:
        batch_id, provider, circuit_id, round_id: the batch. mode: ``"reverify"`` (stored proofs re-checked;
            witnesses are never kept by the exchange). vk_matches: the circuit's stored key still hashes to the
            recorded ``vk_sha256``. record_matches: the members' rows hash to the recorded ``record_sha256``.
        outputs_match: every member matches and both hashes match; mismatches: the job ids that do not.
        pairing_checks: combined Groth16 checks the replay ran (1 for a clean batch; more when it bisected).
        jobs: per-member detail; replay_s: seconds the replay took.
    """

    batch_id: str
    provider: str
    circuit_id: str
    round_id: str | None
    mode: str
    vk_matches: bool
    record_matches: bool
    outputs_match: bool
    mismatches: list[str]
    pairing_checks: int
    jobs: list[ReverifiedJob]
    replay_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def _check_member(m: ProofBatchJob, circuit_id: str, n_public: int | None) -> tuple[dict[str, bool], Any]:
    """Every check of a member but the pairing; ``(checks, (public, proof) or None)``."""
    checks: dict[str, bool] = {}
    result = m.result
    if result is None:
        return checks, None
    checks["result_hash"] = m.result_hash is not None and "0x" + keccak(result).hex() == m.result_hash.lower()
    proof_sha, publics_sha = result_hashes(result)
    checks["proof_sha256"] = proof_sha is not None and proof_sha == m.proof_sha256
    checks["publics_sha256"] = publics_sha is not None and publics_sha == m.publics_sha256
    try:
        proof_json, public_json = parse_proof_bytes(result)
        public, proof = public_from_json(public_json), proof_from_json(proof_json)
    except Exception:  # noqa: BLE001 -- a malformed stored proof is a failed check, whatever the parser raises
        checks["parses"] = False
        return checks, None
    checks["public"] = [str(x) for x in public] == [str(x) for x in m.public] and (
        n_public is None or len(public) == n_public)
    if circuit_id and len(circuit_id) == 64:  # a registered circuit: the statement hash is recomputable
        checks["input_hash"] = "0x" + circuit_input_hash(circuit_id, list(public)).hex() == m.input_hash.lower()
    return checks, (list(public), proof)


def reverify_batch(s: Session, batch_id: str) -> ReverifyReport:
    """Re-check a service batch from its stored proofs (see the module docstring).

    Raises:
        BatchNotFound: no such batch in the exchange's database.
    """
    t0 = time.perf_counter()
    batch = s.get(ProofBatch, batch_id)
    if batch is None:
        raise BatchNotFound(batch_id, "the exchange database (proof_batches)")
    members = members_of(s, batch_id)
    circuit = s.get(CircuitRecord, batch.circuit_id)
    vk, vk_matches, n_public = None, False, None
    if circuit is not None:
        vk_matches = hashlib.sha256(canonical_json(circuit.vk_json).encode()).hexdigest() == batch.vk_sha256
        try:
            vk = vk_from_json(circuit.vk_json)
            n_public = vk.n_public
        except Exception:  # noqa: BLE001 -- a tampered key: every pairing check fails below
            vk = None
    per: list[tuple[ProofBatchJob, dict[str, bool], Any]] = []
    for m in members:
        checks, parsed = _check_member(m, batch.circuit_id, n_public)
        per.append((m, checks, parsed))
    counter = CountingChecks()
    to_pair = [(i, parsed) for i, (_, checks, parsed) in enumerate(per) if parsed is not None]
    bad: dict[int, Any] = {}
    if vk is not None and to_pair:
        try:
            bad = counter.find_invalid(vk, [p[0] for _, p in to_pair], [p[1] for _, p in to_pair])
        except Exception as exc:  # noqa: BLE001 -- e.g. a public-signal count the key does not take
            bad = {pos: exc for pos in range(len(to_pair))}
    pair_ok = {i: (vk is not None and pos not in bad) for pos, (i, _) in enumerate(to_pair)}
    jobs: list[ReverifiedJob] = []
    for i, (m, checks, _) in enumerate(per):
        if i in pair_ok:
            checks["pairing"] = pair_ok[i]
        replay_verdict = None if m.result is None else ("ok" if checks and all(checks.values()) else "rejected")
        why = [f"{name} check failed" for name, ok in checks.items() if not ok]
        recorded = m.verdict
        if recorded == "ok":
            matches = replay_verdict == "ok"
        elif recorded == "rejected":
            # hash and signature refusals come before any proof check: only a proof the pairing or statement
            # checks accept while the record says it failed them is a disagreement
            proof_reason = (m.reason or "").startswith(("proof rejected", "proof is for public inputs",
                                                        "malformed proof", "proof does not verify"))
            matches = replay_verdict != "ok" or not proof_reason
            why = [] if matches else ["recorded as rejected, but the stored proof passes every check"]
        else:  # pending or lost: nothing was decided on a proof; a stored one must still be what was uploaded
            integrity = [k for k in ("result_hash", "proof_sha256", "publics_sha256") if checks.get(k) is False]
            matches = not integrity
            why = [f"{k} check failed" for k in integrity]
        if recorded == "ok" and not matches and not why:
            why = ["no stored proof for an accepted job"]
        jobs.append(ReverifiedJob(m.job_id, m.lease_id, recorded, replay_verdict, checks, matches, why))
    record_matches = batch.record_sha256 is not None and record_hash(batch, members) == batch.record_sha256
    mismatches = [j.job_id for j in jobs if not j.matches]
    return ReverifyReport(batch.batch_id, batch.provider, batch.circuit_id, batch.round_id, "reverify", vk_matches,
                          record_matches, not mismatches and vk_matches and record_matches, mismatches,
                          counter.checks, jobs, time.perf_counter() - t0)
