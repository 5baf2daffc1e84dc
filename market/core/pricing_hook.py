"""Provider pricing hooks: the pure rules (what a hook's answer means), not the running of provider code.

Akash providers price bids with a pricing script; here a provider names a callable by entry point
(``"package.module:function"``) or by file (``"/path/to/pricing.py:function"``). It is called as
``function(job: dict, offer: dict) -> int`` with the records as JSON-ready dicts
(:func:`market.core.orders.record_to_dict`) and must return the ask in wei.

The hook is provider code, so the exchange never runs it in its own process: the process adapter
:mod:`market.exchange.pricing_hooks` runs it in a separate worker process (scrubbed environment, temporary
cwd, rlimits, killed with its process group at the time limit) and hands the raw answers to
:func:`report_from_answers` here. The rules:

* a valid answer is an ``int`` (not ``bool``) with ``1 <= ask < 2**62`` (:func:`check_ask`);
* an answer ``<= 0``, a non-integer or an out-of-range value is **refused**: the provider makes no bid on
  that job in this round and the reason goes into the round's explanation of the job (a zero ask would
  clear at price 0 and then fail payment);
* a hook that raises, cannot be loaded, or does not answer within its time limit **falls back** to the
  provider's static ask (:func:`market.core.orders.static_ask_wei`: per unit of work, else per second),
  reported with the reason; after a timeout the remaining jobs of the batch get the static ask
  (``"skipped after timeout"``).

:func:`apply_reports` turns the reports into a round's ``ask_overrides`` and, for refused pairs, the
provider added to the job's ``deny_providers`` (so the matching kernels need no new case).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Literal, Sequence

from market.core.orders import MAX_WEI, JobOrder, MatchingError, Offer, static_ask_wei


class HookLoadError(MatchingError):
    """The hook spec names nothing callable (``spec``, ``why``)."""

    def __init__(self, spec: str, why: str) -> None:
        self.spec, self.why = spec, why
        super().__init__(f"pricing hook {spec!r}: {why} (expected 'module:function' or 'path.py:function')")


@dataclass(frozen=True, slots=True)
class Fallback:
    """The static ask was used for ``job_id`` because of ``reason`` (exception text, timeout, load failure)."""

    job_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """The hook's answer for ``job_id`` was not a valid ask: the provider makes no bid on it (``reason``)."""

    job_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class HookAnswer:
    """One raw outcome of calling a hook for ``job_id``.

    ``kind``: ``"value"`` (``value`` is what the hook returned, as decoded from JSON), ``"error"`` (the hook
    raised; ``detail`` names the exception), ``"timeout"`` (no answer within the limit; ``detail`` says
    how long), ``"skipped"`` (not called: an earlier call timed out or the worker died; ``detail`` why).
    """

    job_id: str
    kind: Literal["value", "error", "timeout", "skipped"]
    value: Any = None
    detail: str = ""


@dataclass
class HookReport:
    """Outcome of running one provider's hook over a batch of jobs.

    ``asks`` maps ``(job_id, provider)`` to the ask (wei) to use, hook or static; ``fallbacks`` lists the
    jobs that got the static ask and why; ``refusals`` the jobs the provider does not bid on and why;
    ``hook_calls_ok`` counts valid hook answers.
    """

    provider: str
    asks: dict[tuple[str, str], int] = field(default_factory=dict)
    fallbacks: list[Fallback] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    hook_calls_ok: int = 0


def check_ask(value: Any) -> tuple[int | None, str]:
    """Validate a hook's answer: ``(ask, "")`` when it is an int wei amount in ``[1, 2**62)``, else
    ``(None, reason)`` naming what is wrong (``<= 0``, not an int, out of range)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None, f"returned {_short(value)}: an ask must be an int number of wei"
    if value <= 0:
        return None, (f"ask {value} wei refused: an ask must be at least 1 wei "
                      "(a zero ask would clear at price 0 and fail payment)")
    if value >= MAX_WEI:
        return None, f"ask {value} wei refused: out of range (must be below 2**62 wei)"
    return value, ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def report_from_answers(offer: Offer, jobs: Sequence[JobOrder], answers: Iterable[HookAnswer]) -> HookReport:
    """Apply the rules of the module docstring to ``answers`` (one per job of ``jobs``; a job without an
    answer falls back, reason ``"no answer"``)."""
    report = HookReport(offer.provider)
    by_id = {a.job_id: a for a in answers}
    for job in jobs:
        key = (job.job_id, offer.provider)
        a = by_id.get(job.job_id)
        if a is None or a.kind != "value":
            reason = "no answer" if a is None else a.detail or a.kind
            report.fallbacks.append(Fallback(job.job_id, reason))
            report.asks[key] = static_ask_wei(job, offer)
            continue
        ask, why = check_ask(a.value)
        if ask is None:
            report.refusals.append(Refusal(job.job_id, why))
            continue
        report.asks[key] = ask
        report.hook_calls_ok += 1
    return report


def fallback_report(offer: Offer, jobs: Sequence[JobOrder], reason: str) -> HookReport:
    """Every job gets ``offer``'s static ask because of ``reason`` (e.g. the hook failed to load)."""
    return report_from_answers(offer, jobs, [HookAnswer(j.job_id, "skipped", detail=reason) for j in jobs])


def apply_reports(jobs: Sequence[JobOrder], reports: Iterable[HookReport]
                  ) -> tuple[tuple[JobOrder, ...], dict[tuple[str, str], int], dict[str, list[str]]]:
    """A round's inputs with the hooks' answers applied.

    Returns:
        ``(jobs, ask_overrides, notes)``: the jobs, each refused pair's provider added to the job's
        ``deny_providers``; the ``(job_id, provider) -> ask`` overrides; ``job_id -> ["pricing hook of P
        refused: reason", ...]`` for the round's explanation.
    """
    overrides: dict[tuple[str, str], int] = {}
    deny: dict[str, set[str]] = {}
    notes: dict[str, list[str]] = {}
    for rep in reports:
        overrides.update(rep.asks)
        for r in rep.refusals:
            deny.setdefault(r.job_id, set()).add(rep.provider)
            notes.setdefault(r.job_id, []).append(f"pricing hook of {rep.provider} refused: {r.reason}")
    out = tuple(replace(j, deny_providers=j.deny_providers | frozenset(deny[j.job_id])) if j.job_id in deny else j
                for j in jobs)
    return out, overrides, notes
