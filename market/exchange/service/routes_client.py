"""Client routes (signed): submit, cancel, result, logs, balance, and the development faucet."""

from __future__ import annotations

import base64
import time
from typing import Any

from fastapi import APIRouter, Path
from sqlalchemy import select

from market import ledger
from market.db.models import JobBlob, JobLogLine
from market.exchange.service import batch_submit, jobs, money, providers
from market.exchange.service.auth import check_envelope, consume_nonce
from market.exchange.service.errors import ServiceError, conflict, invalid
from market.exchange.service.runtime import Runtime
from market.exchange.service.views import job_view
from market.protocol import ID_PATTERN, Action, ErrorCode, SignedRequest

RESULT_STATUSES = ("paid", "settled")


def _same_id(path_id: str, payload_id: str) -> None:
    if path_id != payload_id:
        raise invalid("payload.job_id", f"{payload_id!r} is not the job in the path ({path_id!r})")


def router(rt: Runtime) -> APIRouter:
    """The client routes over ``rt``."""
    r = APIRouter()

    def begin(req: SignedRequest, action: str) -> tuple[str, Any, float]:
        now = time.time()
        signer, payload = check_envelope(req, action, rt.domain, now)
        return signer, payload, now

    @r.post("/v1/jobs")
    def submit(req: SignedRequest) -> dict[str, Any]:
        signer, p, now = begin(req, Action.JOB_SUBMIT)
        with rt.tx() as s:
            consume_nonce(s, req, now)
            job = jobs.submit(s, signer, p.spec, rt.config, now)
            return job_view(s, job)

    @r.post("/v1/jobs/batch")
    def submit_batch(req: SignedRequest) -> dict[str, Any]:
        signer, p, now = begin(req, Action.JOB_SUBMIT_BATCH)
        return batch_submit.submit_batch(rt, req, signer, list(p.specs), now)

    @r.post("/v1/jobs/{job_id}/cancel")
    def cancel(req: SignedRequest, job_id: str = Path(pattern=ID_PATTERN)) -> dict[str, Any]:
        signer, p, now = begin(req, Action.JOB_CANCEL)
        _same_id(job_id, p.job_id)
        with rt.tx() as s:
            consume_nonce(s, req, now)
            return job_view(s, jobs.cancel(s, signer, job_id, now))

    @r.post("/v1/jobs/{job_id}/result")
    def result(req: SignedRequest, job_id: str = Path(pattern=ID_PATTERN)) -> dict[str, Any]:
        signer, p, now = begin(req, Action.JOB_RESULT)
        _same_id(job_id, p.job_id)
        with rt.tx() as s:
            consume_nonce(s, req, now)
            job = jobs.owned_job(s, signer, job_id)
            blob = s.get(JobBlob, (job_id, "result"))
            if job.status not in RESULT_STATUSES or blob is None:
                raise conflict(f"job {job_id} is {job.status}: no verified result yet", "wait for it to be paid")
            return {"job_id": job_id, "kind": job.kind, "result_b64": base64.b64encode(blob.data).decode(),
                    "result_hash": job.result_hash, "attestation": job.attestation}

    @r.post("/v1/jobs/{job_id}/logs")
    def logs(req: SignedRequest, job_id: str = Path(pattern=ID_PATTERN)) -> dict[str, Any]:
        signer, p, now = begin(req, Action.JOB_LOGS)
        _same_id(job_id, p.job_id)
        with rt.tx() as s:
            consume_nonce(s, req, now)
            jobs.owned_job(s, signer, job_id)
            rows = s.scalars(select(JobLogLine.line).where(JobLogLine.job_id == job_id).order_by(JobLogLine.id))
            return {"lines": list(rows)}

    @r.post("/v1/balance")
    def balance(req: SignedRequest) -> dict[str, Any]:
        signer, _, now = begin(req, Action.ACCOUNT_BALANCE)
        with rt.tx() as s:
            consume_nonce(s, req, now)
            return jobs.balance(s, signer)

    @r.post("/v1/dev/faucet")
    def faucet(req: SignedRequest) -> dict[str, Any]:
        """DEVELOPMENT faucet (a ``--dev`` exchange only): real chain money, never ledger money from nothing.

        A well-known dev funder key sends ``Vault.depositFor(signer)`` of ``amount_wei`` and, given ``bond_wei``
        (with ``provider_name``, a provider the signer registered), ``Vault.stakeFor(signer)``; the events are
        credited before this returns (:func:`money.dev_faucet`). Returns the balance view plus ``bond_wei`` (the
        provider's free bond) and ``faucet_txs`` ``[{"tx_hash", "function", "amount_wei"}]``."""
        signer, p, now = begin(req, Action.DEV_FAUCET)
        if not rt.config.dev:
            raise ServiceError(ErrorCode.NOT_DEV, "the faucet exists only on a development exchange",
                               "run `raymarket exchange serve --dev` (never in production)")
        money.check_faucet_funds(rt, p.amount_wei + p.bond_wei)  # before the nonce: a refusal changes nothing
        with rt.tx() as s:
            consume_nonce(s, req, now)
            if p.bond_wei:
                if not p.provider_name:
                    raise invalid("provider_name", "bond_wei needs the provider's name")
                providers.faucet_bond_target(s, signer, p.provider_name)
        done = money.dev_faucet(rt, signer, p.amount_wei, p.bond_wei)
        with rt.read() as s:
            out: dict[str, Any] = jobs.balance(s, signer)
            if p.bond_wei:
                out["bond_wei"] = str(ledger.balance(s, ledger.bond_account(p.provider_name)))
        out["faucet_txs"] = [{"tx_hash": h, "function": fn, "amount_wei": str(wei)} for h, fn, wei in done.txs]
        return out

    return r
