"""Ray clusters of the provider side.

* :class:`ProviderCluster` -- a provider's OWN Ray cluster: ``ray start --head`` with Ray's token auth
  on (``RAY_AUTH_MODE=token``, the token a random 0600 file in the provider's data dir), distinct
  ports and a short ``--temp-dir`` so that several providers' clusters run side by side on one host,
  stopped by the PIDs of its own processes (never ``ray stop``, which kills every Ray on the host).
  Or attach to an existing head (``--ray-address``: the provider's fleet, many nodes under its head).
  Ray is not a multi-tenant boundary (FIELD-NOTES "Checked later"): one cluster per party.
* :class:`LocalCluster` -- a head plus one raylet per provider on one machine, auth disabled: the old
  shared-cluster mode (``--trusted-fleet``: one operator who owns every node), the in-process demo and
  the tests of the proving pipeline. Never the default between distrusting parties.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import ray

from providers.errors import ClusterError

#: Fast node-death detection (~0.5 s instead of ~13 s), values from FIELD-NOTES.
FAST_HEALTH_CHECK = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 200,
    "health_check_timeout_ms": 200,
    "health_check_failure_threshold": 3,
}

#: Custom resource units a provider node advertises for pinning (``provider:<name>``).
PROVIDER_RESOURCE_UNITS = 1000


def provider_resource(name: str) -> str:
    """The custom resource naming provider ``name`` (``provider:<name>``)."""
    return f"provider:{name}"


def disable_ray_auth() -> None:
    """Set ``RAY_AUTH_MODE=disabled`` for this process and its children (FIELD-NOTES: Ray 2.60 auth)."""
    os.environ["RAY_AUTH_MODE"] = "disabled"


@dataclass
class LocalCluster:
    """A head node and one raylet per provider, all on this machine.

    Attributes:
        providers: provider names, e.g. ``["p1", "p2", "p3"]``.
        cpus_per_provider: logical CPUs each provider node advertises.
        head_cpus: logical CPUs of the head (driver-side actors run there).
        object_store_bytes: object store size per node, bytes.
    """

    providers: list[str] = field(default_factory=lambda: ["p1", "p2", "p3"])
    cpus_per_provider: int = 2
    head_cpus: int = 2
    object_store_bytes: int = 120 * 1024 * 1024
    fast_health_check: bool = True
    _cluster: Any = None
    _nodes: dict[str, Any] = field(default_factory=dict)
    _temp_dir: str | None = None

    @property
    def address(self) -> str:
        """The GCS address (``host:port``) to pass to ``ray.init(address=...)``."""
        return self._cluster.address

    def start(self, connect: bool = True) -> "LocalCluster":
        """Start the head and the provider nodes; connect this process as the driver if ``connect``."""
        from ray.cluster_utils import Cluster  # noqa: PLC0415 -- a test utility, only for this mode

        disable_ray_auth()
        # AF_UNIX paths must stay under 107 bytes: a short temp dir (FIELD-NOTES).
        self._temp_dir = tempfile.mkdtemp(prefix="rmray", dir="/tmp")
        # ray.cluster_utils writes the "current cluster" address file under /tmp/ray.
        os.makedirs(os.path.join(tempfile.gettempdir(), "ray"), exist_ok=True)
        head_args: dict[str, Any] = {
            "num_cpus": self.head_cpus,
            "object_store_memory": self.object_store_bytes,
            "include_dashboard": False,
            "temp_dir": self._temp_dir,
            "resources": {"head": 1},
        }
        if self.fast_health_check:
            head_args["_system_config"] = dict(FAST_HEALTH_CHECK)
        self._cluster = Cluster(initialize_head=True, head_node_args=head_args)
        for name in self.providers:
            self.add_node(name)
        if connect:
            self.connect()
        return self

    def connect(self) -> None:
        """``ray.init`` this process to the cluster, quietly."""
        if not ray.is_initialized():
            ray.init(address=self.address, log_to_driver=False)

    def add_node(self, name: str, cpus: int | None = None) -> None:
        """Start a raylet for provider ``name`` (label ``provider=name``, resource ``provider:name``)."""
        node = self._cluster.add_node(
            num_cpus=cpus or self.cpus_per_provider,
            object_store_memory=self.object_store_bytes,
            resources={provider_resource(name): PROVIDER_RESOURCE_UNITS},
            labels={"provider": name},
            wait=True,
        )
        self._nodes[name] = node
        if name not in self.providers:
            self.providers.append(name)

    def kill_node(self, name: str) -> None:
        """Kill provider ``name``'s raylet (as a crash would: no graceful drain)."""
        node = self._nodes.pop(name)
        self._cluster.remove_node(node, allow_graceful=False)

    def node_alive(self, name: str) -> bool:
        """Whether provider ``name``'s node is up (as this object knows it)."""
        return name in self._nodes

    def shutdown(self) -> None:
        """Disconnect the driver and stop every node of this cluster (never ``ray stop``)."""
        if ray.is_initialized():
            ray.shutdown()
        if self._cluster is not None:
            self._cluster.shutdown()
            self._cluster = None
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)


# --------------------------------------------------------------------------- a provider's own cluster

#: Where a provider's cluster keeps its token and pidfile, under the provider's data dir.
RAY_SUBDIR = "ray"
TOKEN_FILE = "auth_token"
PIDFILE = "cluster.json"
#: Default object store of a provider head, bytes (small: 2-core test boxes; production passes more).
DEFAULT_OBJECT_STORE_BYTES = 200 * 1024 * 1024


def _minimal_dashboard() -> bool:
    """Whether Ray is the minimal install (no dashboard dependencies): its dashboard agent then serves no port."""
    try:
        from ray._private.utils import get_dashboard_dependency_error  # noqa: PLC0415 -- private, version-bound
    except ImportError:
        return False
    return get_dashboard_dependency_error() is not None


def _prewrite_minimal_agent_ports(temp_dir: str, done: threading.Event) -> None:
    """Write, as soon as the head's session dir names its node, the port files a MINIMAL dashboard agent
    writes (``-1``: no metrics agent, no metrics export, no HTTP listener), unless already there.

    Why: the raylet waits a hard-coded 15 s for those files and then aborts (ray-project/ray#65983); on a
    loaded box the minimal agent's interpreter alone takes longer to start. The values are exactly what
    that agent writes (``ray/dashboard/agent.py``, minimal mode), so nothing changes but the wait.
    """
    try:
        from ray._raylet import (  # noqa: PLC0415 -- private, version-bound
            DASHBOARD_AGENT_LISTEN_PORT_NAME, GCS_SERVER_PORT_NAME, METRICS_AGENT_PORT_NAME, METRICS_EXPORT_PORT_NAME,
            get_port_filename, persist_port)
    except ImportError:
        return
    prefix = get_port_filename("f" * 56, GCS_SERVER_PORT_NAME)[:-56]
    while not done.wait(0.05):
        for port_file in Path(temp_dir).glob(f"session_*/{prefix}*"):
            node_id, session_dir = port_file.name[len(prefix):], str(port_file.parent)
            for name in (METRICS_AGENT_PORT_NAME, METRICS_EXPORT_PORT_NAME, DASHBOARD_AGENT_LISTEN_PORT_NAME):
                if not (port_file.parent / get_port_filename(node_id, name)).exists():
                    persist_port(session_dir, node_id, name, -1)
            return


def _reload_ray_auth() -> None:
    """Make this process's Ray core re-read ``RAY_AUTH_MODE`` / ``RAY_AUTH_TOKEN`` (it caches them once, at
    the first use after ``import ray``): what ``ray._private.authentication_test_utils`` does in Ray 2.60."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config  # noqa: PLC0415 -- private, version-bound
    except ImportError:  # another Ray version: it reads the environment at ray.init
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


#: The ``ray start --head`` port flags a provider's head sets (each to its own free port; ``--port`` besides).
HEAD_PORT_FLAGS = ("--dashboard-port", "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                   "--metrics-export-port", "--runtime-env-agent-port", "--node-manager-port",
                   "--object-manager-port")


def _free_ports(n: int) -> list[int]:
    """``n`` DISTINCT free ports: every socket is held until all are bound (one at a time, the kernel may hand out
    a port it just gave back: ``ray start`` then refuses "port ... used by other components")."""
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket()
            socks.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (replacing it atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def load_or_create_token(data_dir: Path) -> str:
    """The cluster's auth token, kept in ``<data_dir>/ray/auth_token`` (0600); created (64 hex chars) if absent."""
    path = Path(data_dir) / RAY_SUBDIR / TOKEN_FILE
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    token = secrets.token_hex(32)
    _write_private(path, token + "\n")
    return token


def token_env(token: str | None) -> dict[str, str]:
    """Environment that makes a Ray process use token auth with ``token`` (or disables auth when None)."""
    if token is None:
        return {"RAY_AUTH_MODE": "disabled"}
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}


def _processes_of(temp_dir: str) -> list[psutil.Process]:
    """Every live Ray process started for ``temp_dir`` (a ``--flag=`` argument names it: ``--temp-dir``,
    ``--session-dir``, ``--log_dir``, ``--raylet_socket_name`` ...), plus their descendants; never this
    process or its ancestors (a shell whose command line merely mentions the path)."""
    found: dict[int, psutil.Process] = {}
    me = psutil.Process()
    spared = {me.pid, *(p.pid for p in me.parents())}
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid in spared:
            continue
        try:
            if any(part.startswith("--") and temp_dir in part for part in (proc.info["cmdline"] or [])):
                found[proc.pid] = proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    for proc in list(found.values()):
        try:
            for child in proc.children(recursive=True):
                found.setdefault(child.pid, child)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return [p for pid, p in found.items() if pid not in spared]


#: Seconds the head's other daemons (GCS, dashboard and runtime-env agents) get after SIGTERM, once the raylets
#: are gone, before SIGKILL: they hold nothing worth a graceful exit (the GCS takes ~2 s to exit on a SIGTERM, an
#: autoscaler monitor, where one runs, 3-5 s).
DAEMON_GRACE_S = 1.0


def _kill(procs: list[psutil.Process], timeout_s: float) -> None:
    """Stop ``procs`` in ``ray stop``'s order: the raylets and their workers first (SIGTERM, SIGKILL after
    ``timeout_s``), then the other daemons (SIGTERM, SIGKILL after ``min(timeout_s, DAEMON_GRACE_S)``).
    Signalled all at once, the raylet and the monitors wait for the GCS that is going away and outlive a 10 s
    timeout (11-14 s per head on a 2-core box); in this order a head stops in ~3 s."""
    raylets: dict[int, psutil.Process] = {}
    for proc in procs:
        try:
            if proc.name() == "raylet":
                raylets[proc.pid] = proc
                for child in proc.children(recursive=True):
                    raylets.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            continue
    first = [p for p in procs if p.pid in raylets] + [p for p in raylets.values() if p not in procs]
    rest = [p for p in procs if p.pid not in raylets]
    for bucket, grace_s in ((first, timeout_s), (rest, min(timeout_s, DAEMON_GRACE_S))):
        for proc in bucket:
            try:
                proc.terminate()
            except psutil.NoSuchProcess:
                pass
        alive = _wait_gone(bucket, grace_s)
        for proc in alive:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        _wait_gone(alive, timeout_s)


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait up to ``timeout_s`` until every process of ``procs`` has exited; returns those still running.

    A zombie counts as gone: the head's daemons are not our children (``ray start`` exited), so only init reaps
    them, which on some machines takes seconds (``psutil.wait_procs`` waits for that reaping)."""
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


@dataclass
class ProviderCluster:
    """One provider's Ray cluster, started by it (``owned``) or attached to.

    Attributes:
        name: the provider's name.
        address: the GCS address ``host:port`` (what ``ray.init(address=...)`` and worker nodes'
            ``ray start --address`` take).
        token: the auth token (None only for an attached cluster that runs without auth, i.e. a
            ``--trusted-fleet`` cluster).
        data_dir: the provider's data dir (token and pidfile under ``ray/``).
        temp_dir: the Ray ``--temp-dir`` of an owned head (short, under /tmp).
        owned: True when this object started the head (and so may stop it).
        pids: ``[(pid, create_time), ...]`` of the head's processes at start (the pidfile records them).
    """

    name: str
    address: str
    token: str | None
    data_dir: Path
    temp_dir: str | None = None
    owned: bool = False
    pids: list[tuple[int, float]] = field(default_factory=list)

    # ---------------------------------------------------------------- start / attach / find
    @classmethod
    def start(cls, name: str, cpus: int, data_dir: Path | str, *, gpus: int | None = None,
              object_store_bytes: int = DEFAULT_OBJECT_STORE_BYTES, node_ip: str | None = "127.0.0.1",
              resources: dict[str, float] | None = None, fast_health_check: bool = False,
              extra_env: dict[str, str] | None = None, timeout_s: float = 120.0,
              attempts: int = 3) -> "ProviderCluster":
        """``ray start --head`` for provider ``name`` with token auth, its own ports and temp dir.

        Args:
            cpus: logical CPUs the head offers to jobs; gpus: GPUs (Ray detects when None).
            node_ip: the IP the head binds and advertises (``127.0.0.1`` for one box; a fleet head passes
                its LAN address so that worker nodes can join with ``ray start --address``).
            fast_health_check: detect dead nodes in ~0.5 s (tests).
            extra_env: more environment for the Ray processes (e.g. ``NUMBA_CACHE_DIR``).
            attempts: tries of ``ray start`` (each up to ``timeout_s``).
        Returns:
            the cluster, its pidfile written (``<data_dir>/ray/cluster.json``).
        Raises:
            ClusterError: ``ray start`` failed (its output is included) or a live cluster of this data dir
                is already recorded in the pidfile.
        """
        data_dir = Path(data_dir)
        existing = cls.from_pidfile(data_dir)
        if existing is not None and existing.alive():
            raise ClusterError(f"provider {name}: a Ray cluster of {data_dir} is running at {existing.address} "
                               f"(pidfile {existing.pidfile}); stop it first")
        token = load_or_create_token(data_dir)
        # AF_UNIX socket paths must stay under 107 bytes: a short temp dir (FIELD-NOTES).
        temp_dir = tempfile.mkdtemp(prefix=f"rm-{re.sub(r'[^A-Za-z0-9]', '', name)[:10]}-", dir="/tmp")
        rest = [f"--num-cpus={int(cpus)}", f"--object-store-memory={int(object_store_bytes)}",
                f"--temp-dir={temp_dir}", "--include-dashboard=false", "--disable-usage-stats",
                f"--labels=provider={name}",
                # No log monitor (every driver of a provider runs with log_to_driver=False) and no autoscaler
                # monitor (nodes join a provider's head by `ray start --address`, nothing autoscales): two
                # Python daemons fewer per head; `ray start` takes ~10 s less on a loaded 2-core box.
                "--include-log-monitor=false", "--no-monitor"]
        if gpus is not None:
            rest.append(f"--num-gpus={int(gpus)}")
        if node_ip:
            rest.append(f"--node-ip-address={node_ip}")
        if resources:
            rest.append(f"--resources={json.dumps(resources)}")
        env = dict(os.environ, **token_env(token), **(extra_env or {}))
        if fast_health_check:
            env.update({f"RAY_{k}": str(v) for k, v in FAST_HEALTH_CHECK.items()})
        env.pop("RAY_ADDRESS", None)
        # The raylet gives the dashboard agent a hard-coded 15 s to write its port files, and `ray start`
        # 30 s for the raylet to register (ray-project/ray#65983); a loaded box can miss that: retry.
        # A new session: the head's daemons are not in the agent's process group (a Ctrl-C in the agent's
        # terminal does not reach them) and get their own scheduler autogroup.
        for attempt in range(1, attempts + 1):
            # fresh, distinct ports on every attempt: a port taken meanwhile (or a collision) fails only one try
            port, *others = _free_ports(len(HEAD_PORT_FLAGS) + 1)
            cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", f"--port={port}",
                   *(f"{flag}={p}" for flag, p in zip(HEAD_PORT_FLAGS, others)), *rest]
            done = threading.Event()
            if _minimal_dashboard():
                threading.Thread(target=_prewrite_minimal_agent_ports, args=(temp_dir, done), daemon=True).start()
            try:
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
                failure = None if res.returncode == 0 else (
                    f"ray start --head failed (exit {res.returncode}): {(res.stderr or res.stdout).strip()[-1500:]}")
            except subprocess.TimeoutExpired:
                failure = f"ray start --head did not finish within {timeout_s} s"
            finally:
                done.set()
            if failure is None:
                break
            _kill(_processes_of(temp_dir), 5.0)
            failure += _raylet_failure(temp_dir, data_dir)
            if attempt == attempts:
                shutil.rmtree(temp_dir, ignore_errors=True)
                raise ClusterError(f"provider {name}: {failure} (attempt {attempt} of {attempts})")
            shutil.rmtree(temp_dir, ignore_errors=True)
            os.makedirs(temp_dir)
        host = node_ip or _parse_address(res.stdout + res.stderr, port)
        procs = _processes_of(temp_dir)
        cluster = cls(name=name, address=f"{host}:{port}", token=token, data_dir=data_dir, temp_dir=temp_dir,
                      owned=True, pids=[(p.pid, p.create_time()) for p in procs])
        cluster.write_pidfile()
        return cluster

    @classmethod
    def attach(cls, name: str, address: str, data_dir: Path | str, *, token: str | None = None,
               token_file: Path | str | None = None) -> "ProviderCluster":
        """An existing cluster at ``address`` (the provider's fleet head); it is never stopped by this object.

        The token is ``token``, else ``token_file``'s first line, else ``$RAY_AUTH_TOKEN``, else the data dir's
        token file when it exists; None means the cluster runs without auth (``--trusted-fleet`` only).
        """
        if token is None and token_file is not None:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        if token is None:
            token = os.environ.get("RAY_AUTH_TOKEN") or None
        if token is None:
            path = Path(data_dir) / RAY_SUBDIR / TOKEN_FILE
            token = path.read_text(encoding="utf-8").strip() if path.exists() else None
        return cls(name=name, address=address, token=token, data_dir=Path(data_dir), owned=False)

    @classmethod
    def from_pidfile(cls, data_dir: Path | str) -> "ProviderCluster | None":
        """The owned cluster recorded in ``<data_dir>/ray/cluster.json``, or None when there is none."""
        path = Path(data_dir) / RAY_SUBDIR / PIDFILE
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        token_path = Path(data_dir) / RAY_SUBDIR / TOKEN_FILE
        token = token_path.read_text(encoding="utf-8").strip() if token_path.exists() else None
        return cls(name=rec["name"], address=rec["address"], token=token, data_dir=Path(data_dir),
                   temp_dir=rec["temp_dir"], owned=True, pids=[(int(p), float(t)) for p, t in rec["pids"]])

    @property
    def pidfile(self) -> Path:
        """``<data_dir>/ray/cluster.json``."""
        return self.data_dir / RAY_SUBDIR / PIDFILE

    def write_pidfile(self) -> None:
        """Record address, temp dir and PIDs (0600; the token is in its own file, not here)."""
        _write_private(self.pidfile, json.dumps({"name": self.name, "address": self.address,
                                                 "temp_dir": self.temp_dir, "pids": self.pids}))

    # ---------------------------------------------------------------- use
    def env(self) -> dict[str, str]:
        """Environment for a Ray process (driver or ``ray start --address`` worker node) of this cluster."""
        return token_env(self.token)

    def connect(self, namespace: str | None = None, **init_kwargs: Any) -> None:
        """``ray.init`` this process to the cluster (token set in this process's environment first).

        Raises:
            ClusterError: this process is connected to another Ray cluster already.
        """
        if ray.is_initialized():
            raise ClusterError("this process is connected to a Ray cluster already; one agent per process")
        os.environ.update(self.env())
        os.environ.pop("RAY_ADDRESS", None)
        _reload_ray_auth()
        ray.init(address=self.address, namespace=namespace or f"raymarket-{self.name}", log_to_driver=False,
                 **init_kwargs)

    def processes(self) -> list[psutil.Process]:
        """The live processes of an owned head: recorded PIDs (same create time) and whatever names its temp dir."""
        found: dict[int, psutil.Process] = {}
        for pid, created in self.pids:
            try:
                proc = psutil.Process(pid)
                if abs(proc.create_time() - created) < 0.01:
                    found[pid] = proc
                    for child in proc.children(recursive=True):
                        found.setdefault(child.pid, child)
            except psutil.NoSuchProcess:
                continue
        if self.temp_dir:
            for proc in _processes_of(self.temp_dir):
                found.setdefault(proc.pid, proc)
        return list(found.values())

    def alive(self) -> bool:
        """Whether any recorded process of an owned head is still running."""
        return any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in self.processes())

    def stop(self, timeout_s: float = 10.0) -> int:
        """Stop an owned head by PID (SIGTERM, then SIGKILL after ``timeout_s``; raylets first, the other daemons
        then get :data:`DAEMON_GRACE_S`); never ``ray stop``.

        An attached cluster is left alone. Returns the number of processes signalled.
        """
        if not self.owned:
            return 0
        procs = [p for p in self.processes() if p.pid != os.getpid()]
        _kill(procs, timeout_s)
        try:
            self.pidfile.unlink()
        except FileNotFoundError:
            pass
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        return len(procs)


def _raylet_failure(temp_dir: str, data_dir: Path) -> str:
    """The raylet's fatal line of a failed start (if any); its logs are kept under ``<data_dir>/ray/failed-start``."""
    logs = sorted(Path(temp_dir).glob("session_*/logs"))
    if not logs:
        return ""
    keep = Path(data_dir) / RAY_SUBDIR / "failed-start"
    shutil.rmtree(keep, ignore_errors=True)
    shutil.copytree(logs[-1], keep, ignore=shutil.ignore_patterns("events", "export_events", "old"),
                    dirs_exist_ok=True)
    try:
        lines = (logs[-1] / "raylet.out").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return f" (logs kept in {keep})"
    fatal = [ln for ln in lines if "Check failed" in ln or " C " in ln[:40] or " F " in ln[:40]]
    return f"; raylet: {fatal[0][:400] if fatal else 'no fatal line'} (logs kept in {keep})"


def _parse_address(output: str, port: int) -> str:
    m = re.search(r"ray start --address='([^':]+):(\d+)'", output)
    return m.group(1) if m else "127.0.0.1"
