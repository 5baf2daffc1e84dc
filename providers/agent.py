"""The provider agent: join a machine to the market's Ray cluster, bond stake and post an offer.

``raymarket provider start --ray-address HOST:PORT --price WEI --bond WEI``:

1. detects the hardware (CPUs, memory, GPUs from the driver) and benchmarks it;
2. runs ``ray start --address ... --labels provider=<name> --resources {"provider:<name>": N}``
   so that this machine becomes a node that jobs can be pinned to;
3. starts the detached :class:`providers.workers.ProviderWorker` on that node, holding the
   provider's signing key (a 0600 key file, created on first start);
4. registers the offer (price per CPU-second, detected resources, speed) and bonds the stake
   in the ledger.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from market.settings import Settings


class AgentError(RuntimeError):
    """The agent could not join the cluster or start its worker; the message says why."""


def join_cluster(ray_address: str, name: str, cpus: int, timeout_s: float = 120.0) -> None:
    """Run ``ray start`` to add this machine as node ``provider=<name>`` of the cluster at ``ray_address``.

    Raises:
        AgentError: ``ray start`` failed (its output is included).
    """
    from providers.cluster import PROVIDER_RESOURCE_UNITS, disable_ray_auth, provider_resource

    disable_ray_auth()
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", f"--address={ray_address}",
           f"--labels=provider={name}", f"--resources={json.dumps({provider_resource(name): PROVIDER_RESOURCE_UNITS})}",
           f"--num-cpus={cpus}", "--disable-usage-stats"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if res.returncode != 0:
        raise AgentError(f"ray start failed (exit {res.returncode}): {res.stderr.strip()[-800:]}")


def start_provider(*, ray_address: str, price_per_cpu_s_wei: int, bond_wei: int, name: str | None,
                   key_file: Path | None, join: bool, cpus: int | None, settings: Settings,
                   progress: Callable[[str], None]) -> dict[str, Any]:
    """Steps 1-4 of the module docstring; returns the registration (name, address, resources, node id)."""
    import ray
    from sqlalchemy.orm import Session

    from market import exchange as ex
    from market.db.base import make_engine
    from market.db.migrate import upgrade
    from providers.hardware import benchmark, detect
    from providers.keys import load_or_create_key
    from providers.workers import worker_actor

    hw = detect()
    speed = benchmark()
    name = name or socket.gethostname().split(".")[0]
    cpus = cpus or hw.cpus
    progress(f"provider {name}: {hw.cpus} CPUs ({hw.cpu_model}), {hw.memory_bytes // 2**30} GiB, "
             f"GPUs: {[g.model for g in hw.gpus] or 'none'}, speed {speed}")
    key = load_or_create_key(key_file or settings.data_dir / "keys" / f"{name}.key")
    if join:
        progress(f"joining Ray cluster {ray_address} as node provider={name}")
        join_cluster(ray_address, name, cpus)
    if not ray.is_initialized():
        ray.init(address=ray_address, log_to_driver=False)
    actor = worker_actor(name, key, detached=True)
    info = ray.get(actor.info.remote(), timeout=120)
    url = settings.resolved_database_url
    upgrade(url)
    offer = ex.ProviderOffer(name=name, address=info["address"], cpus=cpus, memory_bytes=hw.memory_bytes,
                             price_per_cpu_s_wei=price_per_cpu_s_wei, bond_wei=bond_wei, gpus=len(hw.gpus),
                             gpu_model=hw.gpu_model, price_per_gpu_s_wei=price_per_cpu_s_wei * 50 if hw.gpus else 0,
                             speed=speed, node_id=info["node_id"], hardware=hw.to_dict())
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        ex.register_provider(s, offer)
    engine.dispose()
    progress(f"provider {name}: worker on node {info['node_id'][:8]}, address {info['address']}, "
             f"bonded {bond_wei} wei, asking {price_per_cpu_s_wei} wei/CPU-s")
    return {"provider": name, "address": info["address"], "node_id": info["node_id"], "cpus": cpus,
            "memory_bytes": hw.memory_bytes, "gpus": [g.model for g in hw.gpus], "speed": speed,
            "price_per_cpu_s_wei": str(price_per_cpu_s_wei), "bond_wei": str(bond_wei)}
