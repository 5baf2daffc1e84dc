"""Fuzz target of the exchange API's request bodies (issue 14 "Fuzzing in the suite"): mutated signed and unsigned
bodies POSTed to the real FastAPI app in process (the ASGI app of :func:`market.exchange.service.app.create_app`
on SQLite and the in-process chain, called directly on an event loop of this thread -- the whole middleware
stack, routing, validation and exception handlers, without a socket or ``TestClient``'s thread portal, which cost
three times the request itself; no background loop, so nothing but the request changes the database).

An input is a JSON *case*: ``{"path", "mode", ...}``. ``mode = "sign"``: ``payload`` is signed for ``action`` with
the case's key (``client`` or ``provider``, two fixed test keys) and a fresh nonce, so mutated payloads get past the
signature and reach validation, ownership and the ledger; ``mode = "raw"``: ``body`` is posted as it is (the public
quote route, and pre-signed envelopes whose fields were mutated after signing). ``text_seed`` (optional) applies a
text-level mutation (punctuation, bad UTF-8, deep nesting) to the serialised body before it is sent.

Outcomes: a 2xx answer is ``accepted``; a 4xx answer whose body is ``{"error", "message", "hint"}`` (strings) and
that left every table of the database exactly as it was is a clean refusal (:class:`Refused`); anything else is a
crash: a 5xx, another body, an exception out of the app, or a refused request that changed the database. "Exactly
as it was": a digest of every row of every table, recomputed after any request that executed a statement other
than a read or transaction control (counted on the engine's cursor events; a request that wrote nothing cannot
have changed a table, so its digest is the one before).
``lease.poll`` is left out (a valid poll long-polls up to 25 s by design; tests/hardening covers its body).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import random
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

import coincurve
from eth_account import Account
from eth_hash.auto import keccak
from sqlalchemy import MetaData, event

from market.exchange.service.app import create_app
from market.exchange.service.config import ServiceConfig
from market.protocol import Action, request_digest
from market.settings import Settings
from proving.errors import RaymarketError
from tests.fuzz.engine import Target, register
from tests.fuzz.mutators import _random_scalar, mutate_document, mutate_json_text

#: Fixed throwaway test keys (never funded outside this in-process chain).
CLIENT_KEY = "0x" + keccak(b"raymarket fuzz test client key").hex()
PROVIDER_KEY = "0x" + keccak(b"raymarket fuzz test provider key").hex()
PROVIDER = "fz-p1"
TEXT_B64 = base64.b64encode(b"one sentence here.\nand another one.\n").decode()
INFERENCE = {"kind": "inference", "input_b64": TEXT_B64, "max_price_wei": "1000000", "deadline_s": 600, "cpus": 1,
             "verification": "spot-check:0.5"}
PROOF = {"kind": "proof", "circuit": "mimc7", "rounds": 1, "preimage": "7", "max_price_wei": "100000000000"}
OFFER = {"price_per_cpu_s_wei": "1000", "cpus": 4, "gpus": 0, "gpu_model": None, "memory_bytes": 2**33, "speed": 1.0}
HASH = "0x" + "11" * 32
SIG = "0x" + "22" * 65


class Refused(RaymarketError):
    """A clean refusal: a 4xx answer with the error body, the database unchanged (the target's clean outcome)."""


def _s(path: str, action: str, payload: dict, key: str = "client") -> dict:
    return {"path": path, "mode": "sign", "action": action, "key": key, "payload": payload}


#: The valid cases (the corpus): every client and provider action but the long poll.
CASES: list[dict] = [
    {"path": "/v1/quote", "mode": "raw", "body": {"spec": INFERENCE}},
    {"path": "/v1/quote", "mode": "raw", "body": {"spec": {**PROOF, "job_id": "j-q"}}},
    _s("/v1/jobs", Action.JOB_SUBMIT, {"spec": INFERENCE}),
    _s("/v1/jobs", Action.JOB_SUBMIT, {"spec": {**PROOF, "collateral_wei": "20000000000"}}),
    _s("/v1/jobs/batch", Action.JOB_SUBMIT_BATCH, {"specs": [INFERENCE, {**INFERENCE, "cpus": 2}]}),
    _s("/v1/jobs/j-fz-1/cancel", Action.JOB_CANCEL, {"job_id": "j-fz-1"}),
    _s("/v1/jobs/j-fz-1/result", Action.JOB_RESULT, {"job_id": "j-fz-1"}),
    _s("/v1/jobs/j-fz-1/logs", Action.JOB_LOGS, {"job_id": "j-fz-1"}),
    _s("/v1/balance", Action.ACCOUNT_BALANCE, {}),
    _s("/v1/withdraw", Action.ACCOUNT_WITHDRAW, {"amount_wei": "1"}),
    _s("/v1/dev/faucet", Action.DEV_FAUCET, {"amount_wei": "1000"}),
    _s("/v1/providers/register", Action.PROVIDER_REGISTER, {"name": PROVIDER, "offer": OFFER}, "provider"),
    _s("/v1/providers/heartbeat", Action.PROVIDER_HEARTBEAT, {"name": PROVIDER, "running": []}, "provider"),
    _s("/v1/leases/l-fz-1/complete", Action.LEASE_COMPLETE,
       {"lease_id": "l-fz-1", "job_id": "j-fz-1", "result_b64": "AAAA", "result_hash": HASH, "signature": SIG},
       "provider"),
    _s("/v1/leases/l-fz-1/fail", Action.LEASE_FAIL, {"lease_id": "l-fz-1", "job_id": "j-fz-1", "reason": "x"},
       "provider"),
    {"path": "/v1/jobs", "mode": "envelope", "action": Action.JOB_SUBMIT, "key": "client",
     "payload": {"spec": INFERENCE}, "envelope": {}},
]

#: Values that hit the API's own validators: wei strings, ids, policies, signatures, addresses.
API_VALUES = (
    "0", "1", "-1", "1e18", "0x10", str(2**256), str(2**256 - 1), "9" * 79, 2**63, 2**64, -1, 0, 1.5, True, None,
    "j-fz-1", "../x", "x" * 65, "", "a/b", "l-fz-1", "mimc7", "ab" * 32, "spot-check:0.1", "spot-check:2",
    "attest-only", "proof", "0x" + "00" * 20, "0x" + "ab" * 20, SIG, "0x" + "00" * 65, HASH, "AAAA", "!!!", 10**6,
    10_001, 365, 2, 1, 25.0, 86400 * 31, float("nan"), [], {}, [INFERENCE], {"kind": "proof"},
)


def mutate_case(rng: random.Random, data: bytes) -> bytes:
    """Mutate one case: its payload (or body / envelope fields) structurally, and sometimes its serialised text."""
    case = json.loads(data)
    field = "body" if case["mode"] == "raw" else "payload"
    if case["mode"] == "envelope" and rng.random() < 0.6:
        field = "envelope"
        name = rng.choice(("action", "payload", "signer", "nonce", "expiry", "signature", "extra"))
        case["envelope"][name] = rng.choice(API_VALUES) if rng.random() < 0.7 else _random_scalar(rng)
    else:
        for _ in range(rng.choice((1, 1, 2, 3))):
            case[field] = (_mutate_fields(rng, case[field]) if isinstance(case[field], dict) and rng.random() < 0.5
                           else mutate_document(rng, case[field]))
    if rng.random() < 0.2:
        case["text_seed"] = rng.getrandbits(32)
    return json.dumps(case).encode()


def _mutate_fields(rng: random.Random, doc: dict) -> dict:
    """Set one leaf (or the ``spec`` fields) to an API boundary value."""
    doc = json.loads(json.dumps(doc))
    target = doc.get("spec") if isinstance(doc.get("spec"), dict) and rng.random() < 0.7 else doc
    keys = list(target) + ["extra", "verification", "collateral_wei", "job_id"]
    target[rng.choice(keys)] = rng.choice(API_VALUES)
    return doc


#: Statements that cannot change a table (the first keyword); any other one makes the next check digest the tables.
READ_ONLY = frozenset({"SELECT", "PRAGMA", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "END"})


class World:
    """The app in process (built once per process), an event loop to call it on, two funded parties, and a digest
    of every table (with the count of writing statements it was taken at)."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="rm-fuzz-api-")
        settings = Settings(data_dir=Path(self.tmp.name) / "data", settlement_window_s=3600.0)
        config = ServiceConfig(dev=True, lease_s=30.0, max_proof_rounds=1, max_body_bytes=2**20,
                               max_input_bytes=64 * 2**10, max_result_bytes=2**18)
        self.app = create_app(settings, config, run_loop=False)  # no lifespan: it only starts the loop
        self.loop = asyncio.new_event_loop()
        self.rt = self.app.state.runtime
        self.domain = self.rt.domain
        self.keys = {"client": Account.from_key(CLIENT_KEY), "provider": Account.from_key(PROVIDER_KEY)}
        self.nonces = itertools.count(1)
        self.writes = 0
        event.listen(self.rt.engine, "before_cursor_execute", self._count_write)
        meta = MetaData()
        meta.reflect(self.rt.engine)
        self.table_names = sorted(meta.tables)
        self._post(_s("/v1/providers/register", Action.PROVIDER_REGISTER, {"name": PROVIDER, "offer": OFFER},
                      "provider"), expect_ok=True)
        self._post(_s("/v1/dev/faucet", Action.DEV_FAUCET, {"amount_wei": str(10**21)}), expect_ok=True)
        # the MiMC-7 example circuit is set up on first use (seconds): once here, not in a timed case
        self._post(_s("/v1/jobs", Action.JOB_SUBMIT, {"spec": {**PROOF, "job_id": "j-warm"}}), expect_ok=True)
        self.last: tuple[int, dict[str, str]] | None = None  # (writes counted, digest) when last taken

    def _count_write(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        head = statement.lstrip().split(None, 1)
        if not head or head[0].upper() not in READ_ONLY:
            self.writes += 1

    def body(self, case: dict) -> bytes:
        """The bytes to POST for ``case``."""
        if case["mode"] == "raw":
            text = json.dumps(case["body"]).encode()
        else:
            env = _signed(self.keys[case["key"]], case["action"], case["payload"], self.domain, next(self.nonces))
            env.update(case.get("envelope") or {})
            text = json.dumps(env).encode()
        if "text_seed" in case:
            text = mutate_json_text(random.Random(case["text_seed"]), text)
        return text

    def _post(self, case: dict, expect_ok: bool = False) -> tuple[int, bytes]:
        """POST ``case`` to the app: ``(status, body bytes)``; an exception out of the app propagates."""
        status, body = self.loop.run_until_complete(self._asgi(case["path"], self.body(case)))
        if expect_ok and status != 200:
            raise RuntimeError(f"fuzz world set-up: {case['path']} answered {status} {body[:300]!r}")
        return status, body

    async def _asgi(self, path: str, body: bytes) -> tuple[int, bytes]:
        """One HTTP request through the ASGI app, as a server would send it (a body in one message, then a
        disconnect once the answer is complete)."""
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "root_path": "", "client": ("127.0.0.1", 50000), "server": ("testserver", 80), "state": {},
                 "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())]}
        done, sent, status, chunks = asyncio.Event(), False, 0, []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    done.set()

        await self.app(scope, receive, send)
        return status, b"".join(chunks)

    def digest(self) -> dict[str, str]:
        """Table -> sha256 over its rows (the database is small: one client's fuzzed jobs; raw DB-API cursor, so
        a digest costs a few milliseconds and is not counted as a write)."""
        out = {}
        conn = self.rt.engine.raw_connection()
        try:
            cur = conn.cursor()
            for name in self.table_names:
                cur.execute(f'SELECT * FROM "{name}"')  # noqa: S608 - names from the schema, not from input
                out[name] = hashlib.sha256(repr(cur.fetchall()).encode()).hexdigest()
            conn.rollback()
        finally:
            conn.close()
        return out

    def current(self) -> dict[str, str]:
        """The digest now: the last one when no writing statement ran since, else a fresh one."""
        if self.last is None or self.last[0] != self.writes:
            self.last = (self.writes, self.digest())
        return self.last[1]


def _signed(acct: Any, action: str, payload: Any, domain: Any, nonce: int) -> dict[str, Any]:
    """A signed envelope as a dict (any JSON ``payload``, even one the model refuses, is signed as it is). Signed
    with libsecp256k1 directly (``r || s || v``, v = 27 + recovery id, low s: what ``eth_account`` makes, in a
    tenth of its time)."""
    expiry = int(time.time()) + 120
    rsv = _secp_key(bytes(acct.key)).sign_recoverable(request_digest(action, payload, nonce, expiry, domain),
                                                      hasher=None)
    return {"action": action, "payload": payload, "signer": acct.address, "nonce": nonce, "expiry": expiry,
            "signature": "0x" + (rsv[:64] + bytes([27 + rsv[64]])).hex()}


@cache
def _secp_key(secret: bytes) -> coincurve.PrivateKey:
    return coincurve.PrivateKey(secret)


@cache
def world() -> World:
    """The process's :class:`World`."""
    return World()


def check_api(data: bytes) -> None:
    """POST the case; return on 2xx, raise :class:`Refused` on a clean refusal, AssertionError otherwise."""
    w = world()
    case = json.loads(data)
    before = w.current()
    status, text = w._post(case)
    if 200 <= status < 300:
        return
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    shown = text[:500].decode(errors="replace")
    assert 400 <= status < 500, f"{status}: {shown}"
    assert isinstance(body, dict) and all(isinstance(body.get(k), str) for k in ("error", "message", "hint")), \
        f"{status} without the error body: {shown}"
    after = w.current()
    changed = sorted(t for t in after if after[t] != before.get(t))
    assert not changed, f"refused ({status} {body['error']}: {body['message'][:200]}) but tables " \
                        f"{changed} changed"
    raise Refused(f"{status} {body['error']}: {body['message'][:200]}")


def corpus() -> list[bytes]:
    """The cases of :data:`CASES` as JSON (building the :class:`World` first, so no timed case pays for it)."""
    world()
    return [json.dumps(c).encode() for c in CASES]


API = register(Target("api_body", corpus, mutate_case, check_api, clean=(Refused,)))
