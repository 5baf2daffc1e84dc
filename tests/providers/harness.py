"""Test helpers for provider agents: keystores, agents as real subprocesses (SIGKILL-able), Ray drivers
in subprocesses (so that the test process never joins a provider's cluster), cleanup by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from eth_account import Account

from providers.agent import stop_agent
from providers.cluster import ProviderCluster
from providers.keys import create_keystore

ROOT = Path(__file__).resolve().parents[2]
#: Password of the throwaway test keystores (test only).
TEST_PASSWORD = "test-password-not-secret"

DRIVER = r"""
import json, os, sys, ray
ray.init(address=sys.argv[1], log_to_driver=False)
@ray.remote(max_retries=0, num_cpus=0)
def where():
    import os
    return os.getpid()
out = {"connected": True, "task_pid": ray.get(where.remote(), timeout=60)}
if len(sys.argv) > 2:  # dump the fields of the provider's named workers (what another driver could read)
    found = {}
    for name in json.loads(sys.argv[2]):
        try:
            actor = ray.get_actor(name, namespace=sys.argv[3])
        except ValueError:
            continue
        found[name] = ray.get(actor.__ray_call__.remote(lambda self: repr(vars(self))), timeout=60)
    out["actor_fields"] = found
print("DRIVER " + json.dumps(out), flush=True)
"""


def make_keystore(path: Path) -> tuple[str, Path]:
    """A fresh test key in a fast (pbkdf2) v3 keystore at ``path``, and a 0600 password file next to it.

    Returns ``(private_key_hex, password_file)``.
    """
    key = Account.create().key.hex()
    key = key if key.startswith("0x") else "0x" + key
    create_keystore(path, TEST_PASSWORD, key, kdf="pbkdf2", iterations=1000)
    pw = path.with_suffix(".password")
    pw.write_text(TEST_PASSWORD + "\n")
    os.chmod(pw, 0o600)
    return key, pw


def ray_driver(address: str, env: dict[str, str], *, actor_names: list[str] | None = None,
               namespace: str = "", timeout_s: float = 120.0) -> subprocess.Popen:
    """Start a Ray driver subprocess against ``address`` with exactly ``env``'s Ray auth settings."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    # a refused driver (wrong or no token) gives up after 5 GCS connect attempts (~1 s each), not Ray's 20
    e["RAY_NUM_REDIS_GET_RETRIES"] = "5"
    e.update(env)
    args = [sys.executable, "-c", DRIVER, address]
    if actor_names is not None:
        args += [json.dumps(actor_names), namespace]
    return subprocess.Popen(args, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def driver_result(proc: subprocess.Popen, timeout_s: float = 150.0) -> dict[str, Any]:
    """``{"connected": bool, ...}`` of a :func:`ray_driver` (``stderr`` tail when it failed)."""
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return {"connected": False, "timeout": True, "stderr": err[-2000:]}
    for line in out.splitlines():
        if line.startswith("DRIVER "):
            return json.loads(line[7:])
    return {"connected": False, "rc": proc.returncode, "stderr": err[-2000:]}


class AgentProcess:
    """``python -m providers.agent`` as a subprocess: one provider with its own Ray cluster.

    Attributes:
        name, key (hex, test only), keystore, data_dir; summary: the started line (address, ray_address, ...).
        module: the module run with ``python -m`` (a test wrapper of the agent may replace it).
    """

    module = "providers.agent"

    def __init__(self, name: str, exchange_url: str, base: Path, *, price_per_cpu_s_wei: int = 10**9,
                 cpus: int = 1, extra: list[str] | None = None) -> None:
        self.name, self.exchange_url = name, exchange_url
        self.data_dir = base / name
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.keystore = base / f"{name}.keystore.json"
        self.key, self.password_file = make_keystore(self.keystore)
        self.address = Account.from_key(self.key).address
        self.log_path = base / f"{name}.agent.log"
        self.args = ["--exchange", exchange_url, "--key", str(self.keystore), "--data-dir", str(self.data_dir),
                     "--password-file", str(self.password_file), "--name", name, "--cpus", str(cpus),
                     "--price-per-cpu-s-wei", str(price_per_cpu_s_wei), "--poll-wait-s", "2",
                     "--heartbeat-s", "0.5", "--fast-health-check", "--benchmark-runs", "3", *(extra or [])]
        self.proc: subprocess.Popen | None = None
        self.summary: dict[str, Any] = {}
        self._lines: list[str] = []

    def start(self) -> "AgentProcess":
        """Spawn the agent (returns at once; :meth:`wait_started` waits for registration)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env["PYTHONPATH"] = str(ROOT)
        self._log = open(self.log_path, "a", encoding="utf-8")
        self.proc = subprocess.Popen([sys.executable, "-m", self.module, *self.args], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.append(line)
            if line.startswith("{") and not self.summary:
                self.summary = json.loads(line)

    def wait_started(self, timeout_s: float = 300.0) -> dict[str, Any]:
        """The registration summary once the agent printed it. Raises RuntimeError (with its log) otherwise."""
        deadline = time.monotonic() + timeout_s
        while not self.summary:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent {self.name} exited {self.proc.returncode}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"agent {self.name} not started within {timeout_s} s:\n{self.log()[-4000:]}")
            time.sleep(0.2)
        return self.summary

    def log(self) -> str:
        """The agent's stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")  # Ray may write raw bytes
        except OSError:
            return ""

    @property
    def cluster(self) -> ProviderCluster | None:
        """The agent's own cluster from its pidfile (None once stopped)."""
        return ProviderCluster.from_pidfile(self.data_dir)

    def token(self) -> str:
        """The cluster token (what only this provider has)."""
        return (self.data_dir / "ray" / "auth_token").read_text().strip()

    def kill(self) -> None:
        """SIGKILL the agent process only (its Ray cluster keeps running, as after a crash)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout_s: float = 90.0) -> int | None:
        """SIGTERM and wait; returns the exit code (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def cleanup(self) -> None:
        """Whatever state it is in: agent gone, its own Ray cluster stopped by PID."""
        self.terminate(30)
        try:
            stop_agent(self.data_dir, timeout_s=10)
        except Exception:  # noqa: BLE001 -- no pidfile: it exited cleanly
            pass
        cluster = self.cluster
        if cluster is not None:
            cluster.stop()
        try:
            self._log.close()
        except Exception:  # noqa: BLE001
            pass


def start_agents(agents: list[AgentProcess], timeout_s: float = 300.0) -> None:
    """Start several agents at once and wait until all registered."""
    for a in agents:
        a.start()
    for a in agents:
        a.wait_started(timeout_s)


def bond(exchange_url: str, agent: AgentProcess, bond_wei: int = 10**17) -> None:
    """Dev-faucet bond for the agent's provider name (development exchange only)."""
    from market.client import Client

    with Client(exchange_url, agent.key) as c:
        c.faucet(0, bond_wei=bond_wei, provider_name=agent.name)


def wait_for(pred, timeout_s: float, what: str, every_s: float = 0.25) -> Any:
    """Poll ``pred()`` until truthy; returns its value. Raises AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
