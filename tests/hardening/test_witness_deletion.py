"""Issue 13: "a witness is the client's secret: it goes only to the provider that proves it, is never logged, and
is deleted after the job". A circuit job submitted with ``--witness`` (``raymarket circuit add`` of a zkey, then
``submit proof --circuit ID --witness W.wtns``) is proved by a real provider agent and paid; afterwards none of
the witness's private values (as the .wtns stores them, 32 bytes little-endian, and as decimal or hex text) is
in any file of the exchange's data dir (its SQLite database, WAL included), of the agent's data dir, of the
agent's Ray session dir, or in the agent's log and the job's logs. While the job waited, the same search found
the witness in the exchange's files (the search is able to see it)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app as cli_app
from market.client import Client
from market.core.tickets import dev_proving_key
from market.db.models import JobBlob
from market.exchange import circuits
from market.exchange.service import ServiceConfig
from market.settings import Settings
from proving.field import FR_MODULUS
from proving.formats.wtns_file import read_wtns
from proving.formats.zkey import zkey_bytes
from tests.providers.harness import AgentProcess, bond, make_keystore, wait_for
from tests.service.harness import ThreadService

ROUNDS = 6


def needles(private: list[int]) -> dict[bytes, str]:
    """Byte strings that would reveal a private witness value -> what they are."""
    out: dict[bytes, str] = {}
    for i, v in enumerate(private):
        out[v.to_bytes(32, "little")] = f"value {i} as .wtns bytes"
        out[v.to_bytes(32, "big")] = f"value {i} big-endian"
        out[str(v).encode()] = f"value {i} in decimal"
        out[format(v, "x").encode()] = f"value {i} in hex"
    return out


def found_in(roots: list[Path], patterns: dict[bytes, str]) -> list[str]:
    """``file: what`` for every pattern present in any file under ``roots``."""
    hits = []
    for root in roots:
        for f in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            try:
                data = f.read_bytes()
            except OSError:
                continue
            hits += [f"{f}: {what}" for pat, what in patterns.items() if pat in data]
    return hits


@pytest.mark.ray
@pytest.mark.slow
def test_witness_is_gone_everywhere_after_the_job(tmp_path):
    exchange_dir = tmp_path / "exchange"
    settings = Settings(data_dir=exchange_dir, settlement_window_s=1.0, max_attempts=3)
    svc = ThreadService(settings, ServiceConfig(lease_s=10.0, round_interval_s=0.2, dev=True)).start()
    agent = AgentProcess("prover", svc.url, tmp_path, cpus=1)
    try:
        agent.start()
        keystore = tmp_path / "client.keystore.json"
        key, password_file = make_keystore(keystore)
        Client(svc.url, key).faucet(10**18)
        common = ["--exchange", svc.url, "--data-dir", str(tmp_path / "client"), "--key", str(keystore),
                  "--password-file", str(password_file)]
        zkey = tmp_path / "circuit_final.zkey"
        zkey.write_bytes(zkey_bytes(dev_proving_key(ROUNDS, tmp_path / "keys")))
        runner = CliRunner()
        added = runner.invoke(cli_app, ["circuit", "add", str(zkey), "--json", *common], catch_exceptions=False)
        assert added.exit_code == 0, added.output
        cid = json.loads(added.stdout)["circuit_id"]

        preimage = secrets.randbelow(FR_MODULUS - 2**200) + 2**200  # a distinctive secret
        wtns = tmp_path / "witness.wtns"
        wtns.write_bytes(circuits.mimc_witness(preimage, ROUNDS))
        w = read_wtns(wtns)
        private = [v for v in w[2:] if v > 2**64]  # w[0] = 1, w[1] = the public hash
        assert preimage in private and len(private) >= 3 * ROUNDS
        patterns = needles(private)

        agent.wait_started(600)
        sub = runner.invoke(cli_app, ["submit", "proof", "--circuit", cid, "--witness", str(wtns), "--max-price",
                                      str(10**15), "--json", *common], catch_exceptions=False)
        assert sub.exit_code == 0, sub.output
        job_id = json.loads(sub.stdout)["job_id"]
        # the agent is not bonded yet: the job waits, and the search finds its witness in the exchange's files
        with svc.runtime.read() as s:
            assert s.get(JobBlob, (job_id, "witness")) is not None
        assert found_in([exchange_dir], patterns), "the search cannot see the stored witness"

        bond(svc.url, agent)
        client = Client(svc.url, key)
        job = client.wait(job_id, timeout_s=600)
        assert job["status"] in ("paid", "settled") and job["provider"] == "prover", job
        with svc.runtime.read() as s:
            assert s.get(JobBlob, (job_id, "witness")) is None
        wait_for(lambda: not circuits.scrub_pending(str(svc.runtime.engine.url)), 60, "the WAL scrub")

        cluster = agent.cluster
        roots = [exchange_dir, agent.data_dir] + ([Path(cluster.temp_dir)] if cluster and cluster.temp_dir else [])
        assert found_in(roots, patterns) == []
        logs = ("\n".join(client.logs(job_id)) + agent.log()).encode()
        assert b"started proof job" in logs
        assert not [what for pat, what in patterns.items() if pat in logs]
    finally:
        agent.cleanup()
        svc.stop()
