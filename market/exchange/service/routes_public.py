"""Public (unsigned) routes: health, metrics, info, providers, a job's status, quotes."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Path, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from sqlalchemy import select

from market import exchange as ex
from market.core.tickets import is_circuit_id
from market.db.models import JobRecord, ProviderRecord
from market.exchange.service.errors import not_found
from market.exchange.service.jobs import job_spec
from market.exchange.service.runtime import Runtime
from market.exchange.service.views import job_view, provider_view
from market.protocol import ID_PATTERN, JobSpecIn

SERVICE_NAME = "raymarket-exchange"
API_VERSION = "1"


class QuoteBody(BaseModel):
    """``POST /v1/quote`` body."""

    spec: JobSpecIn


def info(rt: Runtime) -> dict[str, Any]:
    """``GET /v1/info``."""
    return {"name": SERVICE_NAME, "version": API_VERSION, "chain_id": rt.domain.chain_id,
            "contract": rt.domain.verifying_contract, "fee_bps": rt.settings.fee_bps, "dev": rt.config.dev,
            "lease_s": rt.config.lease_s, "domain": rt.domain.to_json(), "chain": rt.chain.chain.kind}


def router(rt: Runtime) -> APIRouter:
    """The public routes over ``rt``."""
    r = APIRouter()

    @r.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @r.get("/metrics")
    def metrics() -> Response:
        with rt.read() as s:
            return Response(rt.metrics.render(s), media_type=CONTENT_TYPE_LATEST)

    @r.get("/v1/info")
    def get_info() -> dict[str, Any]:
        return info(rt)

    @r.get("/v1/providers")
    def list_providers() -> list[dict[str, Any]]:
        now = time.time()
        with rt.read() as s:
            return [provider_view(p, now, rt.config.lease_s)
                    for p in s.scalars(select(ProviderRecord).order_by(ProviderRecord.name))]

    @r.get("/v1/jobs/{job_id}")
    def get_job(job_id: str = Path(pattern=ID_PATTERN)) -> dict[str, Any]:
        with rt.read() as s:
            job = s.get(JobRecord, job_id)
            if job is None:
                raise not_found("job", job_id)
            return job_view(s, job, rt.explanations.get(job_id))

    @r.post("/v1/quote")
    def quote(body: QuoteBody) -> dict[str, Any]:
        with rt.read() as s:  # a registered circuit is looked up like at submit (the MiMC example is not set up)
            spec, _ = job_spec("0x" + "00" * 20, body.spec, rt.config,
                               s if is_circuit_id(str(body.spec.circuit)) else None)
            return ex.quote_job(s, spec)

    return r
