"""The inclusion report of a settled job: its leaf, Merkle proof and roots, and the checks done on them.

Used by ``raymarket settlement verify`` (which only renders the report) and by anyone who audits
a settlement: every check is recomputed from the stored leaf, never trusted from the database.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from contracts.attestation import recover_signer
from contracts.bindings import SettlementContract
from contracts.merkle import verify_inclusion
from market.core.policy import policy_from_terms
from market.settlement.batching import inclusion, leaf_from_record, unhex


def verify_report(session: Session, job: str, settlement: SettlementContract | None) -> dict[str, Any]:
    """The inclusion report of ``job`` (the exchange's job id or the attestation's 0x bytes32 job id).

    Args:
        session: a session on the exchange's database.
        job: the job.
        settlement: the deployed contract to compare with (None: off-chain checks only).

    Returns:
        ``{"job", "job_id", "batch_id", "leaf_index", "leaf_hash", "provider", "price_wei", "kind",
        "verification" (the signed policy's text, e.g. ``spot-check:0.5``), "proof": [0x hex], "root", "batch_status", "tx_hash", "contract", "challenge_reason",
        "onchain_root", "checks": {name: bool}, "ok": bool}``; checks are ``leaf_hash_matches``,
        ``signer_is_provider``, ``proof_verifies_to_root``, ``root_matches_batch_record`` and, with
        ``settlement``, ``onchain_root_matches`` and ``contract_verifies_attestation``.

    Raises:
        market.settlement.batching.UnknownJob: no attestation is stored for ``job``.
    """
    inc = inclusion(session, job)
    leaf = leaf_from_record(inc.leaf)
    att = leaf.signed.attestation
    checks: dict[str, bool] = {
        "leaf_hash_matches": leaf.hash == unhex(inc.leaf.leaf_hash),
        "signer_is_provider": recover_signer(att, leaf.signed.signature, leaf.signed.domain) == att.provider,
        "proof_verifies_to_root": verify_inclusion(inc.root, leaf.hash, inc.proof),
        "root_matches_batch_record": inc.root == unhex(inc.batch.root),
    }
    report: dict[str, Any] = {
        "job": job, "job_id": inc.leaf.job_id, "batch_id": inc.batch.batch_id, "leaf_index": inc.leaf.leaf_index,
        "leaf_hash": inc.leaf.leaf_hash, "provider": att.provider, "price_wei": att.price_wei,
        "kind": att.kind.name.lower(),
        "verification": str(policy_from_terms(int(att.verification), att.sample_rate_ppm)), "proof": ["0x" + p.hex() for p in inc.proof], "root": "0x" + inc.root.hex(),
        "batch_status": inc.batch.status, "tx_hash": inc.batch.tx_hash, "contract": inc.leaf.contract,
        "challenge_reason": inc.leaf.challenge_reason, "onchain_root": None,
    }
    if settlement is not None:
        onchain = settlement.get_batch(unhex(inc.batch.batch_id))
        report["onchain_root"] = "0x" + onchain.root.hex() if onchain.exists else None
        checks["onchain_root_matches"] = onchain.root == inc.root
        checks["contract_verifies_attestation"] = settlement.verify_attestation(unhex(inc.batch.batch_id), leaf,
                                                                                inc.proof)
    report["checks"] = checks
    report["ok"] = all(checks.values())
    return report
