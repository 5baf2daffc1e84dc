"""Hardware detection and a short benchmark, run by the provider agent before it offers a machine.

GPU models are read from the driver (``nvidia-smi``) or torch, never from the provider's
say-so, and the benchmark measures what the machine does: a claimed GPU model that does not
show up, or a speed far from its class, is what io.net's hourly proof-of-work checks catch.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import psutil

#: The reference workload's seconds on the reference machine (2-core CI box); speed = ref / measured.
REFERENCE_BENCH_S = 0.1


@dataclass(frozen=True)
class GpuInfo:
    """One GPU: model name as the driver reports it and its memory in bytes."""

    model: str
    memory_bytes: int


@dataclass(frozen=True)
class Hardware:
    """What a provider machine has.

    Attributes:
        cpus: logical CPU cores (``os.cpu_count``, or the cgroup/affinity limit if lower).
        memory_bytes: total RAM, bytes.
        gpus: detected GPUs.
        cpu_model: the processor's name.
        platform: ``platform.platform()``.
    """

    cpus: int
    memory_bytes: int
    gpus: tuple[GpuInfo, ...] = field(default_factory=tuple)
    cpu_model: str = ""
    platform: str = ""

    @property
    def gpu_model(self) -> str | None:
        """The first GPU's model, or None on a CPU-only machine."""
        return self.gpus[0].model if self.gpus else None

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _nvidia_gpus() -> list[GpuInfo]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        name, mem_mib = (part.strip() for part in line.split(",", 1))
        gpus.append(GpuInfo(model=name, memory_bytes=int(float(mem_mib)) * 1024 * 1024))
    return gpus


def detect() -> Hardware:
    """Detect this machine's CPUs, memory and GPUs.

    GPUs come from ``nvidia-smi``; when it is absent none are reported (a CPU-only machine).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return Hardware(
        cpus=cpus,
        memory_bytes=int(psutil.virtual_memory().total),
        gpus=tuple(_nvidia_gpus()),
        cpu_model=_cpu_model(),
        platform=platform.platform(),
    )


def benchmark(repeats: int = 5) -> float:
    """Measure this machine's speed factor on a fixed float32 matrix workload.

    Returns:
        ``REFERENCE_BENCH_S / median seconds`` over ``repeats`` runs (1.0 = the reference machine, higher is
        faster), rounded to thousandths. The median, not the best run: one lucky run on an idle moment does
        not set the figure, nor one run behind a noisy neighbour. It is the agent's *claim*: the exchange
        credits it at most the reference speed until its own timed challenges measure the machine
        (``market.exchange.service.challenges``).
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((384, 384), dtype=np.float32)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        b = a
        for _ in range(20):
            b = np.tanh(b @ a * 0.01)
        times.append(time.perf_counter() - t0)
    return round(REFERENCE_BENCH_S / max(statistics.median(times), 1e-6), 3)
