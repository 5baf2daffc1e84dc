"""Provider pricing hooks: a provider-supplied Python callable that turns a job into an ask.

Akash providers price bids with a pricing script; here a provider names a callable by entry point
(``"package.module:function"``) or by file (``"/path/to/pricing.py:function"``). It is called as
``function(job: dict, offer: dict) -> int`` with the records as JSON-ready dicts
(:func:`market.core.orders.record_to_dict`) and must return the ask in wei (``int``, 0 <= ask < 2**62).

The hook runs in a worker thread with a per-call time limit (``timeout_s``). A hook that raises,
returns something other than a valid wei amount, or does not answer in time falls back to the static
ask (:func:`market.core.orders.ask_wei`) and the fallback is reported with its reason. A hook that times out
is abandoned for the rest of the batch (its thread cannot be killed; the remaining jobs get the static
ask, reported as ``"skipped after timeout"``). The asks feed :func:`market.core.matching.clear_round`'s
``ask_overrides``.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from market.core.orders import MAX_WEI, JobOrder, MatchingError, Offer, ask_wei, record_to_dict

Hook = Callable[[dict[str, Any], dict[str, Any]], int]


class HookLoadError(MatchingError):
    """The hook spec names nothing callable (``spec``, ``why``)."""

    def __init__(self, spec: str, why: str) -> None:
        self.spec, self.why = spec, why
        super().__init__(f"pricing hook {spec!r}: {why} (expected 'module:function' or 'path.py:function')")


@dataclass(frozen=True, slots=True)
class Fallback:
    """The static ask was used for ``job_id`` because of ``reason`` (exception text, timeout, bad value)."""

    job_id: str
    reason: str


@dataclass
class HookReport:
    """Outcome of running one provider's hook over a batch of jobs.

    ``asks`` maps ``(job_id, provider)`` to the ask (wei) to use, hook or static; ``fallbacks`` lists the
    jobs that got the static ask and why; ``hook_calls_ok`` counts valid hook answers.
    """

    provider: str
    asks: dict[tuple[str, str], int] = field(default_factory=dict)
    fallbacks: list[Fallback] = field(default_factory=list)
    hook_calls_ok: int = 0


def load_hook(spec: str) -> Hook:
    """Resolve ``"module:function"`` or ``"path.py:function"`` to the callable.

    Raises:
        HookLoadError: malformed spec, module or file not found, attribute missing or not callable.
    """
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise HookLoadError(spec, "no ':function' part")
    try:
        if target.endswith(".py") or os.sep in target:
            if not os.path.isfile(target):
                raise HookLoadError(spec, f"file {target} not found")
            mod_name = "raymarket_pricing_hook_" + str(abs(hash(os.path.abspath(target))))
            loader_spec = importlib.util.spec_from_file_location(mod_name, target)
            if loader_spec is None or loader_spec.loader is None:
                raise HookLoadError(spec, "cannot load the file as a module")
            module = importlib.util.module_from_spec(loader_spec)
            loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except HookLoadError:
        raise
    except Exception as exc:  # import-time errors of the provider's code
        raise HookLoadError(spec, f"import failed: {type(exc).__name__}: {exc}") from exc
    fn = getattr(module, name, None)
    if not callable(fn):
        raise HookLoadError(spec, f"{name!r} is missing or not callable")
    return fn


def _valid_ask(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_WEI:
        return None
    return value


def run_hook(hook: Hook | str, offer: Offer, jobs: Sequence[JobOrder], *, timeout_s: float = 0.25) -> HookReport:
    """Asks of ``offer``'s provider for ``jobs`` through its pricing hook, with per-call ``timeout_s``.

    Args:
        hook: the callable, or a spec for :func:`load_hook` (a spec that fails to load makes every job
            fall back, reason "load failed: ...").
        offer: the provider's offer (passed to the hook; its static prices are the fallback).
        jobs: the jobs to price.
        timeout_s: seconds each call may take.
    """
    report = HookReport(offer.provider)
    try:
        fn = load_hook(hook) if isinstance(hook, str) else hook
    except HookLoadError as exc:
        return _fallback_all(report, offer, jobs, f"load failed: {exc.why}")
    offer_doc = record_to_dict(offer)
    pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pricing-hook-{offer.provider}")
    try:
        for i, job in enumerate(jobs):
            future = pool.submit(fn, record_to_dict(job), dict(offer_doc))
            try:
                value = future.result(timeout=timeout_s)
            except cf.TimeoutError:
                report.fallbacks.append(Fallback(job.job_id, f"timed out after {timeout_s:g} s"))
                report.asks[(job.job_id, offer.provider)] = ask_wei(job, offer)
                return _fallback_all(report, offer, jobs[i + 1:], "skipped after timeout")
            except Exception as exc:
                _static(report, offer, job, f"raised {type(exc).__name__}: {exc}")
                continue
            ask = _valid_ask(value)
            if ask is None:
                _static(report, offer, job, f"returned {value!r}, not an int wei amount in [0, 2**62)")
                continue
            report.asks[(job.job_id, offer.provider)] = ask
            report.hook_calls_ok += 1
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return report


def _static(report: HookReport, offer: Offer, job: JobOrder, reason: str) -> None:
    report.fallbacks.append(Fallback(job.job_id, reason))
    report.asks[(job.job_id, offer.provider)] = ask_wei(job, offer)


def _fallback_all(report: HookReport, offer: Offer, jobs: Sequence[JobOrder], reason: str) -> HookReport:
    for job in jobs:
        _static(report, offer, job, reason)
    return report
