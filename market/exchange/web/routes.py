"""The web console's routes: server-rendered HTML pages (Jinja2, autoescaped) over read-only queries.

Pages: ``/`` (the market now), ``/jobs/{job_id}``, ``/providers/{name}``, ``/batches/{batch_id}``, ``/audit``.
Public market data only: a client's results, inputs and balances stay behind signed requests (CLI/SDK);
see the README section "Web console and metrics". Every id in a path comes from strangers: it is matched
against :data:`market.protocol.ID_PATTERN` (or a 0x hash) and escaped wherever it is shown.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path as FsPath
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from market.core.policy import PolicyError, policy_from_terms
from market.db.models import JobRecord, ProviderRecord
from market.exchange.web import queries as q
from market.exchange.web.charts import line_chart
from market.ledger import chain as money
from market.protocol import ID_PATTERN
from market.settlement import audit as money_audit
from market.settlement.batching import UnknownJob, unhex
from market.settlement.verify import verify_report

log = logging.getLogger("raymarket.web")

TEMPLATES = FsPath(__file__).with_name("templates")
HASH_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
ID_RE = re.compile(ID_PATTERN)
#: Attestation kinds of settlement leaves (``LeafRecord.kind``).
LEAF_KINDS = {0: "inference", 1: "proof"}


def leaf_policy(leaf: Any) -> str:
    """The verification policy a settlement leaf's provider signed, as text (``spot-check:0.5``)."""
    try:
        return str(policy_from_terms(int(leaf.verification), int(leaf.sample_rate_ppm)))
    except PolicyError:
        return f"unknown ({leaf.verification}, {leaf.sample_rate_ppm} ppm)"
CHALLENGE_REASONS = {1: "bad signature", 2: "bad proof", 3: "duplicate"}


def fmt_wei(v: Any) -> str:
    """``1234567 wei`` / ``1.23 gwei`` / ``0.5 ETH`` with the exact wei in a title (empty for None)."""
    if v is None:
        return "—"
    v = int(v)
    for unit, scale in (("ETH", 10**18), ("gwei", 10**9)):
        if abs(v) >= scale // 1000:
            return f"{v / scale:.6g} {unit}"
    return f"{v} wei"


def fmt_time(t: Any) -> str:
    """Unix seconds as ``YYYY-MM-DD HH:MM:SS UTC``."""
    if t is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(t)))


def fmt_bytes(n: Any) -> str:
    """Bytes as KiB/MiB/GiB."""
    n = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def short(h: Any, n: int = 10) -> str:
    """A long hex string shortened to ``0x1234…abcd``."""
    h = str(h or "")
    return h if len(h) <= 2 * n else f"{h[:n]}…{h[-4:]}"


def make_env() -> Environment:
    """The Jinja2 environment (autoescape on for every template)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))
    env.filters.update(wei=fmt_wei, time=fmt_time, bytes=fmt_bytes, short=short, leaf_policy=leaf_policy)
    return env


def router(rt: Any) -> APIRouter:
    """The console's pages over a service :class:`market.exchange.service.runtime.Runtime` (reads only
    through ``rt.read()``, a read-only Session factory; never writes)."""
    r = APIRouter(include_in_schema=False)
    env = make_env()

    def page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.setdefault("now", time.time())
        ctx["contract"] = rt.domain.verifying_contract
        ctx["chain_id"] = rt.domain.chain_id
        return HTMLResponse(env.get_template(name).render(**ctx), status_code=status)

    def missing(what: str, ident: str) -> HTMLResponse:
        return page("notfound.html", 404, title=f"{what} not found", what=what, ident=ident)

    @r.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        now = time.time()
        with rt.read() as s:
            listed = [(p, q.online(p, now, rt.config.lease_s)) for p in q.providers(s)]
            rounds = q.recent_rounds(s)
            ctx: dict[str, Any] = dict(
                providers=listed, n_online=sum(1 for _, on in listed if on),
                counts=q.job_counts(s), rounds=rounds, round_seconds=_round_seconds(rt, rounds),
                chart=line_chart(q.clearing_prices(s), title="clearing price per resource-second over time"),
                batches=q.recent_batches(s), jobs=q.recent_jobs(s))
        return page("index.html", title="market", **ctx)

    @r.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(job_id: str) -> HTMLResponse:
        if not ID_RE.match(job_id):
            return missing("job", job_id)
        with rt.read() as s:
            job = s.get(JobRecord, job_id)
            if job is None:
                return missing("job", job_id)
            leaf = q.job_leaf(s, job_id)
            report, report_error = _inclusion(s, rt, job_id) if leaf is not None else (None, None)
            ctx = dict(job=job, spec=q.public_spec(job.spec), events=q.job_events(s, job_id),
                       leases=q.job_leases(s, job_id), leaf=leaf, report=report, report_error=report_error,
                       batch=q.find_batch(s, job.batch_id) if job.batch_id else None,
                       explanation=rt.explanations.get(job_id) if job.status == "open" else None,
                       leaf_kinds=LEAF_KINDS)
        return page("job.html", title=f"job {job_id}", **ctx)

    @r.get("/providers/{name}", response_class=HTMLResponse)
    def provider_page(name: str) -> HTMLResponse:
        if not ID_RE.match(name):
            return missing("provider", name)
        now = time.time()
        with rt.read() as s:
            p = s.get(ProviderRecord, name)
            if p is None:
                return missing("provider", name)
            summary = q.provider_summary(s, name)
        return page("provider.html", title=f"provider {name}", p=p, online=q.online(p, now, rt.config.lease_s),
                    lease_s=rt.config.lease_s, **summary)

    @r.get("/batches/{batch_id}", response_class=HTMLResponse)
    def batch_page(batch_id: str) -> HTMLResponse:
        if not HASH_RE.match(batch_id):
            return missing("batch", batch_id)
        with rt.read() as s:
            batch = q.find_batch(s, batch_id)
            if batch is None:
                return missing("batch", batch_id)
            leaves = q.batch_leaves(s, batch.batch_id)
            events = q.batch_events(s, batch.batch_id)
        chain, chain_error = _onchain_batch(rt, batch.batch_id)
        return page("batch.html", title=f"batch {short(batch.batch_id)}", batch=batch, leaves=leaves,
                    events=events, chain=chain, chain_error=chain_error, leaf_kinds=LEAF_KINDS,
                    reasons=CHALLENGE_REASONS)

    @r.get("/audit", response_class=HTMLResponse)
    def audit_page() -> HTMLResponse:
        # the service's money side (market.exchange.service.money) sets rt.money.vault when it runs a Vault
        vault = getattr(getattr(rt, "money", None), "vault", None)
        with rt.read() as s:
            liabilities = money.liabilities_wei(s)
            pending = money.pending_claims_wei(s)
            flagged = money.flagged_accounts(s)
        report, error = None, None
        if vault is not None:
            try:
                report = money_audit.audit(rt.engine, vault)
            except Exception as exc:  # the chain may be unreachable: say so on the page
                error = f"{type(exc).__name__}: {exc}"
        return page("audit.html", title="audit", vault=vault, report=report, error=error,
                    liabilities=liabilities, pending=pending, flagged=flagged)

    return r


def _round_seconds(rt: Any, rounds: list[Any]) -> dict[str, float]:
    """``{round_id: clearing seconds}`` for the rounds the running service timed (its recent observations:
    the first one that ended after the round started)."""
    recent = list(getattr(rt.metrics.round_seconds, "recent", ()))
    out: dict[str, float] = {}
    for rnd in rounds:
        for ended_at, seconds in recent:
            if ended_at >= rnd.at_s:
                out[rnd.round_id] = seconds
                break
    return out


def _inclusion(s: Session, rt: Any, job_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The inclusion report of a settled job, checked against the on-chain root (None + why when not yet)."""
    try:
        return verify_report(s, job_id, rt.chain.contract), None
    except UnknownJob as exc:
        return None, str(exc)
    except Exception as exc:  # chain unreachable: the off-chain checks are still worth showing
        log.warning("inclusion check of %s against the chain failed: %s", job_id, exc)
        try:
            return verify_report(s, job_id, None), f"the chain did not answer: {type(exc).__name__}"
        except UnknownJob as exc2:
            return None, str(exc2)


def _onchain_batch(rt: Any, batch_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The batch as the Settlement contract has it, with the current block and the challenge window state."""
    try:
        b = rt.chain.contract.get_batch(unhex(batch_id))
        block = rt.chain.chain.block_number()
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if not b.exists:
        state = "not on chain"
    elif b.finalized:
        state = "finalized"
    elif block <= b.deadline_block:
        state = f"open: challenges accepted until block {b.deadline_block} ({b.deadline_block - block} to go)"
    else:
        state = f"closed at block {b.deadline_block}, not yet finalized"
    return {"root": "0x" + b.root.hex(), "leaf_count": b.leaf_count, "total_paid_wei": b.total_paid_wei,
            "deadline_block": b.deadline_block, "challenged_count": b.challenged_count, "finalized": b.finalized,
            "exists": b.exists, "block": block, "state": state}, None
