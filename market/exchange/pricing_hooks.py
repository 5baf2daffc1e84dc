"""Running provider pricing hooks in a separate process (the adapter of :mod:`market.core.pricing_hook`).

A hook is provider code. It runs in a fresh worker process (``python -I market/exchange/_pricing_hook_worker.py``)
that has nothing of the exchange:

* **environment**: scrubbed to ``PATH``, ``LANG``, ``HOME``/``TMPDIR`` (the temporary directory) and the BLAS
  thread counts: no ``DATABASE_URL``, ``RAYMARKET_*``, keys or tokens; ``-I`` ignores ``PYTHON*`` variables,
  the user site and the current directory;
* **memory**: its own address space: monkeypatching ``market.ledger`` there changes nothing here;
* **namespaces** (Linux, where ``unshare`` works: probed once, :func:`namespace_prefix`): a new user, PID, mount
  and network namespace (``unshare --user --map-root-user --pid --fork --mount-proc --net``): the hook
  sees no other process (so not ``/proc/<exchange>/environ``) and has no network (so not the database
  server or the RPC node). Without them (another OS, namespaces disabled) the worker runs as the
  exchange's user and could read ``/proc/<exchange pid>/environ``; run the exchange under its own user;
* **files**: cwd is a new temporary directory (removed afterwards); no inherited descriptors but its
  stdin/stdout pipes (``close_fds``), stderr to ``/dev/null``;
* **limits**: ``RLIMIT_AS`` (``memory_bytes``), ``RLIMIT_CPU``, ``RLIMIT_FSIZE``, no core files, set by
  the worker before the hook is loaded; each answer line is at most ``MAX_LINE_BYTES``;
* **time**: ``start_timeout_s`` to start and load the hook, then ``timeout_s`` per call. Past a limit the
  worker's whole process group is killed (``SIGKILL``; it runs in its own session) and reaped; the job
  that timed out and the rest of the batch get the static ask. The group is killed at the end in every
  case, so nothing the hook started outlives the call.

The rules for the answers (refusing ``<= 0``, non-integer or out-of-range asks, static fallback) are the pure
:func:`market.core.pricing_hook.report_from_answers`. :func:`price_round` applies every configured hook to a
round's inputs (called by the service's auction, :mod:`market.exchange.service.loop`).
"""

from __future__ import annotations

import functools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from market.core.matching import RoundInputs
from market.core.orders import JobOrder, Offer, record_to_dict
from market.core.pricing_hook import HookAnswer, HookReport, apply_reports, fallback_report, report_from_answers

WORKER = Path(__file__).with_name("_pricing_hook_worker.py")
#: Longest answer line accepted from a worker, bytes (a longer one counts as a broken worker).
MAX_LINE_BYTES = 4096


@dataclass(frozen=True)
class HookLimits:
    """Limits of one hook worker: ``timeout_s`` per call, ``start_timeout_s`` to start and load the hook,
    ``memory_bytes`` (address space), ``cpu_s`` (CPU seconds, whole batch), ``file_bytes`` (largest file
    it may write)."""

    timeout_s: float = 0.25
    start_timeout_s: float = 10.0
    memory_bytes: int = 2 * 1024**3
    cpu_s: int = 60
    file_bytes: int = 1024 * 1024
    namespaces: bool = True


@functools.lru_cache(maxsize=1)
def namespace_prefix() -> tuple[str, ...]:
    """The ``unshare`` command line that puts the worker in fresh user/PID/mount/network namespaces, or
    ``()`` where that does not work here (probed once per process)."""
    cmd = ("unshare", "--user", "--map-root-user", "--pid", "--fork", "--kill-child", "--mount-proc", "--net")
    if shutil.which("unshare") is None:
        return ()
    try:
        ok = subprocess.run([*cmd, sys.executable, "-I", "-c", "pass"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return cmd if ok else ()


def scrubbed_env(home: str) -> dict[str, str]:
    """The worker's whole environment: nothing of the exchange's (no database URL, key, token)."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home, "TMPDIR": home,
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5.0)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
        pass


class _Lines:
    """Bounded line reader over the worker's stdout with a deadline per line."""

    def __init__(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.fd, selectors.EVENT_READ)
        self.buf = b""

    def next(self, timeout_s: float) -> dict[str, Any] | str:
        """The next JSON line, or ``"timeout"`` / ``"eof"`` / ``"oversize"`` / ``"garbled"``."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE_BYTES:
                return "oversize"
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                return "timeout"
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return "eof"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        if len(line) > MAX_LINE_BYTES:
            return "oversize"
        try:
            doc = json.loads(line)
        except ValueError:
            return "garbled"
        return doc if isinstance(doc, dict) else "garbled"

    def close(self) -> None:
        self.sel.close()


def run_hook(spec: str, offer: Offer, jobs: Sequence[JobOrder], *, limits: HookLimits | None = None,
             timeout_s: float | None = None) -> HookReport:
    """``offer``'s provider's asks for ``jobs`` by its hook ``spec`` (``"module:function"`` or
    ``"path.py:function"``), run in a worker process (see the module docstring).

    Args:
        spec: the hook. offer: the provider's offer (its static prices are the fallback). jobs: to price.
        limits: the worker's limits; timeout_s: shorthand for ``limits.timeout_s``.

    Returns:
        the :class:`market.core.pricing_hook.HookReport` (never raises for anything the hook does).
    """
    limits = limits or HookLimits()
    if timeout_s is not None:
        limits = replace(limits, timeout_s=timeout_s)
    if not jobs:
        return HookReport(offer.provider)
    home = tempfile.mkdtemp(prefix="raymarket-hook-")
    try:
        return _run_in_worker(spec, offer, jobs, limits, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _run_in_worker(spec: str, offer: Offer, jobs: Sequence[JobOrder], limits: HookLimits, home: str) -> HookReport:
    request = json.dumps({"spec": spec, "offer": record_to_dict(offer), "jobs": [record_to_dict(j) for j in jobs],
                          "limits": {"memory_bytes": limits.memory_bytes, "cpu_s": limits.cpu_s,
                                     "file_bytes": limits.file_bytes}}).encode()
    prefix = namespace_prefix() if limits.namespaces else ()
    proc = subprocess.Popen([*prefix, sys.executable, "-I", str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=home, env=scrubbed_env(home), close_fds=True,
                            start_new_session=True)
    lines = _Lines(proc)
    try:
        try:
            assert proc.stdin is not None
            proc.stdin.write(request)
            proc.stdin.close()
        except OSError:
            return fallback_report(offer, jobs, "load failed: the hook worker exited at start")
        first = lines.next(limits.start_timeout_s)
        if not isinstance(first, dict) or not first.get("loaded"):
            why = first.get("load_error", "no answer") if isinstance(first, dict) else f"worker {first} at start"
            return fallback_report(offer, jobs, f"load failed: {why}")
        return report_from_answers(offer, jobs, _answers(lines, jobs, limits.timeout_s))
    finally:
        lines.close()
        _kill_group(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def _answers(lines: _Lines, jobs: Sequence[JobOrder], timeout_s: float) -> list[HookAnswer]:
    out: list[HookAnswer] = []
    for i, job in enumerate(jobs):
        doc = lines.next(timeout_s)
        if doc == "timeout":
            out.append(HookAnswer(job.job_id, "timeout", detail=f"timed out after {timeout_s:g} s"))
            return out + [HookAnswer(j.job_id, "skipped", detail="skipped after timeout") for j in jobs[i + 1:]]
        if not isinstance(doc, dict) or doc.get("i") != i:
            why = f"hook worker {doc}" if isinstance(doc, str) else "hook worker out of step"
            return out + [HookAnswer(j.job_id, "skipped", detail=why) for j in jobs[i:]]
        if "error" in doc:
            out.append(HookAnswer(job.job_id, "error", detail=f"raised {doc['error']}"))
        elif "bad" in doc:
            out.append(HookAnswer(job.job_id, "value", value=_Bad(str(doc["bad"]))))
        else:
            out.append(HookAnswer(job.job_id, "value", value=doc.get("value")))
    return out


class _Bad:
    """A non-integer answer as the worker described it (its repr), so the refusal names it."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def price_round(inputs: RoundInputs, hooks: Mapping[str, str], limits: HookLimits | None = None
                ) -> tuple[RoundInputs, dict[str, list[str]]]:
    """``inputs`` with the configured ``hooks`` (provider name -> spec) applied: their asks as
    ``ask_overrides``, their refusals as denied pairs.

    Returns:
        ``(inputs, notes)``; ``notes`` maps a job id to the hook refusals to show in its explanation.
    """
    offers = [o for o in inputs.offers if o.provider in hooks]
    if not offers or not inputs.jobs:
        return inputs, {}
    reports = [run_hook(hooks[o.provider], o, inputs.jobs, limits=limits) for o in offers]
    jobs, overrides, notes = apply_reports(inputs.jobs, reports)
    return replace(inputs, jobs=jobs, ask_overrides={**inputs.ask_overrides, **overrides}), notes
