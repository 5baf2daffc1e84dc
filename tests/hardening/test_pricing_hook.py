"""Issue 14 finding 7: provider pricing hooks run in a worker process with no access to the exchange's memory,
environment or database, killed at their time limit; asks <= 0 (and non-integers, out-of-range) are refused
with the reason in the round's explanation (unit level, then through the real service)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil
import pytest

import market.ledger
from market.client import Client, ProviderClient
from market.core.matching import RoundInputs
from market.core.orders import JobOrder, Offer, ask_wei
from market.core.pricing_hook import check_ask
from market.exchange.pricing_hooks import WORKER, HookLimits, namespace_prefix, price_round, run_hook
from market.exchange.service.config import ServiceConfig
from market.settings import Settings
from tests.service.conftest import LEASE_S, SMALL_LIMITS, new_key
from tests.service.harness import ThreadService

NOW = 1_000_000.0
SECRET = "TOPSECRET-db-password-7f3a"
REPO = str(Path(__file__).resolve().parents[2])

HOOKS = f'''
import os, time

SECRET = {SECRET!r}

def env_probe(job, offer):
    leaked = 0
    if any(SECRET in v for v in os.environ.values()) or "DATABASE_URL" in os.environ:
        leaked |= 1
    if any(k.startswith("RAYMARKET_") for k in os.environ):
        leaked |= 2
    try:
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                with open(f"/proc/{{pid}}/environ", "rb") as fh:
                    if SECRET.encode() in fh.read():
                        leaked |= 4
    except OSError:
        pass
    if os.getcwd() == {os.getcwd()!r}:
        leaked |= 8
    return 1000 + leaked

def patch_exchange(job, offer):
    import sys
    sys.path.insert(0, {REPO!r})  # the exchange's code is not on the worker's path: the hook puts it there
    import market.ledger, market.core.orders
    market.ledger.balance = lambda *a, **k: 10**30
    market.core.orders.ask_wei = lambda *a, **k: 1
    return 0

def forever(job, offer):
    time.sleep(3600)

def by_id(job, offer):
    return {{"zero": 0, "neg": -5, "huge": 2**62, "float": 1.5, "text": "10", "ok": 123}}[job["job_id"]]
'''


def job(job_id: str = "j1", **kw) -> JobOrder:
    base = dict(client="alice", kind="proof", duration_estimate_s=100, max_price_wei=10**9, deadline_s=NOW + 10**6)
    return JobOrder(job_id, **{**base, **kw})


def offer(provider: str = "p1", **kw) -> Offer:
    base = dict(cpus=8, memory_bytes=2**36, price_per_cpu_s_wei=10, free_bond_wei=10**12)
    return Offer(provider, **{**base, **kw})


@pytest.fixture()
def hooks(tmp_path):
    path = tmp_path / "hooks.py"
    path.write_text(HOOKS)
    return str(path)


def test_hook_sees_no_database_url_or_secret(hooks, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://raymarket:{SECRET}@127.0.0.1:5432/raymarket")
    monkeypatch.setenv("RAYMARKET_DATABASE_URL", f"postgresql://raymarket:{SECRET}@127.0.0.1/x")
    monkeypatch.setenv("RAYMARKET_OPERATOR_KEY", "0x" + "ab" * 32)
    report = run_hook(f"{hooks}:env_probe", offer(), [job()])
    bits = report.asks[("j1", "p1")] - 1000
    assert report.hook_calls_ok == 1
    assert bits & ~4 == 0, f"environment or cwd leaked (bits {bits:04b})"
    if namespace_prefix():  # a PID namespace: no other process (nor this one's environ) is visible
        assert bits == 0


def test_monkeypatching_market_ledger_changes_nothing_here(hooks) -> None:
    balance, static = market.ledger.balance, market.core.orders.ask_wei
    report = run_hook(f"{hooks}:patch_exchange", offer(), [job()], timeout_s=60.0)  # it imports the ledger
    assert market.ledger.balance is balance and market.core.orders.ask_wei is static
    assert report.refusals and "ask 0 wei refused" in report.refusals[0].reason


def _workers() -> list[psutil.Process]:
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if str(WORKER) in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:
            pass
    return out


def test_a_hook_that_sleeps_forever_is_killed_and_the_round_finishes(hooks) -> None:
    jobs = (job("a"), job("b"))
    o = offer()
    seen: list[psutil.Process] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.extend(p for p in _workers() if p.pid not in {q.pid for q in seen})
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.monotonic()
    inputs, notes = price_round(RoundInputs(jobs=jobs, offers=(o,), now_s=NOW), {"p1": f"{hooks}:forever"},
                                HookLimits(timeout_s=1.0))
    elapsed = time.monotonic() - t0
    done.set()
    watcher.join()
    result = inputs.clear()
    assert elapsed < 1.0 + 10.0 + 5.0  # start-up allowance + the limit; never the hour it sleeps
    assert seen, "the worker process was never seen"
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in seen), "a worker outlived its limit"
    assert {a.job_id: a.ask_wei for a in result.assignments} == {"a": ask_wei(jobs[0], o), "b": ask_wei(jobs[1], o)}
    assert notes == {}


def test_asks_of_zero_or_less_non_integers_and_out_of_range_are_refused(hooks) -> None:
    assert check_ask(0)[0] is None and "at least 1 wei" in check_ask(0)[1]
    assert check_ask(-1)[0] is None and check_ask(True)[0] is None and check_ask(2**62)[0] is None
    assert check_ask(1) == (1, "")
    ids = ("zero", "neg", "huge", "float", "text", "ok")
    jobs = tuple(job(i) for i in ids)
    inputs, notes = price_round(RoundInputs(jobs=jobs, offers=(offer(),), now_s=NOW), {"p1": f"{hooks}:by_id"})
    result = inputs.clear()
    assert [(a.job_id, a.ask_wei) for a in result.assignments] == [("ok", 123)]
    assert "ask 0 wei refused" in notes["zero"][0] and "ask -5 wei refused" in notes["neg"][0]
    assert "out of range" in notes["huge"][0]
    assert "1.5" in notes["float"][0] and "'10'" in notes["text"][0] and "ok" not in notes
    assert result.unmatched == sorted(ids[:-1])  # the provider made no bid on them


def test_the_service_refuses_a_zero_ask_with_the_reason_and_keeps_its_ledger(tmp_path, hooks) -> None:
    settings = Settings(data_dir=tmp_path / "data", settlement_window_s=1.0, max_attempts=3)
    config = ServiceConfig(lease_s=LEASE_S, round_interval_s=0.1, dev=True, **SMALL_LIMITS,
                           pricing_hooks={"p1": f"{hooks}:patch_exchange"}, pricing_hook_timeout_s=60.0)
    balance = market.ledger.balance
    svc = ThreadService(settings, config).start()
    try:
        client = Client(svc.url, new_key())
        client.faucet(10**18)
        key = new_key()
        ProviderClient(svc.url, key).register("p1", offer={"price_per_cpu_s_wei": 10**9, "cpus": 4, "gpus": 0,
                                                           "gpu_model": None, "memory_bytes": 8 * 2**30})
        Client(svc.url, key).faucet(0, bond_wei=10**17, provider_name="p1")
        ProviderClient(svc.url, key).heartbeat("p1")
        job_id = client.submit_proof(rounds=4, preimage=7, max_price_wei=10**17, deadline_s=600)["job_id"]
        deadline, view = time.monotonic() + 60, {}
        while time.monotonic() < deadline:
            view = client.status(job_id)
            if "ask 0 wei refused" in str(view.get("explanation") or ""):
                break
            time.sleep(0.2)
        assert "pricing hook of p1 refused: ask 0 wei refused" in str(view.get("explanation")), view
        assert view["status"] == "open" and market.ledger.balance is balance
    finally:
        svc.stop()


def test_an_offer_priced_zero_still_asks_at_least_one_wei_per_second() -> None:
    free = offer(price_per_cpu_s_wei=0)
    j = job(duration_estimate_s=100)
    assert ask_wei(j, free) == 100  # 100 s x the 1 wei/s floor: never a zero ask that fails payment
    result = RoundInputs(jobs=(j,), offers=(free,), now_s=NOW).clear()
    assert [(a.ask_wei, a.price_wei) for a in result.assignments] == [(100, 100)]
