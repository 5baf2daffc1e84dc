"""Request-shape limits enforced before FastAPI/Starlette parse a body.

:class:`DepthLimit` refuses request bodies nested deeper than ``MAX_BODY_DEPTH`` brackets. The reason is a
crash, not style: ``py_ecc`` (imported by ``proving``, which this service imports) raises the interpreter's
recursion limit to 100,000, so ``json.loads('[' * 100_000)`` overflows the C stack and SIGSEGVs the whole
exchange instead of raising ``RecursionError``. The scan is :func:`proving.formats.snarkjs_json.json_depth`
(linear, strings skipped), run on the buffered body; mount it inside :class:`market.exchange.service.app.BodyLimit`
so the buffered body is already size-bounded.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from proving.formats.snarkjs_json import json_depth

from market.exchange.service.errors import ServiceError
from market.protocol import ErrorCode

#: Deepest bracket nesting accepted in a request body (signed envelopes nest about 4 deep).
MAX_BODY_DEPTH = 64


class DepthLimit:
    """ASGI middleware: 400 ``invalid`` for a body nested deeper than ``max_depth``, before anything parses it.

    The whole body is read (the outer size limit bounds it), scanned, and replayed to the app unchanged.
    Non-HTTP scopes and empty bodies pass through.
    """

    def __init__(self, app: Any, max_depth: int = MAX_BODY_DEPTH) -> None:
        self.app, self.max_depth = app, max_depth

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        chunks, more, last = [], True, None
        while more:
            last = await receive()
            if last["type"] != "http.request":
                break  # client disconnected: let the app see it
            chunks.append(last.get("body", b""))
            more = last.get("more_body", False)
        body = b"".join(chunks)
        # latin-1 never fails and keeps every ASCII byte ('"', '\\', brackets) where UTF-8 has it.
        if body and json_depth(body.decode("latin-1"), self.max_depth) > self.max_depth:
            return await too_deep(self.max_depth)(scope, receive, send)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                if last is not None and last["type"] != "http.request":
                    return last
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def too_deep(max_depth: int) -> JSONResponse:
    """The 400 ``invalid`` refusal of a body nested deeper than ``max_depth``."""
    err = ServiceError(ErrorCode.INVALID, f"body: JSON nested deeper than {max_depth} levels",
                       "send a flatter document", status=400)
    return JSONResponse(err.body(), status_code=400)
