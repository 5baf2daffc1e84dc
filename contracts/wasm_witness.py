"""Compute a circom circuit's witness from its wasm and an input (issue 13, ``submit proof --input``): node runs
the witness calculator of ``circom_runtime`` (the one ``snarkjs wtns calculate`` uses, from ``.npm-tools``) and
writes a snarkjs ``.wtns`` to its stdout.

Bounded: the run is killed after ``timeout_s`` seconds, or as soon as its resident memory (node and the wasm
instance together, sampled every 50 ms) passes ``max_memory_bytes``. The input goes to node on stdin and the
witness comes back on stdout: neither touches the disk nor appears in a process listing (the input is the
client's secret). Errors carry the calculator's first line (circom's assert messages name a template and line,
not a value), cut to 300 characters.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from contracts.tools import ToolNotFound, npm_modules_dir
from proving.errors import RaymarketError

#: Defaults: seconds and bytes one witness computation may take.
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_MEMORY_BYTES = 2 * 1024**3
NODE = "node"

_SCRIPT = r"""
import fs from "fs";
import { pathToFileURL } from "url";
const [wasmPath, wcPath] = process.argv.slice(1);
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const { default: builder } = await import(pathToFileURL(wcPath).href);
try {
  const wc = await builder(fs.readFileSync(wasmPath));
  const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const w = await wc.calculateWTNSBin(input, true);
  process.stdout.write(Buffer.from(w));
} catch (e) {
  process.stderr.write(String((e && e.message) || e).split("\n")[0].slice(0, 300));
  process.exit(3);
}
"""


class WitnessError(RaymarketError, ValueError):
    """The witness could not be computed: the input does not fit the circuit (an assert failed, a signal is
    missing or unknown), the calculator ran out of time or memory, or node / circom_runtime is missing.

    Attributes:
        reason: ``input`` (the input's fault), ``timeout``, ``memory``, ``tool`` (the machine's).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def calculator_path() -> Path:
    """``circom_runtime``'s ``js/witness_calculator.js`` under the npm tools.

    Raises:
        WitnessError: ``tool`` when it is not installed.
    """
    try:
        path = npm_modules_dir() / "circom_runtime" / "js" / "witness_calculator.js"
    except ToolNotFound as exc:
        raise WitnessError("tool", str(exc)) from None
    if not path.exists():
        raise WitnessError("tool", f"{path} not found; install the npm tools (`npm install --prefix .npm-tools`)")
    return path


def _watch(proc: subprocess.Popen, max_memory_bytes: int, stop: threading.Event, over: list[bool]) -> None:
    try:
        p = psutil.Process(proc.pid)
        while not stop.wait(0.05):
            if p.memory_info().rss > max_memory_bytes:
                over[0] = True
                proc.kill()
                return
    except psutil.Error:  # it exited
        return


def calculate_witness(wasm: str | Path, inp: dict[str, Any], *, timeout_s: float = DEFAULT_TIMEOUT_S,
                      max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES) -> bytes:
    """The snarkjs ``.wtns`` bytes of ``inp`` (a JSON object of signals, e.g.
    ``market.core.circuit_input.parse_input``'s) under the circom wasm at ``wasm``.

    Raises:
        WitnessError: see the class (``input`` / ``timeout`` / ``memory`` / ``tool``).
    """
    wc = calculator_path()
    heap_mb = max(64, min(4096, max_memory_bytes // (2 * 1024**2)))
    cmd = [NODE, f"--max-old-space-size={heap_mb}", "--input-type=module", "-e", _SCRIPT, "--", str(wasm), str(wc)]
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        raise WitnessError("tool", f"cannot run node: {exc}") from None
    stop, over = threading.Event(), [False]
    watcher = threading.Thread(target=_watch, args=(proc, max_memory_bytes, stop, over), daemon=True)
    watcher.start()
    t0 = time.monotonic()
    try:
        out, err = proc.communicate(json.dumps(inp).encode(), timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise WitnessError("timeout", f"witness calculation over {timeout_s:.0f} s; killed") from None
    finally:
        stop.set()
        watcher.join(1.0)
    if over[0]:
        raise WitnessError("memory", f"witness calculation over {max_memory_bytes} bytes of memory; killed")
    if proc.returncode == 3:
        raise WitnessError("input", "the input does not fit the circuit: "
                           + err.decode("utf-8", "replace").strip()[:300])
    if proc.returncode != 0 or not out:
        raise WitnessError("tool", f"witness calculator exited {proc.returncode} after "
                           f"{time.monotonic() - t0:.1f} s: {err.decode('utf-8', 'replace').strip()[:300]}")
    return out
