"""``raymarket dev up | down`` and ``raymarket demo``: a development market on this machine, in the background.

``dev up`` starts, as separate processes in their own sessions (so a Ctrl-C in the terminal does not
reach them), each logging to ``<data_dir>/dev/*.log``:

1. the chain: anvil from the npm tools when installed (``contracts.tools.npm_bin``; its HOME and its
   state file under ``<data_dir>/dev``, so the Settlement contract deployed once survives ``dev down`` /
   ``dev up``), unless ``--rpc-url`` names a node; without anvil, the exchange's in-process EVM;
2. the exchange service (``raymarket exchange serve --dev``; SQLite under the data dir unless
   ``--database-url``);
3. a development client key (``<data_dir>/keys/dev-client.json``, its password in a 0600 file: a
   development key, never a real one) funded by a REAL Vault deposit: a well-known dev key of the chain
   (anvil's, or the in-process EVM's through the exchange's dev relay) sends it chain ETH, and the client
   deposits it with its own key (:func:`fund_on_chain`);
4. N provider agents (``raymarket provider start``), each with its own key, its own data dir and its
   own single-node Ray cluster with token auth, bonded by a REAL Vault stake from its own key (funded the
   same way). Every ledger wei comes from a confirmed Vault event (``world`` is closed on the exchange's
   ledger; the exchange's own dev faucet also sends real ``Vault.depositFor`` / ``stakeFor``), so
   ``raymarket audit`` is balanced.

It records every process it started (PID and start time) in ``<data_dir>/dev/state.json`` and writes
``exchange_url``, ``contract``, ``chain_id``, ``rpc_url``, ``keystore`` and ``password_file`` into
config.toml, so that later commands find the market without flags (``dev down`` removes the URLs of
what it stopped again). ``dev down`` stops exactly those
processes by PID (agents first: each stops its own Ray cluster; then any recorded Ray process still
alive; then the exchange, then anvil), never ``ray stop``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import httpx
import psutil
import typer
from eth_account import Account
from rich.table import Table

from contracts.tools import ToolNotFound, npm_bin
from market.cli.accounts import write_keystore
from market.cli.common import DatabaseUrl, DataDir, JsonOut, RpcUrl, emit, out, progress, settings
from market.cli.exit_codes import ExitCode
from market.cli.jobs import result_file_name
from market.client import Client
from market.client.wallet import Wallet, dev_fund
from market.settings import Settings, read_config, update_config
from proving.errors import RaymarketError

dev_app = typer.Typer(help="A development market on this machine (exchange, chain, providers), in the background.",
                      no_args_is_help=True)

GWEI = 10**9
#: What the development client deposits, and each provider stakes, in the Vault (real chain money), wei.
CLIENT_FUNDS_WEI = 10**18
PROVIDER_BOND_WEI = 10**17
#: Asks of the development providers, wei per CPU-second (p1 cheapest).
PROVIDER_PRICES_WEI = (20 * GWEI, 30 * GWEI, 45 * GWEI, 60 * GWEI)
STATE_FILE = "state.json"
#: Seconds ``dev down`` gives each role after SIGTERM before SIGKILL (an agent finishes or gives back its leases
#: and stops its own Ray cluster first).
STOP_TIMEOUTS_S = {"provider": 90.0, "exchange": 20.0, "anvil": 20.0}
#: Development keystores use a cheap KDF: their password sits in a file beside them.
DEV_KDF = {"kdf": "pbkdf2", "iterations": 100_000}


class DevError(RaymarketError):
    """``dev up`` / ``dev down`` could not do its job; the message says which process and where its log is."""


@dataclass
class Started:
    """One process ``dev up`` started (identified by PID and start time, so a reused PID is never signalled)."""

    role: str  # "anvil" | "exchange" | "provider"
    name: str
    pid: int
    create_time: float
    log: str
    data_dir: str | None = None


# ---------------------------------------------------------------------------- processes
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str) -> list[str]:
    """The ``raymarket`` command line in a child process (this interpreter, the installed ``cli`` module)."""
    return [sys.executable, "-m", "cli", *args]


def _spawn(role: str, name: str, cmd: list[str], log: Path, *, env: dict[str, str] | None = None,
           stdout: Path | None = None, data_dir: Path | None = None) -> Started:
    """Start ``cmd`` in its own session, stdin closed, output to ``log`` (stdout to ``stdout`` when given)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as err_fh, open(stdout or log, "ab") as out_fh:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out_fh, stderr=err_fh, env=env,
                                start_new_session=True)
    return Started(role, name, proc.pid, psutil.Process(proc.pid).create_time(), str(log),
                   None if data_dir is None else str(data_dir))


def _process(p: Started) -> psutil.Process | None:
    """The live process ``p`` names, or None (gone, a zombie, or its PID reused by another process)."""
    try:
        proc = psutil.Process(p.pid)
        if abs(proc.create_time() - p.create_time) > 0.05 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.NoSuchProcess:
        return None


def _tail(path: str | Path, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _check_alive(p: Started) -> None:
    if _process(p) is None:
        raise DevError(f"{p.role} {p.name} exited during start; its log {p.log} ends with:\n{_tail(p.log)}")


def _wait_until(ready: Callable[[], Any], p: Started, what: str, timeout_s: float) -> Any:
    """Poll ``ready()`` (a truthy value means ready) while ``p`` lives, for at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        _check_alive(p)
        time.sleep(0.25)
    raise DevError(f"{what} not ready after {timeout_s:.0f} s; see {p.log}:\n{_tail(p.log)}")


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _rpc_ok(url: str) -> bool:
    try:
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        return "result" in httpx.post(url, json=body, timeout=2.0).json()
    except (httpx.HTTPError, ValueError):
        return False


def _first_json_line(path: Path) -> dict[str, Any] | None:
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("{"):
                return json.loads(line)
    except (OSError, ValueError):
        return None
    return None


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait up to ``timeout_s`` until every process of ``procs`` has exited; returns those still running.

    A zombie counts as gone: what ``dev up`` started is not this process's child (``dev up`` exited), so only
    init reaps it, which on some machines takes seconds (``psutil`` ``wait`` waits for that reaping)."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for proc in procs:
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() >= deadline:
            return alive
        procs = alive
        time.sleep(0.05)


def _stop(p: Started, timeout_s: float) -> str:
    """SIGTERM ``p`` (then SIGKILL after ``timeout_s``); returns ``terminated`` | ``killed`` | ``gone``."""
    return _stop_all([p], timeout_s)[0]


def _stop_all(ps: list[Started], timeout_s: float) -> list[str]:
    """SIGTERM every process of ``ps`` at once, then SIGKILL those alive after ``timeout_s``; returns for each
    ``terminated`` | ``killed`` | ``gone`` (so N agents stopping their own Ray clusters take the time of one)."""
    how = ["gone"] * len(ps)
    live: dict[int, psutil.Process] = {}
    for i, p in enumerate(ps):
        proc = _process(p)
        if proc is None:
            continue
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            continue
        how[i], live[i] = "terminated", proc
    stubborn = {proc.pid for proc in _wait_gone(list(live.values()), timeout_s)}
    for i, proc in live.items():
        if proc.pid in stubborn:
            try:
                proc.kill()
                how[i] = "killed"
            except psutil.NoSuchProcess:
                pass
    _wait_gone([proc for proc in live.values() if proc.pid in stubborn], 10.0)
    return how


def _stop_ray_leftovers(provider_dir: Path) -> int:
    """Kill the Ray processes still alive from the provider's recorded cluster (``ray/cluster.json``), by PID."""
    try:
        rec = json.loads((provider_dir / "ray" / "cluster.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    procs: dict[int, psutil.Process] = {}
    for pid, created in rec.get("pids", []):
        proc = _process(Started("ray", "", int(pid), float(created), ""))
        if proc is None:
            continue
        procs[proc.pid] = proc
        for child in proc.children(recursive=True):
            procs.setdefault(child.pid, child)
    for proc in procs.values():
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    for proc in _wait_gone(list(procs.values()), 10.0):
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    return len(procs)


# ---------------------------------------------------------------------------- state
def dev_dir(s: Settings) -> Path:
    """``<data_dir>/dev``: the development market's logs, keys of its providers, state and chain."""
    return s.data_dir / "dev"


def read_state(s: Settings) -> dict[str, Any] | None:
    """The recorded development market (``dev up``'s output plus ``processes``), or None."""
    try:
        return json.loads((dev_dir(s) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_state(s: Settings, info: dict[str, Any], started: list[Started]) -> None:
    path = dev_dir(s) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**info, "processes": [asdict(p) for p in started]}, indent=1), encoding="utf-8")


def _recorded(state: dict[str, Any]) -> list[Started]:
    return [Started(**p) for p in state.get("processes", [])]


# ---------------------------------------------------------------------------- up
def _start_anvil(d: Path, started: list[Started], timeout_s: float) -> str | None:
    """Start anvil (state kept in ``d/anvil-state.json``); its RPC URL, or None when anvil is not installed."""
    try:
        anvil = npm_bin("anvil")
    except ToolNotFound:
        return None
    port = _free_port()
    home = d / "anvil-home"
    home.mkdir(parents=True, exist_ok=True)
    cmd = [anvil, "--port", str(port), "--host", "127.0.0.1", "--state", str(d / "anvil-state.json"),
           "--silent"]
    p = _spawn("anvil", "anvil", cmd, d / "anvil.log", env=dict(os.environ, HOME=str(home)))
    started.append(p)
    url = f"http://127.0.0.1:{port}"
    _wait_until(lambda: _rpc_ok(url), p, f"anvil at {url}", timeout_s)
    return url


def _start_exchange(s: Settings, d: Path, database_url: str | None, rpc_url: str | None,
                    started: list[Started], timeout_s: float) -> str:
    port = _free_port()
    args = ["exchange", "serve", "--dev", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(s.data_dir),
            "--log-level", "warning"]
    args += ["--database-url", database_url] if database_url else []
    args += ["--rpc-url", rpc_url] if rpc_url else []
    p = _spawn("exchange", "exchange", _cli(*args), d / "exchange.log")
    started.append(p)
    url = f"http://127.0.0.1:{port}"
    _wait_until(lambda: _http_ok(f"{url}/healthz"), p, f"the exchange at {url}", timeout_s)
    return url


def _dev_key(path: Path, password: str) -> str:
    """The address of the development keystore at ``path`` (created when absent)."""
    if path.exists():
        return Account.from_key(Account.decrypt(json.loads(path.read_text(encoding="utf-8")), password)).address
    return write_keystore(path, "0x" + secrets.token_hex(32), password, **DEV_KDF)


def _password_file(d: Path) -> tuple[Path, str]:
    path = d / "password"
    if not path.exists():
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(24) + "\n")
    return path, path.read_text(encoding="utf-8").splitlines()[0]


def _ray_token(pdir: Path) -> str:
    """The auth token of the provider's own Ray cluster (``<pdir>/ray/auth_token``, 0600; created when absent).

    The agent's cluster uses this file; ``dev up`` also puts the token in the agent's environment, so that
    every Ray process of that agent (driver, workers) has it from its first import of Ray on.
    """
    path = pdir / "ray" / "auth_token"
    if not path.exists() or not path.read_text(encoding="utf-8").strip():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    return path.read_text(encoding="utf-8").strip()


#: Chain ETH a dev account gets beyond what it deposits or stakes, for its transactions' gas (wei).
GAS_ALLOWANCE_WEI = 10**17


def _provider_account(d: Path, name: str, password: str) -> Any:
    key = d / "providers" / name / "key.json"
    return Account.from_key(Account.decrypt(json.loads(key.read_text(encoding="utf-8")), password))


def fund_on_chain(exchange_url: str, rpc_url: str | None, account: Any, *, deposit_wei: int = 0, stake_wei: int = 0,
                  timeout_s: float = 120.0) -> None:
    """Development funding through REAL Vault transactions: a well-known dev key sends ``account`` chain ETH
    (:func:`market.client.wallet.dev_fund`), then ``account`` deposits / stakes it itself; waits until a deposit
    is credited at the exchange (the deposit watcher, after its confirmations)."""
    dev_fund(exchange_url, account.address, deposit_wei + stake_wei + GAS_ALLOWANCE_WEI, rpc_url=rpc_url)
    w = Wallet(exchange_url, account, rpc_url=rpc_url)
    if deposit_wei:
        w.deposit(deposit_wei)
    if stake_wei:
        w.stake(stake_wei)
    deadline = time.time() + timeout_s
    while deposit_wei and int(w.balance()["balance_wei"]) < deposit_wei:
        if time.time() > deadline:
            raise DevError(f"the deposit of {account.address} was not credited within {timeout_s:.0f} s")
        time.sleep(0.5)


def _start_providers(n: int, exchange_url: str, d: Path, pw_file: Path, password: str,
                     started: list[Started], timeout_s: float) -> list[dict[str, Any]]:
    procs = []
    for i in range(1, n + 1):
        name = f"dev-p{i}"
        pdir = d / "providers" / name
        key = pdir / "key.json"
        _dev_key(key, password)
        for stale in ("agent.out", "agent.json", "drain"):
            (pdir / stale).unlink(missing_ok=True)
        price = PROVIDER_PRICES_WEI[(i - 1) % len(PROVIDER_PRICES_WEI)]
        cmd = _cli("provider", "start", "--exchange", exchange_url, "--key", str(key), "--password-file", str(pw_file),
                   "--name", name, "--provider-dir", str(pdir), "--price", str(price), "--cpus", "1",
                   "--dev-bond", "0", "--benchmark-runs", "1", "--poll-wait-s", "2", "--json")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=_ray_token(pdir))  # this agent's own cluster only
        p = _spawn("provider", name, cmd, d / f"{name}.log", env=env, stdout=pdir / "agent.out", data_dir=pdir)
        started.append(p)
        procs.append((p, pdir))
    providers = []
    for p, pdir in procs:
        summary = _wait_until(lambda pdir=pdir: _first_json_line(pdir / "agent.out"), p, f"provider {p.name}",
                              timeout_s)
        providers.append({"name": summary.get("provider", p.name), "address": summary.get("address"),
                          "ray_address": summary.get("ray_address")})
    return providers


def dev_up(s: Settings, *, providers: int, database_url: str | None, rpc_url: str | None,
           timeout_s: float = 600.0) -> dict[str, Any]:
    """Start the development market (see the module docstring); returns what ``dev up --json`` prints.

    Raises:
        DevError: a market is up already, or a process failed to start (everything started is stopped).
    """
    state = read_state(s)
    if state is not None and any(_process(p) is not None for p in _recorded(state)):
        raise DevError(f"a development market is up already at {state.get('exchange_url')}; "
                       f"`raymarket dev down` first")
    d = dev_dir(s)
    d.mkdir(parents=True, exist_ok=True)
    update_config({"contract": None, "chain_id": None}, s.data_dir)  # the exchange finds or deploys its own
    started: list[Started] = []
    try:
        chain_url = rpc_url
        if chain_url is None:
            progress("starting anvil")
            chain_url = _start_anvil(d, started, timeout_s)
            if chain_url is None:
                progress("anvil is not installed (npm ci --prefix .npm-tools): the exchange runs an in-process EVM")
        progress("starting the exchange service")
        exchange_url = _start_exchange(s, d, database_url, chain_url, started, timeout_s)
        pw_file, password = _password_file(d)
        client_key = s.keys_dir / "dev-client.json"
        client_address = _dev_key(client_key, password)
        client_account = Account.from_key(Account.decrypt(json.loads(client_key.read_text(encoding="utf-8")), password))
        progress("funding the development client: a real Vault deposit from a well-known dev key's ETH")
        fund_on_chain(exchange_url, chain_url, client_account, deposit_wei=CLIENT_FUNDS_WEI, timeout_s=timeout_s)
        with Client(exchange_url, client_account) as c:
            info = c.info()
        progress(f"exchange at {exchange_url}; starting {providers} provider agent(s), each with its own Ray cluster")
        _write_state(s, {"exchange_url": exchange_url}, started)
        provs = _start_providers(providers, exchange_url, d, pw_file, password, started, timeout_s)
        for p in provs:  # bond: a real Vault stake by each provider's own key (credited to its registered name)
            fund_on_chain(exchange_url, chain_url, _provider_account(d, p["name"], password),
                          stake_wei=PROVIDER_BOND_WEI, timeout_s=timeout_s)
    except BaseException:
        for p in reversed(started):
            _stop(p, 30.0)
            if p.data_dir:
                _stop_ray_leftovers(Path(p.data_dir))
        (d / STATE_FILE).unlink(missing_ok=True)
        raise
    result = {"exchange_url": exchange_url, "providers": provs,
              "client": {"address": client_address, "keystore": str(client_key)},
              "contract": info["contract"], "chain_id": info["chain_id"], "rpc_url": chain_url,
              "chain": "anvil" if chain_url and rpc_url is None else (info.get("chain") or "rpc")}
    _write_state(s, result, started)
    update_config({"exchange_url": exchange_url, "contract": info["contract"], "chain_id": info["chain_id"],
                   "rpc_url": chain_url, "keystore": str(client_key), "password_file": str(pw_file),
                   "dev_up": {"providers": provs, "client": result["client"]}}, s.data_dir)
    return result


# ---------------------------------------------------------------------------- down
def dev_down(s: Settings) -> dict[str, Any]:
    """Stop what ``dev up`` started, by PID (see the module docstring).

    Returns:
        ``{"stopped": [{"role", "name", "pid", "how"}], "ray_processes_stopped": int, "left": [pid]}``
        (``left``: recorded processes still alive afterwards; empty unless something refused to die).
    """
    state = read_state(s)
    if state is None:
        return {"stopped": [], "ray_processes_stopped": 0, "left": [], "note": "no development market recorded"}
    procs = _recorded(state)
    order = {"provider": 0, "exchange": 1, "anvil": 2}
    stopped, ray_n = [], 0
    for rank in sorted({order.get(p.role, 9) for p in procs}):  # all agents at once, then the exchange, then anvil
        group = [p for p in procs if order.get(p.role, 9) == rank]
        hows = _stop_all(group, max(STOP_TIMEOUTS_S.get(p.role, 20.0) for p in group))
        for p, how in zip(group, hows):
            stopped.append({"role": p.role, "name": p.name, "pid": p.pid, "how": how})
            if p.data_dir:
                ray_n += _stop_ray_leftovers(Path(p.data_dir))
    left = [p.pid for p in procs if _process(p) is not None]
    if not left:
        (dev_dir(s) / STATE_FILE).unlink(missing_ok=True)
        config = read_config(s.data_dir)
        gone = {k: None for k in ("exchange_url", "rpc_url") if state.get(k) and config.get(k) == state[k]}
        update_config({"dev_up": None, **gone}, s.data_dir)  # the key, contract and chain id stay valid
    return {"stopped": stopped, "ray_processes_stopped": ray_n, "left": left}


# ---------------------------------------------------------------------------- commands
@dev_app.command("up")
def up_cmd(
    providers: Annotated[int, typer.Option("--providers", min=1, max=8, help="Provider agents to start.")] = 2,
    database_url: DatabaseUrl = None, rpc_url: RpcUrl = None, data_dir: DataDir = None,
    timeout_s: Annotated[float, typer.Option("--timeout-s", min=10.0, help="Most seconds to wait for each "
                                                                          "process to be ready.")] = 600.0,
    as_json: JsonOut = False,
) -> None:
    """Start a development market in the background: exchange, chain, N providers (each its own Ray
    cluster) and a funded development client key; remember it in config.toml."""
    s = settings(data_dir=data_dir)
    info = dev_up(s, providers=providers, database_url=database_url, rpc_url=rpc_url, timeout_s=timeout_s)
    emit(info, as_json, _up_text(info))


def _up_text(info: dict[str, Any]) -> str:
    lines = [f"exchange   {info['exchange_url']}", f"contract   {info['contract']} (chain {info['chain_id']}, "
             f"{info['chain']})", f"client     {info['client']['address']}  {info['client']['keystore']}"]
    lines += [f"provider   {p['name']}  {p['address']}  ray {p['ray_address']}" for p in info["providers"]]
    lines.append("next: raymarket submit inference FILE --max-price 1000000000000000 --wait; raymarket dev down")
    return "\n".join(lines)


@dev_app.command("down")
def down_cmd(data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Stop exactly what `dev up` started, by PID (never `ray stop`)."""
    res = dev_down(settings(data_dir=data_dir))
    text = "\n".join(f"{p['role']:9} {p['name']:9} pid {p['pid']}: {p['how']}" for p in res["stopped"])
    emit(res, as_json, text or res.get("note", "nothing to stop"))
    if res["left"]:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


@dev_app.command("status")
def status_cmd(data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Which of the development market's processes are alive."""
    s = settings(data_dir=data_dir)
    state = read_state(s) or {}
    rows = [{"role": p.role, "name": p.name, "pid": p.pid, "alive": _process(p) is not None, "log": p.log}
            for p in _recorded(state)]
    emit({"exchange_url": state.get("exchange_url"), "processes": rows}, as_json,
         "\n".join(f"{r['role']:9} {r['name']:9} pid {r['pid']:>7} {'up' if r['alive'] else 'DOWN'}  {r['log']}"
                   for r in rows) or "no development market recorded")


# ---------------------------------------------------------------------------- demo
def demo_text_path() -> Path:
    """The public-domain text shipped with the project (one sentence per line)."""
    return Path(__file__).resolve().parents[1] / "demo_data" / "public_domain.txt"


def run_demo(s: Settings, *, providers: int, text: Path, proof_jobs: int, proof_rounds: int,
             database_url: str | None, rpc_url: str | None, keep: bool) -> dict[str, Any]:
    """``dev up`` -> an embedding job and ``proof_jobs`` proof jobs through the SDK -> ``dev down``."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    market = dev_up(s, providers=providers, database_url=database_url, rpc_url=rpc_url)
    timings["dev_up"] = time.perf_counter() - t0
    try:
        s = settings(data_dir=s.data_dir)  # now with the market's config
        password = Path(s.password_file).read_text(encoding="utf-8").splitlines()[0]  # type: ignore[arg-type]
        account = Account.from_key(Account.decrypt(json.loads(Path(market["client"]["keystore"]).read_text()),
                                                   password))
        with Client(market["exchange_url"], account) as c:
            t1 = time.perf_counter()
            # a spot-check needs a second provider to re-execute the sample (unverifiable jobs are never paid):
            # with one provider the demo's embedding job asks for attest-only, and says so
            verification = None if providers >= 2 else "attest-only"
            if verification:
                progress("one provider: the embedding job is attest-only (a spot-check needs a second provider)")
            jobs = [c.submit_inference(text, max_price_wei=5 * 10**15, verification=verification)["job_id"]]
            jobs += [c.submit_proof(secrets.randbits(128), rounds=proof_rounds, max_price_wei=5 * 10**15)["job_id"]
                     for _ in range(proof_jobs)]
            progress(f"submitted {len(jobs)} jobs: {', '.join(jobs)}")
            done = [c.wait(j, timeout_s=900, on_progress=lambda job: progress(f"job {job['job_id']}: "
                                                                              f"{job['status']}")) for j in jobs]
            timings["jobs"] = time.perf_counter() - t1
            results = {}
            for job in done:
                if job["status"] in ("paid", "settled"):
                    data = c.result(job["job_id"])
                    path = s.results_dir / result_file_name(job["kind"], data)  # by content hash, not job id
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                    results[job["job_id"]] = str(path)
            balance = c.balance()
            t3 = time.perf_counter()
            withdrawals, audit = _withdraw_and_audit(market, s, account, password, done)
            timings["withdrawals"] = time.perf_counter() - t3
    finally:
        if not keep:
            t2 = time.perf_counter()
            dev_down(s)
            timings["dev_down"] = time.perf_counter() - t2
    timings["total"] = time.perf_counter() - t0
    return {"exchange_url": market["exchange_url"], "providers": market["providers"], "contract": market["contract"],
            "chain_id": market["chain_id"], "chain": market["chain"],
            "jobs": [{**j, "result_path": results.get(j["job_id"])} for j in done], "client_balance": balance,
            "withdrawals": withdrawals, "audit": audit,
            "seconds": {k: round(v, 2) for k, v in timings.items()}}


def _withdraw_and_audit(market: dict[str, Any], s: Settings, account: Any, password: str, done: list[dict],
                       timeout_s: float = 180.0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The demo's money out: every paid provider claims its earnings and the client withdraws its unused balance,
    each by an on-chain ``Vault.claim`` with its own key (after the next epoch root); then the audit, waited for
    until it is balanced with no claim pending. Returns ``(withdrawals, audit)``."""
    url, rpc = market["exchange_url"], market.get("rpc_url")
    d = dev_dir(s)
    client = Wallet(url, account, rpc_url=rpc)
    free = int(client.balance()["balance_wei"])
    if free:
        client.withdraw(free)
    paid = sorted({j["provider"] for j in done if j.get("provider") and j["status"] in ("paid", "settled")})
    pending = {name: Wallet(url, _provider_account(d, name, password), rpc_url=rpc) for name in paid}
    if free:
        pending["client"] = client
    withdrawals: list[dict[str, Any]] = []
    deadline = time.time() + timeout_s
    while pending and time.time() < deadline:
        for name, w in list(pending.items()):
            got = w.claim()
            if got is not None:
                progress(f"{name} claimed {got['amount_wei']} wei from the Vault (tx {got['tx_hash']})")
                withdrawals.append({"address": got["address"], "amount_wei": got["amount_wei"],
                                    "tx_hash": got["tx_hash"]})
                del pending[name]
        time.sleep(0.5)
    audit = client.audit()
    parties = {name: Wallet(url, _provider_account(d, name, password), rpc_url=rpc) for name in paid}
    parties["client"] = client
    while not (audit["balanced"] and audit["pending_claims_wei"] == "0") and time.time() < deadline:
        # a later epoch root can allow more than a party already claimed (a payment credited after its first
        # claim): claim again for whoever has something left, until nothing is pending
        if audit["pending_claims_wei"] != "0":
            for name, w in parties.items():
                got = w.claim()
                if got is not None:
                    progress(f"{name} claimed {got['amount_wei']} wei more from the Vault (tx {got['tx_hash']})")
                    withdrawals.append({"address": got["address"], "amount_wei": got["amount_wei"],
                                        "tx_hash": got["tx_hash"]})
        time.sleep(0.5)
        audit = client.audit()
    return withdrawals, audit


def demo_cmd(
    providers: Annotated[int, typer.Option("--providers", min=1, max=8, help="Provider agents.")] = 2,
    text: Annotated[Optional[Path], typer.Option("--text", exists=True, dir_okay=False, help=(
        "Text to embed, one sentence per line (default: the public-domain text shipped)."))] = None,
    proof_jobs: Annotated[int, typer.Option("--proof-jobs", min=0, help="Proof jobs to submit.")] = 2,
    proof_rounds: Annotated[int, typer.Option("--proof-rounds", min=1, help="MiMC-7 rounds (91 = circomlib's).")] = 91,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the market up afterwards (`raymarket dev down`).")] = False,
    database_url: DatabaseUrl = None, rpc_url: RpcUrl = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Run the market on this machine: `dev up`, an embedding job and proof jobs through the SDK, `dev down`."""
    report = run_demo(settings(data_dir=data_dir), providers=providers, text=text or demo_text_path(),
                      proof_jobs=proof_jobs, proof_rounds=proof_rounds, database_url=database_url,
                      rpc_url=rpc_url, keep=keep)
    if as_json:
        emit(report, True)
    else:
        table = Table(title="raymarket demo: jobs")
        for col in ("job", "kind", "provider", "price (wei)", "status", "result", "settling tx"):
            table.add_column(col, overflow="fold")
        for j in report["jobs"]:
            table.add_row(j["job_id"], j["kind"], j.get("provider") or "-", j.get("price_wei") or "-", j["status"],
                          j.get("result_path") or "-", j.get("tx_hash") or "-")
        out.print(table)
        out.print(f"exchange_url {report['exchange_url']}; contract {report['contract']} on chain "
                  f"{report['chain_id']} ({report['chain']})", markup=False)
        for p in report["providers"]:
            out.print(f"provider {p['name']} {p['address']} ray_address {p['ray_address']}", markup=False)
        out.print("seconds: " + ", ".join(f"{k} {v}" for k, v in report["seconds"].items()), markup=False)
        emit(report, True)
    if any(j["status"] not in ("paid", "settled") for j in report["jobs"]) or not report["audit"]["balanced"]:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))

