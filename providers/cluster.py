"""Local multi-node Ray clusters on one machine: a head plus one raylet per provider.

This is the embedded default of ``raymarket demo`` and the cluster the tests share. Each
provider node is a separate raylet carrying the label ``provider=<name>`` and the custom
resource ``provider:<name>`` so that jobs can be pinned to it (FIELD-NOTES: pin with
``max_retries=0`` and always ``ray.get(..., timeout=...)``).

Ray token auth is disabled for these local clusters (``RAY_AUTH_MODE=disabled``, see
FIELD-NOTES); a real cluster over many machines is joined with ``raymarket provider start``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

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
        from ray.cluster_utils import Cluster

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
        import ray

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
        import ray

        if ray.is_initialized():
            ray.shutdown()
        if self._cluster is not None:
            self._cluster.shutdown()
            self._cluster = None
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
