"""Provider routes (signed): register, heartbeat, long-poll for leases, upload a result, give a lease back."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from market import exchange as ex
from market.db.models import ProviderRecord
from market.exchange.service import challenges, completion, leases, providers, uploads
from market.exchange.service.auth import check_envelope, consume_nonce
from market.exchange.service.errors import conflict, invalid
from market.exchange.service.runtime import Runtime
from market.exchange.service.views import job_view, provider_view
from market.protocol import ID_PATTERN, Action, SignedRequest

#: During a long-poll, the provider's leases are looked for at least this often (seconds).
POLL_RECHECK_S = 1.0
POLL_SLEEP_S = 0.05


def _same_lease(path_id: str, payload_id: str) -> None:
    if path_id != payload_id:
        raise invalid("payload.lease_id", f"{payload_id!r} is not the lease in the path ({path_id!r})")


def router(rt: Runtime) -> APIRouter:
    """The provider routes over ``rt``."""
    r = APIRouter()

    def begin(req: SignedRequest, action: str) -> tuple[str, Any, float]:
        now = time.time()
        signer, payload = check_envelope(req, action, rt.domain, now)
        return signer, payload, now

    @r.post("/v1/providers/register")
    def register(req: SignedRequest) -> dict[str, Any]:
        signer, p, now = begin(req, Action.PROVIDER_REGISTER)
        with rt.tx() as s:
            consume_nonce(s, req, now)
            return provider_view(providers.register(s, signer, p, now), now, rt.config.lease_s)

    @r.post("/v1/providers/heartbeat")
    def heartbeat(req: SignedRequest) -> dict[str, Any]:
        signer, p, now = begin(req, Action.PROVIDER_HEARTBEAT)
        with rt.tx() as s:
            consume_nonce(s, req, now)
            providers.seen(providers.owned(s, signer, p.name), now, p.draining)
            n, revoked = leases.extend(s, p.name, p.running, now, rt.config.lease_s)
        return {"leases_extended": n, "lease_expires_at": now + rt.config.lease_s, "revoked": revoked}

    def claim(name: str, max_leases: int) -> dict[str, Any]:
        now = time.time()
        with rt.tx() as s:
            rec = s.get(ProviderRecord, name)
            if rec is None:  # only after the poll's own ownership check, so never in practice
                return {"leases": []}
            providers.seen(rec, now)
            got = leases.claim(s, name, max_leases, now, rt.config.lease_s)
            out: dict[str, Any] = {"leases": [leases.lease_view(s, lease, rt.attestation_domain) for lease in got]}
            if chs := challenges.claim_view(rt, s, name, now):  # a timed speed challenge, when one is due
                out["challenges"] = chs
            return out

    @r.post("/v1/leases/poll")
    async def poll(req: SignedRequest) -> dict[str, Any]:
        signer, p, now = begin(req, Action.LEASE_POLL)

        def presence() -> None:
            with rt.tx() as s:
                consume_nonce(s, req, now)
                providers.seen(providers.owned(s, signer, p.name), now)

        await run_in_threadpool(presence)
        deadline, gen, last = time.monotonic() + p.wait_s, None, 0.0
        while True:
            if gen != rt.generation or time.monotonic() - last >= POLL_RECHECK_S:
                gen, last = rt.generation, time.monotonic()
                got = await run_in_threadpool(claim, p.name, p.max_leases)
                if got["leases"] or got.get("challenges"):
                    return got
            if time.monotonic() >= deadline:
                return {"leases": []}
            await asyncio.sleep(min(POLL_SLEEP_S, max(0.0, deadline - time.monotonic())))

    @r.post("/v1/leases/{lease_id}/complete")
    def complete(req: SignedRequest, lease_id: str = Path(pattern=ID_PATTERN)) -> dict[str, Any]:
        signer, p, now = begin(req, Action.LEASE_COMPLETE)
        _same_lease(lease_id, p.lease_id)
        result = completion.decode_result(p, rt.config.max_result_bytes)
        vk_for = completion.verifying_key_cache(rt.verifying_keys, rt.settings.data_dir / "keys")
        with rt.read() as s:
            lease = completion.owned_lease(s, signer, lease_id, p.job_id)
            exp = completion.expected(s, lease, rt.attestation_domain, vk_for) if lease.status == "running" else None
        verdict = uploads.verify_one(exp, result, p) if exp is not None else None  # timed, for the pipeline stats
        with rt.tx() as s:
            consume_nonce(s, req, time.time())
            lease = completion.owned_lease(s, signer, lease_id, p.job_id)
            if lease.status in completion.DONE:
                return dict(lease.outcome or {})  # a retried upload: the same answer
            if exp is None or verdict is None:
                raise conflict(f"lease {lease_id} is {lease.status}; the upload is not taken", "drop the job")
            return completion.apply(s, lease, exp, verdict, p, fee_bps=rt.settings.fee_bps,
                                    max_attempts=rt.settings.max_attempts, now_s=time.time())

    @r.post("/v1/leases/complete-batch")
    def complete_batch(req: SignedRequest) -> dict[str, Any]:
        signer, p, _ = begin(req, Action.LEASE_COMPLETE_BATCH)
        return uploads.complete_batch(rt, req, signer, list(p.items))

    @r.post("/v1/leases/{lease_id}/fail")
    def fail(req: SignedRequest, lease_id: str = Path(pattern=ID_PATTERN)) -> dict[str, Any]:
        signer, p, now = begin(req, Action.LEASE_FAIL)
        _same_lease(lease_id, p.lease_id)
        with rt.tx() as s:
            consume_nonce(s, req, now)
            lease = completion.owned_lease(s, signer, lease_id, p.job_id)
            if lease.status not in leases.OPEN:
                raise conflict(f"lease {lease_id} is {lease.status}", "nothing to give back")
            completion.store_logs(s, lease, p.logs, now)
            leases.close(s, lease, "failed", now, {"job_id": p.job_id, "status": "failed", "reason": p.reason})
            if leases.spot.is_verification(lease):  # a verification task given back: the sweep asks another provider
                return job_view(s, ex.get_job(s, p.job_id))
            job = ex.fail_job(s, p.job_id, reason=f"given back by {lease.provider}: {p.reason}"[:1900],
                              wrong_result=False, max_attempts=rt.settings.max_attempts, now_s=now)
            return job_view(s, job)

    return r
