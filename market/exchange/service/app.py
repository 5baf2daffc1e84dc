"""The exchange service: a FastAPI app over one :class:`Runtime` (the only process that opens the database and
holds the operator's settlement key), and :func:`serve` to run it with uvicorn.

``create_app(settings)`` migrates the database, connects the chain (``settings.rpc_url``, else an in-process
EVM owned by this process), finds or deploys the Settlement contract, and mounts the routes; the background
loop (rounds, lease expiry, settlement, watcher) runs while the app is served.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sqlalchemy.exc import StatementError

from market.ledger import InsufficientFunds, LedgerError
from market.exchange.service import (batches, challenges, money, routes_circuits, routes_client, routes_provider,
                                     routes_public)
from market.exchange import web
from market.exchange.service.config import ServiceConfig
from market.exchange.service.errors import ServiceError
from market.exchange.service.limits import DepthLimit
from market.exchange.service.loop import Loop
from market.exchange.service.runtime import Runtime, grace_open_leases, open_runtime
from market.protocol import ErrorCode

log = logging.getLogger("raymarket.exchange")


class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413 ``too_large`` (Content-Length or streamed).
    The streamed upload routes in :attr:`STREAMED` bound their bodies themselves (against a signed size)."""

    STREAMED = frozenset({"/v1/circuits/upload"})

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in self.STREAMED:
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _too_large(self.max_bytes)(scope, receive, send)
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(self.max_bytes)(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _too_large(max_bytes: int) -> JSONResponse:
    return JSONResponse(ServiceError(ErrorCode.TOO_LARGE, f"request body over {max_bytes} bytes",
                                     "send less (split the job)").body(), status_code=413)


def _validation_error(_request: Request, exc: Any) -> JSONResponse:
    """FastAPI's request validation (body shape, path ids): 422 ``invalid`` naming the field."""
    err = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid request"}
    field = ".".join(str(p) for p in err["loc"])
    body = {"error": ErrorCode.INVALID, "message": f"{field}: {err['msg']}", "hint": f"fix the field {field!r}"}
    return JSONResponse(body, status_code=422)


def _http_error(_request: Request, exc: Any) -> JSONResponse:
    """Starlette's own refusals (a body that is not JSON or not UTF-8, an unknown route, a wrong method) in the
    refusal body ``{"error", "message", "hint"}`` like every other 4xx (issue 14: found by the API-body fuzzer)."""
    code = {404: ErrorCode.NOT_FOUND}.get(exc.status_code, ErrorCode.INVALID)
    body = {"error": code, "message": str(exc.detail), "hint": "send a JSON object (UTF-8) to a route of /v1 "
            "(see GET /v1/info)" if code == ErrorCode.INVALID else "see the routes of the API (GET /v1/info)"}
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _service_error(_request: Request, exc: Any) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


def _statement_error(_request: Request, exc: Any) -> JSONResponse:
    """A value the database cannot hold (e.g. a wei amount over SQLite's 64-bit range): 422, nothing stored."""
    if isinstance(exc.orig, (ValueError, TypeError)):
        return JSONResponse({"error": ErrorCode.INVALID, "message": str(exc.orig), "hint": "use smaller values"},
                            status_code=422)
    log.exception("database error", exc_info=exc)
    return JSONResponse({"error": "internal", "message": "database error", "hint": "retry later"}, status_code=500)


def _ledger_error(_request: Request, exc: Any) -> JSONResponse:
    """A ledger refusal the routes did not map themselves (the transaction rolled back)."""
    code = ErrorCode.INSUFFICIENT_FUNDS if isinstance(exc, InsufficientFunds) else ErrorCode.CONFLICT
    return JSONResponse({"error": code, "message": str(exc), "hint": ""}, status_code=402 if code != "conflict" else 409)


def build_app(rt: Runtime, *, run_loop: bool = True) -> FastAPI:
    """The FastAPI app over an opened runtime; the loop starts and stops with the app when ``run_loop``."""
    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        grace_open_leases(rt, time.time())
        loop = Loop(rt).start() if run_loop else None
        try:
            yield
        finally:
            if loop is not None:
                loop.stop()
            rt.close()

    app = FastAPI(title="raymarket exchange", version=routes_public.API_VERSION, lifespan=lifespan)
    app.state.runtime = rt
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StatementError, _statement_error)
    app.add_exception_handler(LedgerError, _ledger_error)
    money.attach(rt)  # the Vault: deposit watcher, epochs, audit (issue 12)
    batches.attach(rt)  # the proving pipeline's stage metrics (proof batches, market.exchange.service.batches)
    for module in (routes_public, routes_client, routes_provider, money, routes_circuits, challenges, batches):
        app.include_router(module.router(rt))
    app.include_router(web.router(rt))  # the web console (HTML pages), market.exchange.web
    app.add_middleware(DepthLimit)  # inner: sees a size-bounded body; nesting bounded before any parse
    app.add_middleware(BodyLimit, max_bytes=rt.config.max_body_bytes)
    return app


def create_app(settings: Any, config: ServiceConfig | None = None, *, run_loop: bool = True) -> FastAPI:
    """Open the runtime for ``settings`` (a :class:`market.settings.Settings`) and build the app.

    Raises:
        contracts.errors.ChainUnreachable: ``settings.rpc_url`` does not answer.
        ValueError: a configured contract has no code on the chain.
    """
    config = config or ServiceConfig.from_settings(settings)
    return build_app(open_runtime(settings, config), run_loop=run_loop)


def serve(settings: Any, host: str = "127.0.0.1", port: int = 8765, config: ServiceConfig | None = None,
          log_level: str = "info") -> None:
    """Run the exchange service with uvicorn until SIGINT/SIGTERM (blocks)."""
    app = create_app(settings, config)
    rt: Runtime = app.state.runtime
    log.info("exchange: chain %s (%s), Settlement %s", rt.domain.chain_id, rt.chain.chain.kind,
             rt.domain.verifying_contract)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
