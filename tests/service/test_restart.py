"""The exchange SIGKILLed mid-job and restarted (a real subprocess on Postgres + anvil): the provider keeps
working meanwhile, the job completes and is paid exactly once, a retried upload after another kill gets the
same answer, and the Settlement contract is the one remembered in the database."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from market import ledger
from market.client import ApiError, Client, ProviderClient
from tests.service.conftest import ROUNDS, new_key
from tests.service.harness import Heartbeats, ProcessService, attest, payments, run_lease


def _retry(call, timeout_s=60.0):
    """Call until the service answers (it may be restarting)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except ApiError as exc:
            if exc.code != "unreachable" or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_sigkill_mid_job_then_restart_pays_exactly_once(pg_url, anvil, tmp_path, keys_dir):
    args = ["--database-url", pg_url, "--rpc-url", anvil.rpc_url, "--data-dir", str(tmp_path / "data"), "--dev",
            "--lease-s", "6", "--round-interval-s", "0.2", "--settlement-window-s", "1"]
    log_dir = Path(tempfile.mkdtemp(prefix="rm-svc-log-"))  # outside pytest's rotating basetemp
    svc = ProcessService(args, log_dir / "service.log").start()
    try:
        contract = Client(svc.url).info()["contract"]
        client = Client(svc.url, new_key())
        client.faucet(10**18)
        key = new_key()
        pc = ProviderClient(svc.url, key)
        pc.register("p1", offer={"price_per_cpu_s_wei": 10**9, "cpus": 2, "memory_bytes": 4 * 2**30})
        Client(svc.url, key).faucet(0, bond_wei=10**17, provider_name="p1")
        job = client.submit_proof(4242, rounds=ROUNDS, max_price_wei=10**15, collateral_wei=10**16)
        lease = _retry(lambda: pc.poll("p1", wait_s=10))[0]
        with Heartbeats(pc, "p1", [job["job_id"]], every_s=0.3):
            svc.kill()  # mid-job: the provider has the lease and keeps computing
            result = run_lease(lease, keys_dir)
            time.sleep(7)  # down for longer than the lease: the restart must not expire it
            svc.start()
            h, sig = attest(lease, key, result)
            answer = _retry(lambda: pc.complete(lease, result=result, result_hash=h, signature=sig))
        assert answer == {"job_id": job["job_id"], "status": "paid", "reason": None}
        svc.kill()
        svc.start()
        assert _retry(lambda: pc.complete(lease, result=result, result_hash=h, signature=sig)) == answer
        assert Client(svc.url).info()["contract"] == contract
        deadline = time.monotonic() + 30
        while (final := _retry(lambda: client.status(job["job_id"])))["status"] != "settled":
            assert time.monotonic() < deadline, final
            time.sleep(0.2)
        assert final["attempt"] == 1 and [e["event"] for e in final["history"]].count("paid") == 1
        assert client.result(job["job_id"]) == result
    finally:
        svc.stop()
    engine = create_engine(pg_url)
    with Session(engine) as s:
        price = int(final["price_wei"])
        assert payments(s, job["job_id"]) == [(ledger.provider_account("p1"), price - price * 100 // 10_000)]
        assert ledger.balance(s, ledger.client_account(client.address)) == 10**18 - price
        assert ledger.check_invariants(s) == []
    engine.dispose()


def test_in_process_chain_is_redeployed_on_restart(tmp_path):
    """The in-process EVM lives and dies with the service: a restart (even told the old address, as ``dev up``'s
    config does) deploys the Settlement again on the new chain instead of failing (same deployer and nonce:
    the same address, so clients' cached domain stays valid)."""
    from market.exchange.service import ServiceConfig
    from market.exchange.service.runtime import open_runtime
    from market.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    first = open_runtime(settings, ServiceConfig())
    old = first.domain.verifying_contract
    first.close()
    second = open_runtime(settings, ServiceConfig(contract=old))
    try:
        assert second.domain.verifying_contract == old
        assert len(second.chain.chain.w3.eth.get_code(old)) > 0
    finally:
        second.close()
