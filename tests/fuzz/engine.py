"""A small deterministic fuzzer: mutate valid inputs, feed them to a consumer, count outcomes.

A :class:`Target` names a format: a corpus of valid inputs (bytes), a mutator, and the
consumer that parses (and uses) one input. Every case is reproducible on its own: case ``i``
of target ``t`` under seed ``s`` draws from ``random.Random(f"{s}/{t}/{i}")`` only.

Outcomes of one case:

* ``accepted``: the consumer returned;
* ``clean_error``: it raised one of the target's clean error types (the project's errors);
* ``crash``: it raised anything else (a traceback for the user), or, when run isolated, the
  process died (a signal such as SIGSEGV, SIGABRT) or exited on its own;
* ``hang``: it ran longer than ``hang_s``.

:func:`run_in_process` runs cases in this process (fast; it cannot survive a native crash nor
interrupt a hang, only time it). :func:`run_isolated` runs them in a child process that reports
each case on a pipe; a child that dies or stalls is replaced and the case is counted as a
crash or a hang, so native crashes in numba kernels are caught and pinpointed.

Adding a target: write a module that builds a :class:`Target` and calls :func:`register`, and
append the module's name to :data:`TARGET_MODULES` (``benchmarks/fuzz.py`` and the tests
load every target through :func:`load_targets`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pickle
import random
import selectors
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proving.errors import RaymarketError

#: Modules that register targets when imported (see the module docstring).
TARGET_MODULES: list[str] = ["tests.fuzz.proving_targets", "tests.fuzz.jobspec_targets", "tests.fuzz.api_targets"]
#: Outcome names, in report order.
OUTCOMES = ("clean_error", "crash", "hang", "accepted")
#: At most this many failing cases are kept with their details per run.
MAX_FAILURES_KEPT = 20


@dataclass(frozen=True)
class Target:
    """One fuzz target.

    Attributes:
        name: registry key (``"zkey"``, ``"proof_json"``, ...).
        corpus: builds the valid inputs (deterministic; called once per process, cached).
        mutate: ``(rng, valid_input) -> mutated bytes``.
        check: the consumer run in process: parse (and cheap use) of one input; returns on
            acceptance, raises on rejection.
        deep_check: the consumer run isolated (may run native kernels, e.g. the numba
            prover); ``check`` when None.
        clean: exception types that count as clean rejections.
    """

    name: str
    corpus: Callable[[], Sequence[bytes]]
    mutate: Callable[[random.Random, bytes], bytes]
    check: Callable[[bytes], Any]
    deep_check: Callable[[bytes], Any] | None = None
    clean: tuple[type[BaseException], ...] = (RaymarketError,)


REGISTRY: dict[str, Target] = {}
_CORPORA: dict[str, list[bytes]] = {}


def register(target: Target) -> Target:
    """Add ``target`` to :data:`REGISTRY` (a later registration under the same name replaces it)."""
    REGISTRY[target.name] = target
    return target


def load_targets() -> dict[str, Target]:
    """Import every module of :data:`TARGET_MODULES` and return the registry."""
    for module in TARGET_MODULES:
        importlib.import_module(module)
    return REGISTRY


def corpus_of(target: Target) -> list[bytes]:
    """The target's valid inputs, built once per process."""
    if target.name not in _CORPORA:
        _CORPORA[target.name] = list(target.corpus())
    return _CORPORA[target.name]


def case_input(target: Target, corpus: Sequence[bytes], seed: int, index: int) -> bytes:
    """The mutated input of case ``index`` (depends on ``seed``, the target name and ``index`` only)."""
    rng = random.Random(f"{seed}/{target.name}/{index}")
    return target.mutate(rng, corpus[rng.randrange(len(corpus))])


@dataclass
class Tally:
    """Outcome counts of a run; ``failures`` keeps the first crashes and hangs with details,
    ``accepted_cases`` the indices of the accepted cases (e.g. to replay them isolated)."""

    target: str
    cases: int = 0
    clean_error: int = 0
    crash: int = 0
    hang: int = 0
    accepted: int = 0
    failures: list[dict] = field(default_factory=list)
    elapsed_s: float = 0.0
    accepted_cases: list[int] = field(default_factory=list)

    def add(self, index: int, outcome: str, detail: str = "") -> None:
        """Count one case; crashes and hangs keep ``detail`` (up to :data:`MAX_FAILURES_KEPT`)."""
        self.cases += 1
        setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome == "accepted":
            self.accepted_cases.append(index)
        if outcome in ("crash", "hang") and len(self.failures) < MAX_FAILURES_KEPT:
            self.failures.append({"case": index, "outcome": outcome, "detail": detail[-2000:]})

    def as_dict(self) -> dict:
        """JSON-ready counts (``cases``, ``clean_error``, ``crash``, ``hang``, ``accepted``, ...)."""
        return {"target": self.target, "cases": self.cases, **{k: getattr(self, k) for k in OUTCOMES},
                "elapsed_s": round(self.elapsed_s, 3), "failures": self.failures}


def classify(target: Target, data: bytes, *, deep: bool, hang_s: float) -> tuple[str, str]:
    """Run one input through the target's consumer: ``(outcome, detail)``."""
    consumer = (target.deep_check or target.check) if deep else target.check
    start = time.perf_counter()
    try:
        consumer(data)
        outcome, detail = "accepted", ""
    except target.clean as e:
        outcome, detail = "clean_error", f"{type(e).__name__}: {e}"[:300]
    except Exception:  # noqa: BLE001 - any other exception is what the fuzzer looks for
        outcome, detail = "crash", traceback.format_exc()
    elapsed = time.perf_counter() - start
    if elapsed > hang_s:
        return "hang", f"took {elapsed:.2f} s (limit {hang_s} s); outcome was {outcome}"
    return outcome, detail


def run_in_process(target: Target, cases: int, seed: int, *, hang_s: float = 5.0, deep: bool = False) -> Tally:
    """Run ``cases`` mutated inputs through ``target`` in this process."""
    corpus, tally, start = corpus_of(target), Tally(target.name), time.perf_counter()
    for i in range(cases):
        data = case_input(target, corpus, seed, i)
        outcome, detail = classify(target, data, deep=deep, hang_s=hang_s)
        tally.add(i, outcome, detail)
    tally.elapsed_s = time.perf_counter() - start
    return tally


def run_isolated(target: Target, cases: int, seed: int, *, hang_s: float = 20.0, deep: bool = True,
                 start_timeout_s: float = 180.0, indices: Sequence[int] | None = None,
                 env: dict[str, str] | None = None) -> Tally:
    """Run cases in a child process; a child that dies or stalls counts that case as a crash or
    a hang, and a fresh child resumes with the next case.

    Args:
        target: a registered target (the child imports the module of ``target.check``, which
            must register it, and finds it by name).
        cases: run cases ``0..cases-1`` (ignored when ``indices`` is given).
        seed: the run's seed.
        hang_s: per-case limit; the child is killed past it.
        deep: use the target's ``deep_check``.
        start_timeout_s: limit for a child's imports and warm-up before its first case.
        indices: run exactly these case indices (e.g. a sample chosen by an in-process run).
        env: extra environment variables of the child (default ``NUMBA_NUM_THREADS=1``: tiny
            inputs gain nothing from threads, and spinning workers crawl on a loaded machine).
    """
    todo = list(range(cases)) if indices is None else list(indices)
    tally, start = Tally(target.name), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rm-fuzz-") as tmp:
        corpus_path = Path(tmp) / "corpus.pickle"
        corpus_path.write_bytes(pickle.dumps(corpus_of(target)))
        (Path(tmp) / "todo.json").write_text(json.dumps(todo))
        child_env = {**os.environ, "NUMBA_NUM_THREADS": "1", **(env or {})}
        pos = 0
        while pos < len(todo):
            pos = _child_batch(target, seed, todo, pos, Path(tmp), deep, hang_s, start_timeout_s, tally, child_env)
    tally.elapsed_s = time.perf_counter() - start
    return tally


def _child_batch(target: Target, seed: int, todo: list[int], pos: int, tmp: Path, deep: bool, hang_s: float,
                 start_timeout_s: float, tally: Tally, env: dict[str, str]) -> int:
    """Start one child at ``todo[pos]``; return the position after its last case."""
    cmd = [sys.executable, "-m", "tests.fuzz.child", target.name, "--module", target.check.__module__,
           "--seed", str(seed), "--corpus", str(tmp / "corpus.pickle"), "--todo", str(tmp / "todo.json"),
           "--start", str(pos)]
    if deep:
        cmd.append("--deep")
    with open(tmp / "stderr", "wb") as err:
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, cwd=_repo_root(), env=env)
    sel = selectors.DefaultSelector()
    assert child.stdout is not None
    sel.register(child.stdout, selectors.EVENT_READ)
    current, deadline, buf = None, time.monotonic() + start_timeout_s, b""
    try:
        while True:
            line, buf = _read_line(sel, child, buf, deadline)
            if line is None:  # stalled: the current case hangs (or the start-up did)
                child.kill()
                child.wait()
                if current is None:
                    raise RuntimeError(f"fuzz child for {target.name} did not start in {start_timeout_s} s")
                tally.add(current, "hang", f"no result in {hang_s} s")
                return todo.index(current) + 1
            if line == b"":  # EOF: the child died during the current case, or finished
                code = child.wait()
                if current is None:
                    if pos >= len(todo):
                        return pos
                    raise RuntimeError(f"fuzz child for {target.name} exited {code} before its first case: "
                                       f"{(tmp / 'stderr').read_bytes()[-2000:].decode(errors='replace')}")
                tally.add(current, "crash", f"child exited with {code}: "
                                            f"{(tmp / 'stderr').read_bytes()[-1500:].decode(errors='replace')}")
                return todo.index(current) + 1
            kind, _, rest = line.decode().partition(" ")
            if kind == "S":
                current, deadline = int(rest), time.monotonic() + hang_s
            elif kind == "R":
                index, outcome, detail = json.loads(rest)
                tally.add(index, outcome, detail)
                current = None
                if index == todo[-1]:
                    child.wait()
                    return len(todo)
                deadline = time.monotonic() + hang_s
    finally:
        sel.close()
        if child.poll() is None:
            child.kill()
            child.wait()


def _read_line(sel: selectors.BaseSelector, child: subprocess.Popen, buf: bytes,
               deadline: float) -> tuple[bytes | None, bytes]:
    """The next line from the child (``b""`` at EOF, ``None`` past ``deadline``) and the rest."""
    assert child.stdout is not None
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(timeout=left):
            return None, buf
        chunk = os.read(child.stdout.fileno(), 65536)
        if not chunk:
            return (buf if buf else b""), b""
        buf += chunk
    line, _, rest = buf.partition(b"\n")
    return line, rest


def _repo_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def child_main(argv: Sequence[str]) -> None:
    """Child side of :func:`run_isolated` (``python -m tests.fuzz.child``): warms the consumer
    up on a valid input (numba loads or compiles its kernels), then writes protocol lines on
    the original stdout (``S <case>`` before a case, ``R [case, outcome, detail]`` after);
    anything else the code prints goes to stderr."""
    parser = argparse.ArgumentParser(description="fuzz child process (used by run_isolated)")
    parser.add_argument("target")
    parser.add_argument("--module", action="append", default=[], help="module that registers the target")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--todo", required=True)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--deep", action="store_true")
    args = parser.parse_args(argv)
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    for module in args.module:
        importlib.import_module(module)
    target = (REGISTRY if args.target in REGISTRY else load_targets())[args.target]
    corpus = pickle.loads(Path(args.corpus).read_bytes())
    _CORPORA[target.name] = corpus
    todo = json.loads(Path(args.todo).read_text())
    classify(target, corpus[0], deep=args.deep, hang_s=float("inf"))
    for index in todo[args.start:]:
        data = case_input(target, corpus, args.seed, index)
        proto.write(f"S {index}\n")
        proto.flush()
        outcome, detail = classify(target, data, deep=args.deep, hang_s=float("inf"))
        proto.write("R " + json.dumps([index, outcome, detail]) + "\n")
        proto.flush()
