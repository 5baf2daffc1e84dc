"""Many jobs in one signed request (``job.submit_batch``, ``POST /v1/jobs/batch``).

Each spec goes through exactly what ``job.submit`` does (``jobs.submit``: checks, escrow of its max price,
idempotent on a given job id); the request is signed and its nonce consumed once, and every job is recorded in
ONE transaction (one ledger batch, one commit). If any spec is refused (bad spec, id taken, funds run out),
that transaction is rolled back and each spec is submitted in its own transaction, so the others still go in
(in order: a spec refused for funds does not stop a cheaper one after it). The answer lists one entry per spec,
in order: ``{"job_id", "status", "max_price_wei"}`` or ``{"job_id" (given or null), "status": "error",
"error", "message", "hint"}``. ``GET /v1/jobs/{id}`` gives a job's full view.
"""

from __future__ import annotations

from typing import Any

from market.exchange.service import jobs
from market.exchange.service.auth import consume_nonce
from market.exchange.service.errors import ServiceError
from market.exchange.service.runtime import Runtime
from market.protocol import JobSpecIn, SignedRequest


def _brief(job: Any) -> dict[str, Any]:
    return {"job_id": job.job_id, "status": job.status, "max_price_wei": str(int(job.max_price_wei))}


def _error(spec: JobSpecIn, exc: ServiceError) -> dict[str, Any]:
    return {"job_id": spec.job_id, "status": "error", "error": exc.code, "message": exc.message, "hint": exc.hint}


def submit_batch(rt: Runtime, req: SignedRequest, signer: str, specs: list[JobSpecIn], now_s: float) -> dict[str, Any]:
    """Submit ``specs`` for ``signer`` (see the module docstring); ``{"jobs": [entry per spec]}``.

    Raises:
        ServiceError: ``replayed_nonce`` (the whole request); per-spec refusals are in the answer.
    """
    try:
        with rt.tx() as s:
            consume_nonce(s, req, now_s)
            return {"jobs": [_brief(jobs.submit(s, signer, spec, rt.config, now_s)) for spec in specs]}
    except ServiceError as exc:
        if exc.code == "replayed_nonce":
            raise
    with rt.tx() as s:  # one spec was refused: the nonce alone, then each spec in its own transaction
        consume_nonce(s, req, now_s)
    out = []
    for spec in specs:
        try:
            with rt.tx() as s:
                out.append(_brief(jobs.submit(s, signer, spec, rt.config, now_s)))
        except ServiceError as exc:
            out.append(_error(spec, exc))
    return {"jobs": out}
