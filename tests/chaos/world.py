"""The real market a chaos run works on, and the faults it can inject into it.

:class:`ChaosWorld` starts, each as a real process: a Postgres 15 server, an anvil node, the exchange service
(``python -m market.exchange.service --dev`` on that Postgres and that anvil, SIGKILL-able and restarted on
the same database, port and chain) and N provider agents (``tests.chaos.liar_agent``: the real agent, each with
its own token-auth Ray head, able to lie on request). Clients and providers are funded by REAL Vault
transactions (a well-known anvil dev key sends them chain ETH; they deposit or stake it with their own keys),
so the exchange's audit can balance. Every process it starts is stopped by PID in :meth:`ChaosWorld.close`.

Fault injectors (each returns a small dict of what it saw, for the report):

* ``agent_kill``: SIGKILL the agent, stop its orphaned Ray cluster by PID, restart it (same key and name).
* ``raylet_kill``: SIGKILL the raylet of the provider's Ray head; the agent is expected to exit (its driver
  loses its raylet); it is then restarted as above (after 30 s at most, even if it did not exit).
* ``exchange_kill``: SIGKILL the exchange, wait, start it again (same args: database, chain, data dir, port).
* ``postgres_restart``: ``pg_ctl stop -m immediate`` (a crash: no checkpoint), wait, start on the same data.
* ``rpc_pause``: SIGSTOP anvil (every chain call hangs), wait, SIGCONT.
* ``reorg``: ``anvil_reorg(depth, [])``: the last ``depth`` blocks are replaced by empty ones.
* ``lie``: the provider falsifies its next N results (:mod:`tests.chaos.liar_agent`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from eth_account import Account
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from market import ledger
from market.client import ApiError, Client
from market.client.wallet import Wallet, dev_fund
from tests.chaos.liar_agent import LIE_FILE, LIES_LOG
from tests.fixtures.services import AnvilNode, PostgresServer, _as_postgres
from tests.providers.harness import AgentProcess, wait_for
from tests.service.harness import ROOT, ProcessService, wait_healthy

ETH = 10**18
#: What each client deposits and each provider stakes, wei (real Vault transactions).
CLIENT_DEPOSIT_WEI = ETH
PROVIDER_STAKE_WEI = ETH // 5
#: Chain ETH each party gets for gas on top, wei.
GAS_WEI = ETH // 10


class ChaosService(ProcessService):
    """The exchange subprocess, given longer to become healthy (a loaded 2-core box compiles its kernels slowly)."""

    start_timeout_s = 900.0

    def start(self) -> "ChaosService":
        log = open(self.log_path, "ab")
        cmd = [sys.executable, "-m", "market.exchange.service", "--port", str(self.port), *self.args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONPATH=str(ROOT)))
        wait_healthy(self.url, self.start_timeout_s, self.proc)
        return self


class ChaosAgent(AgentProcess):
    """A real provider agent run through the test-only lying wrapper (:mod:`tests.chaos.liar_agent`)."""

    module = "tests.chaos.liar_agent"

    def lie(self, n: int) -> None:
        """Falsify the next ``n`` results (adds to a pending count)."""
        path = self.data_dir / LIE_FILE
        try:
            left = int(path.read_text().strip() or 0)
        except (OSError, ValueError):
            left = 0
        path.write_text(str(left + int(n)))

    def lies(self) -> list[dict[str, Any]]:
        """Every lie told so far (``job_id``, ``lease_id``, ``kind``)."""
        try:
            return [json.loads(ln) for ln in (self.data_dir / LIES_LOG).read_text().splitlines() if ln.strip()]
        except OSError:
            return []

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def restart(self, down_s: float = 0.0, timeout_s: float = 300.0, *, keep_cluster: bool = False) -> float:
        """SIGKILL (if alive), wait ``down_s``, start again; returns seconds taken.

        ``keep_cluster``: the new agent attaches to the provider's Ray head that survived the kill (``--ray-address``
        and its token file: a provider's fleet head outlives its agent); otherwise that head is stopped by PID and
        the new agent starts its own. The head's pidfile stays, so :meth:`cleanup` stops it either way.
        """
        t0 = time.monotonic()
        self.kill()
        cluster = self.cluster
        if not hasattr(self, "base_args"):
            self.base_args = list(self.args)
        self.args = list(self.base_args)
        if keep_cluster and cluster is not None and cluster.alive():
            self.args += ["--ray-address", cluster.address, "--ray-token-file",
                          str(self.data_dir / "ray" / "auth_token")]
        elif cluster is not None:
            cluster.stop()
        (self.data_dir / "agent.json").unlink(missing_ok=True)
        time.sleep(down_s)
        self.summary = {}
        self.start()
        self.wait_started(timeout_s)
        return time.monotonic() - t0


def rpc(url: str, method: str, params: list[Any], timeout_s: float = 30.0) -> Any:
    """One JSON-RPC call; returns ``result`` (raises RuntimeError on an ``error``)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        out = json.loads(resp.read())
    if "error" in out:
        raise RuntimeError(f"{method}: {out['error']}")
    return out.get("result")


class ChaosWorld:
    """Postgres + anvil + the exchange + ``providers`` agents + ``clients`` funded clients (see the module docstring).

    Args:
        base: a short directory for data and logs (kept after the run: the logs are evidence).
        lease_s, round_interval_s, settlement_window_s: the exchange's timings.
        log: progress lines (stderr in the benchmark).
    """

    def __init__(self, base: Path, *, providers: int = 3, clients: int = 3, lease_s: float = 8.0,
                 round_interval_s: float = 0.3, settlement_window_s: float = 2.0, job_timeout_s: float = 90.0,
                 log: Any = print) -> None:
        self.base = Path(base)
        self.n_providers, self.n_clients = providers, clients
        self.lease_s, self.round_interval_s, self.settlement_window_s = lease_s, round_interval_s, settlement_window_s
        self.job_timeout_s = job_timeout_s
        self.log = log
        self.pg: PostgresServer | None = None
        self.anvil: AnvilNode | None = None
        self.svc: ChaosService | None = None
        self.db_url = ""
        self.agents: list[ChaosAgent] = []
        self.clients: list[Client] = []
        self.client_keys: list[str] = []
        self._engine: Any = None
        self.anvil_stopped = False

    # ------------------------------------------------------------------ start
    def start(self) -> "ChaosWorld":
        """Start everything and fund every party; raises (after stopping what started) on failure."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        t0 = time.monotonic()
        self.base.mkdir(parents=True, exist_ok=True)
        self.pg = PostgresServer()
        self.pg.start()
        self.db_url = self.pg.create_database("chaos")
        self.anvil = AnvilNode()
        self.anvil.start()
        self.log(f"postgres on :{self.pg.port}, anvil at {self.anvil.rpc_url} ({time.monotonic() - t0:.0f} s)")
        args = ["--database-url", self.db_url, "--rpc-url", self.anvil.rpc_url, "--data-dir", str(self.base / "exchange"),
                "--dev", "--lease-s", str(self.lease_s), "--round-interval-s", str(self.round_interval_s),
                "--settlement-window-s", str(self.settlement_window_s)]
        self.svc = ChaosService(args, self.base / "exchange.log")  # assigned first: close() stops it on failure
        self.svc.start()
        self.log(f"exchange at {self.svc.url} ({time.monotonic() - t0:.0f} s)")
        self.agents = [ChaosAgent(f"cp{i + 1}", self.svc.url, self.base, price_per_cpu_s_wei=10**9 * (i + 1),
                                  extra=["--job-timeout-s", str(self.job_timeout_s), "--stop-grace-s", "5"])
                       for i in range(self.n_providers)]
        for a in self.agents:
            a.start()
        self._fund_clients()
        for a in self.agents:
            a.wait_started(300)
        self.log(f"{len(self.agents)} agents registered ({time.monotonic() - t0:.0f} s)")
        for a in self.agents:
            self._fund(Account.from_key(a.key), stake_wei=PROVIDER_STAKE_WEI)
        wait_for(lambda: all(self.bond_wei(a.name) >= PROVIDER_STAKE_WEI for a in self.agents), 120,
                 "every provider's stake credited", every_s=0.5)
        rpc(self.anvil.rpc_url, "anvil_mine", [hex(8)])  # setup blocks sit deeper than any reorg (<= 5)
        self.log(f"funded {len(self.clients)} clients and {len(self.agents)} providers on chain "
                 f"({time.monotonic() - t0:.0f} s)")

    def _fund(self, account: Any, *, deposit_wei: int = 0, stake_wei: int = 0) -> None:
        dev_fund(self.svc.url, account.address, deposit_wei + stake_wei + GAS_WEI, rpc_url=self.anvil.rpc_url)
        w = Wallet(self.svc.url, account, rpc_url=self.anvil.rpc_url)
        if deposit_wei:
            w.deposit(deposit_wei)
        if stake_wei:
            w.stake(stake_wei)

    def _fund_clients(self) -> None:
        for _ in range(self.n_clients):
            key = Account.create().key.hex()
            key = key if key.startswith("0x") else "0x" + key
            self._fund(Account.from_key(key), deposit_wei=CLIENT_DEPOSIT_WEI)
            self.client_keys.append(key)
            self.clients.append(Client(self.svc.url, key, timeout_s=30))
        wait_for(lambda: all(self._client_balance(c) >= CLIENT_DEPOSIT_WEI for c in self.clients), 120,
                 "every client's deposit credited", every_s=0.5)

    def _client_balance(self, c: Client) -> int:
        try:
            return int(c.balance()["balance_wei"])
        except ApiError:
            return 0

    @property
    def engine(self) -> Any:
        if self._engine is None:
            self._engine = create_engine(self.db_url, pool_pre_ping=True)
        return self._engine

    def bond_wei(self, provider: str) -> int:
        """The provider's free bond in the ledger (0 while unknown)."""
        try:
            with Session(self.engine) as s:
                return ledger.balance(s, ledger.bond_account(provider))
        except Exception:  # noqa: BLE001 -- not there yet, or Postgres restarting
            return 0

    # ------------------------------------------------------------------ faults
    def inject(self, kind: str, target: int | None, param: float) -> dict[str, Any]:
        """Carry out one fault (see the module docstring); returns what was seen."""
        return getattr(self, f"_f_{kind}")(target, param)

    def _f_agent_kill(self, target: int | None, down_s: float) -> dict[str, Any]:
        a = self.agents[target or 0]
        secs = a.restart(down_s, keep_cluster=True)
        return {"provider": a.name, "restart_s": round(secs, 1), "attached": "--ray-address" in a.args}

    def _f_raylet_kill(self, target: int | None, _: float) -> dict[str, Any]:
        a = self.agents[target or 0]
        cluster = a.cluster
        raylets = [p for p in (cluster.processes() if cluster else []) if _name(p) == "raylet"]
        for p in raylets:
            p.send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        while a.alive() and time.monotonic() - t0 < 30:
            time.sleep(0.2)
        exited = not a.alive()
        secs = a.restart(0.0)
        return {"provider": a.name, "raylets_killed": len(raylets), "agent_exited": exited,
                "agent_exit_s": round(time.monotonic() - t0 - secs, 1), "restart_s": round(secs, 1)}

    def _f_exchange_kill(self, _: int | None, down_s: float) -> dict[str, Any]:
        t0 = time.monotonic()
        self.svc.kill()
        time.sleep(down_s)
        self.svc.start()
        return {"down_s": round(time.monotonic() - t0, 1)}

    def _f_postgres_restart(self, _: int | None, down_s: float) -> dict[str, Any]:
        t0 = time.monotonic()
        pg_stop(self.pg, mode="immediate")
        time.sleep(down_s)
        pg_start(self.pg)
        return {"down_s": round(time.monotonic() - t0, 1)}

    def _f_rpc_pause(self, _: int | None, pause_s: float) -> dict[str, Any]:
        self.anvil.proc.send_signal(signal.SIGSTOP)
        self.anvil_stopped = True
        try:
            time.sleep(pause_s)
        finally:
            self.anvil.proc.send_signal(signal.SIGCONT)
            self.anvil_stopped = False
        return {"paused_s": pause_s}

    def _f_reorg(self, _: int | None, depth: float) -> dict[str, Any]:
        before = int(rpc(self.anvil.rpc_url, "eth_blockNumber", []), 16)
        rpc(self.anvil.rpc_url, "anvil_reorg", [int(depth), []])
        after = int(rpc(self.anvil.rpc_url, "eth_blockNumber", []), 16)
        return {"depth": int(depth), "head_before": before, "head_after": after}

    def _f_lie(self, target: int | None, n: float) -> dict[str, Any]:
        a = self.agents[target or 0]
        a.lie(int(n))
        return {"provider": a.name, "lies": int(n)}

    # ------------------------------------------------------------------ health
    def heal(self) -> list[str]:
        """Bring back whatever is down (anvil stopped, Postgres down, exchange or an agent exited); returns what."""
        done = []
        if self.anvil and self.anvil.proc and self.anvil_stopped:
            self.anvil.proc.send_signal(signal.SIGCONT)
            self.anvil_stopped = False
            done.append("anvil resumed")
        if self.pg and not pg_running(self.pg):
            pg_start(self.pg)
            done.append("postgres started")
        if self.svc and (self.svc.proc is None or self.svc.proc.poll() is not None):
            self.svc.start()
            done.append("exchange started")
        for a in self.agents:
            if not a.alive():
                a.restart(0.0)
                done.append(f"agent {a.name} restarted")
        return done

    def audit(self) -> dict[str, Any]:
        """The exchange's last audit (``GET /v1/audit``)."""
        return Client(self.svc.url).t.get("/v1/audit")

    # ------------------------------------------------------------------ stop
    def close(self) -> None:
        """Stop every process this world started, by PID (agents and their Ray clusters first)."""
        if self.anvil and self.anvil.proc and self.anvil_stopped:
            self.anvil.proc.send_signal(signal.SIGCONT)
        for a in self.agents:
            try:
                a.cleanup()
            except Exception as exc:  # noqa: BLE001 -- keep stopping the rest
                self.log(f"cleanup of {a.name}: {exc}")
        for c in self.clients:
            c.close()
        for what, step in (("exchange", lambda: self.svc and self.svc.stop()),
                           ("engine", lambda: self._engine and self._engine.dispose()),
                           ("anvil", lambda: self.anvil and self.anvil.stop()), ("postgres", self._stop_pg)):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 -- keep stopping the rest
                self.log(f"stopping {what}: {exc}")

    def _stop_pg(self) -> None:
        if self.pg is None or self.pg.datadir is None:
            return
        if self.pg.datadir.exists() and not pg_running(self.pg):
            try:
                pg_start(self.pg)  # PostgresServer.stop stops a running server, then removes its data
            except RuntimeError:
                pass
        self.pg.stop()


def _name(proc: Any) -> str:
    try:
        return proc.name()
    except Exception:  # noqa: BLE001
        return ""


def _pg_opts(pg: PostgresServer) -> str:
    """The server options :meth:`PostgresServer.start` used (its socket dir is the data dir's parent)."""
    opts = f"-p {pg.port} -h {pg.host} -k {pg.datadir.parent} -c max_connections=200"
    if not pg.fsync:
        opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    return opts


def pg_stop(pg: PostgresServer, mode: str = "fast") -> None:
    """Stop the server, keeping its data (``mode``: ``fast`` or ``immediate``, a crash)."""
    subprocess.run(_as_postgres([str(pg.bindir / "pg_ctl"), "-D", str(pg.datadir), "-m", mode, "-w", "stop"]),
                   capture_output=True, timeout=60)


def pg_start(pg: PostgresServer) -> None:
    """Start the stopped server again on the same data, port and options. Raises RuntimeError on failure."""
    log = pg.datadir.parent / "server.log"
    res = subprocess.run(_as_postgres([str(pg.bindir / "pg_ctl"), "-D", str(pg.datadir), "-o", _pg_opts(pg), "-l",
                                       str(log), "-w", "-t", "120", "start"]), capture_output=True, text=True,
                         timeout=180)
    if res.returncode != 0:
        raise RuntimeError(f"pg_ctl start failed: {res.stderr}")


def pg_running(pg: PostgresServer) -> bool:
    """Whether the server answers ``pg_ctl status``."""
    res = subprocess.run(_as_postgres([str(pg.bindir / "pg_ctl"), "-D", str(pg.datadir), "status"]),
                         capture_output=True, timeout=30)
    return res.returncode == 0


def short_base(prefix: str = "rm-chaos-") -> Path:
    """A short temp directory for a run (Ray's AF_UNIX paths need short ones)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


