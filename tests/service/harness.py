"""Test helpers for the exchange service: run it (in a thread, or as a subprocess that can be SIGKILLed),
act as a provider through ``ProviderClient`` with real results, and snapshot tables for before/after checks."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from eth_account import Account
from eth_hash.auto import keccak
from sqlalchemy import create_engine, select, text

from contracts.attestation import Attestation, Eip712Domain, JobKind, Verification, job_id_bytes32, sign_attestation
from market.core.tickets import canonical_proof_bytes, dev_proving_key
from market.exchange.service import ServiceConfig, create_app
from market.settlement.audit import audit
from proving.circuits.mimc import preimage_circuit
from proving.formats.snarkjs_json import proof_to_json, public_to_json
from proving.groth16.prover import prove
from tests.fixtures.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_healthy(url: str, timeout_s: float = 90.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``GET url/healthz`` answers 200 (raises RuntimeError on timeout or process exit)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"service at {url} not healthy within {timeout_s} s")


class ThreadService:
    """The real service (uvicorn) in a thread of the test process, on a free port."""

    def __init__(self, settings: Any, config: ServiceConfig) -> None:
        self.app = create_app(settings, config)
        self.runtime = self.app.state.runtime
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "ThreadService":
        self.thread.start()
        wait_healthy(self.url, 30)
        return self

    def stop(self, *, check_audit: bool = True) -> None:
        """Stop the server (and its background loop); then, unless ``check_audit`` is False, apply every
        confirmed Vault event and fail the test when the audit is not balanced (issue 12: the Vault holds exactly
        what the ledger owes after every test)."""
        self.server.should_exit = True
        self.thread.join(20)
        if check_audit:
            self.check_audit()

    def check_audit(self) -> Any:
        """Apply the confirmed Vault events and audit; raise AssertionError with the figures when unbalanced.
        Returns the :class:`market.settlement.audit.AuditReport`."""
        m = self.runtime.money
        m.watcher.poll_once()
        report = audit(self.runtime.engine, m.vault)
        assert report.balanced, unbalanced_message(report.to_json())
        return report


def unbalanced_message(report: dict[str, Any]) -> str:
    """The failure text of an unbalanced audit (``AuditReport.to_json()`` or ``GET /v1/audit``)."""
    return (f"audit unbalanced at block {report['checked_at_block']}: the Vault holds "
            f"{report['contract_balance_wei']} wei, the ledger owes {report['ledger_liabilities_wei']} wei "
            f"(difference {report['difference_wei']} wei, pending claims {report['pending_claims_wei']} wei, "
            f"flagged {report['flagged']})")


class ProcessService:
    """The real service as ``python -m market.exchange.service`` (SIGKILL-able, restartable on the same port)."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args, self.log_path, self.proc = args, log_path, None

    def start(self) -> "ProcessService":
        log = open(self.log_path, "ab")
        cmd = [sys.executable, "-m", "market.exchange.service", "--port", str(self.port), *self.args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONPATH=str(ROOT)))
        wait_healthy(self.url, 300, self.proc)
        return self

    def kill(self) -> None:
        """SIGKILL (no cleanup runs)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def audit(self, timeout_s: float = 15.0) -> dict[str, Any]:
        """The service's audit (``GET /v1/audit``, refreshed each second by the service): waits up to
        ``timeout_s`` for a balanced one (events it is still applying); raises AssertionError with the figures
        when none came."""
        deadline, last = time.monotonic() + timeout_s, None
        while True:
            last = httpx.get(self.url + "/v1/audit", timeout=10).json()
            if last.get("balanced") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert last.get("balanced"), unbalanced_message(last)
        return last

    def stop(self, *, check_audit: bool = True) -> None:
        """Terminate the service; first, while it runs and unless ``check_audit`` is False, fail the test when
        its audit is not balanced (:meth:`audit`)."""
        try:
            if check_audit and self.proc and self.proc.poll() is None:
                self.audit()
        finally:
            if self.proc and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.kill()


def attest(lease: dict, key: str, result: bytes) -> tuple[str, str]:
    """``(result_hash, signature)`` (0x hex) for ``result`` under the lease's attestation fields."""
    a = lease["attestation"]
    acct = Account.from_key(key)
    att = Attestation(job_id=job_id_bytes32(lease["job_id"]), input_hash=bytes.fromhex(a["input_hash"][2:]),
                      result_hash=keccak(result), provider=acct.address, price_wei=int(lease["price_wei"]),
                      kind=JobKind(a["kind"]), verification=Verification(a["verification"]),
                      sample_rate_ppm=int(a["sample_rate_ppm"]))
    domain = Eip712Domain(a["domain"]["chainId"], a["domain"]["verifyingContract"])
    return "0x" + keccak(result).hex(), "0x" + sign_attestation(att, key, domain).signature.hex()


def run_lease(lease: dict, keys_dir: Path) -> bytes:
    """The real result bytes of a lease: a Groth16 proof (proof jobs) or unit-norm float32 rows (inference;
    the exchange checks shape, norms and a spot re-execution by another provider, so per-sentence pseudo-random
    rows stand in for the model here)."""
    t = lease["ticket"]
    if lease["kind"] == "proof":
        circuit = preimage_circuit(int(t["preimage"]), n_rounds=int(t["rounds"]))
        proof = prove(dev_proving_key(int(t["rounds"]), keys_dir, seed=int(t["setup_seed"])), circuit.witness)
        return canonical_proof_bytes(proof_to_json(proof), public_to_json([circuit.hash]))
    import base64

    # one unit row per sentence, seeded by its keccak: two honest harness providers agree on every row, so a
    # spot re-execution (a verification lease holds a sample of the sentences) matches
    lines = [ln.strip() for ln in base64.b64decode(t["input_b64"]).decode().splitlines() if ln.strip()]
    rows = np.stack([np.random.default_rng(int.from_bytes(keccak(ln.encode())[:8], "big")).normal(size=384)
                     for ln in lines]).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    buf = io.BytesIO()
    np.save(buf, rows, allow_pickle=False)
    return buf.getvalue()


class Heartbeats:
    """Heartbeat provider ``name`` every ``every_s`` seconds for ``running`` jobs while the context is open."""

    def __init__(self, pc: Any, name: str, running: list[str], every_s: float = 0.5) -> None:
        self.pc, self.name, self.running, self.every_s = pc, name, running, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.pc.heartbeat(self.name, running=self.running)
            except Exception:  # the service may be down (restart tests)
                pass

    def __enter__(self) -> "Heartbeats":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)


def payments(s: Any, job_id: str) -> list[tuple[str, int]]:
    """``(credited account, wei)`` of every ``payment`` leg of ``job_id`` in the ledger journal (one if paid once;
    later sweeps of the provider's balance, e.g. epochs, do not change this)."""
    from market.ledger.models import Transfer

    rows = s.execute(select(Transfer.credit_account_id, Transfer.amount_wei)
                     .where(Transfer.job_id == job_id, Transfer.kind == "payment")).all()
    return [(r[0], int(r[1])) for r in rows]


SNAPSHOT_TABLES = ("ledger_accounts", "ledger_transfers", "jobs", "job_events", "leases", "request_nonces",
                   "job_blobs", "job_logs")


def snapshot(url: str) -> dict[str, list]:
    """Every row of the money and job tables (sorted), to compare before/after a refused request."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: sorted(map(repr, conn.execute(text(f"SELECT * FROM {t}")).all())) for t in SNAPSHOT_TABLES}
    finally:
        engine.dispose()
