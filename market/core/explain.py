"""Why a job got no match, and what it would cost before it is submitted.

Every offer is checked against the job in a fixed *funnel* order and counted under the first constraint
it fails: ``model`` (GPU model), ``labels`` (required labels / verification policy), ``access`` (allow,
deny and exclude lists), ``reputation``, ``size`` (free CPUs / GPUs / memory at round start), ``deadline``
(too slow at its benchmarked speed), ``bond`` (free bond < collateral), ``price`` (ask > the job's cap),
``taken`` (met every constraint, but this round's other assignments used its room). The *blocking*
constraint is the first funnel stage after which no offer is left; the text names it and gives the
counts, e.g. ``"0 offers with gpu_model H100; 40 offers lack gpu_model H100"`` or ``"3 offers too expensive:
cheapest feasible ask 1.2e+15 wei > cap 1e+15 wei"``. A job blocked by a resource also names *which*
resource (:attr:`Explanation.resource`): ``gpus`` (no offer has GPUs) or ``gpu_model`` at the ``model`` stage;
``cpus``, ``gpus`` or ``memory`` at the ``size`` stage, where the text says how much the job asks and the most
any offer failing there has free, e.g. ``"0 offers with free memory 64 GiB (most free: 8 GiB); 3 offers lack
free memory 64 GiB (most free: 8 GiB)"``.

:func:`quote` answers before submission: feasible now or not and why, the cheapest ask, and p50 / p90 of
recent clearing prices (nearest-rank percentiles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from market.core import _matching_kernels as K
from market.core.orders import (JobBook, JobOrder, Offer, OfferBook, Usage, build_job_book, build_offer_book,
                           run_seconds, static_ask_wei, unit_asks)

REASONS: tuple[str, ...] = K.REASON_NAMES[1:]


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why ``job_id`` is unmatched: ``counts`` (reason -> offers, funnel order), ``blocking`` (the reason
    after which no offer is left, ``"no offers"`` if there were none), ``cheapest_ask_wei`` among offers
    failing on price only (None if none), ``cap_wei`` (the job's price cap this round), ``text``, ``resource``
    (when the blocking stage is a resource: ``"gpus"`` / ``"gpu_model"`` at ``model``; ``"cpus"``, ``"gpus"`` or
    ``"memory"`` at ``size``, the one most of the offers failing there lack; else None)."""

    job_id: str
    offers: int
    counts: Mapping[str, int]
    blocking: str
    cheapest_ask_wei: int | None
    cap_wei: int
    text: str
    resource: str | None = None


#: The resources of the ``size`` stage, in the order of :func:`market.core._matching_kernels.size_shortfall`.
SIZE_RESOURCES: tuple[str, ...] = ("cpus", "gpus", "memory")


@dataclass(frozen=True, slots=True)
class Quote:
    """Answer to "what if I submit this job now": ``feasible`` (some offer meets every constraint and the
    max price), ``cheapest_ask_wei`` (among offers meeting every constraint but price; None if none),
    ``feasible_offers``, ``explanation`` (the funnel), ``p50_wei`` / ``p90_wei`` of ``recent_prices``
    (None without data), ``samples``."""

    feasible: bool
    cheapest_ask_wei: int | None
    feasible_offers: int
    explanation: Explanation
    p50_wei: int | None
    p90_wei: int | None
    samples: int


def _phrase(reason: str, jb: JobBook, j: int, models: Sequence[str]) -> str:
    """What an offer must have to pass ``reason``'s stage, in words."""
    model = int(jb.model[j])
    mem_gib = int(jb.mem[j]) / 2**30
    if reason == "model":
        return "GPUs" if model == -1 else f"gpu_model {models[model] if model >= 0 else jb.unknown_models.get(j, '?')}"
    return {
        "labels": "the required labels / verification policy",
        "access": "access (allow/deny/exclude lists)",
        "reputation": f"reputation >= {float(jb.min_reputation[j]):g}",
        "size": f"free capacity for {int(jb.cpus[j])} CPU, {int(jb.gpus[j])} GPU, {mem_gib:g} GiB",
        "deadline": "the speed to meet the deadline",
        "bond": f"free bond >= collateral {int(jb.collateral[j]):.3g} wei",
        "price": "an ask within the price cap",
        "taken": "room left after this round's higher-welfare assignments",
    }[reason]


def _amount(r: int, value: int) -> str:
    if r == 2:
        return f"memory {value / 2**30:g} GiB"
    return f"{value} {'CPU' if r == 0 else 'GPU'}{'' if value == 1 else 's'}"


def _size_phrase(jb: JobBook, j: int, short: np.ndarray, most: np.ndarray) -> tuple[str, str, str | None]:
    """The size stage in words: (what no offer has, what the offers failing there lack, the resource most of them
    lack (ties: cpus, gpus, memory)), naming each lacking resource with what the job asks and the most free on any
    offer lacking it."""
    need = (int(jb.cpus[j]), int(jb.gpus[j]), int(jb.mem[j]))
    lacking = [r for r in range(3) if short[r] > 0]
    if not lacking:
        whole = "free capacity for " + ", ".join(_amount(r, need[r]) for r in range(3))
        return whole, whole, None
    each = {r: f"{_amount(r, need[r])} (most free: {_amount(r, max(0, int(most[r]))).removeprefix('memory ')})"
            for r in lacking}
    main = max(lacking, key=lambda r: (int(short[r]), -r))
    if len(lacking) == 1:
        return f"free {each[main]}", f"free {each[main]}", SIZE_RESOURCES[main]
    with_ = "free " + " and ".join(_amount(r, need[r]) for r in lacking)
    lack = "free capacity (" + ", ".join(f"{int(short[r])} lack {each[r]}" for r in lacking) + ")"
    return with_, lack, SIZE_RESOURCES[main]


def explanation_from_counts(jb: JobBook, j: int, models: Sequence[str], counts: np.ndarray, cheapest: int,
                            cap_wei: int, short: np.ndarray | None = None,
                            most: np.ndarray | None = None) -> Explanation:
    """Render one job's funnel ``counts`` (int[N_REASONS], index 0 = passed everything) as an Explanation:
    ``"<job>: 0 offers with <blocking requirement>; <n> offers lack <requirement>; ..."``. ``short`` / ``most``
    (int[3], :func:`market.core._matching_kernels.size_shortfall`'s row for the job) name the resource of the
    ``size`` stage; without them the size stage lists the job's whole request."""
    size_with, size_lack, size_resource = (_size_phrase(jb, j, short, most) if short is not None and most is not None
                                           else (None, None, None))
    total = int(counts.sum())
    named = {r: int(counts[i + 1]) for i, r in enumerate(REASONS) if counts[i + 1]}
    left, blocking, parts = total, ("no offers" if total == 0 else "none"), []
    for i, r in enumerate(REASONS):
        n = int(counts[i + 1])
        if n == 0:
            continue
        left -= n
        if r == "price":
            parts.append(f"{n} offers too expensive, cheapest feasible ask {cheapest:.3g} wei > cap {cap_wei:.3g} wei"
                         if cheapest >= 0 else f"{n} offers too expensive (ask > cap {cap_wei:.3g} wei)")
        elif r == "taken":
            parts.append(f"{n} offers met every constraint but were filled by higher-welfare jobs this round")
        else:
            parts.append(f"{n} offers lack {size_lack if r == 'size' and size_lack else _phrase(r, jb, j, models)}")
        if left == 0 and blocking == "none":
            blocking = r
            if r not in ("price", "taken"):
                parts.insert(0, f"0 offers with {size_with if r == 'size' and size_with else _phrase(r, jb, j, models)}")
    text = f"{jb.job_ids[j]}: " + ("no offers in this round" if total == 0 else "; ".join(parts))
    resource = None
    if blocking == "model":
        resource = "gpus" if int(jb.model[j]) == -1 else "gpu_model"
    elif blocking == "size":
        resource = size_resource
    return Explanation(jb.job_ids[j], total, named, blocking, cheapest if cheapest >= 0 else None, cap_wei, text,
                       resource)


def explain_unmatched(jb: JobBook, ob: OfferBook, models: Sequence[str], unmatched: np.ndarray, caps: np.ndarray,
                      counts: np.ndarray, cheapest: np.ndarray, rule: str) -> dict[str, Explanation]:
    """Explanations of a round's unmatched jobs (from the funnel counts the round computed); the jobs with offers
    failing on size get their lacking resource named (:func:`market.core._matching_kernels.size_shortfall`)."""
    sized = np.flatnonzero(counts[:, K.R_SIZE] > 0) if len(unmatched) else np.zeros(0, np.int64)
    short = most = None
    if len(sized):
        short, most = K.size_shortfall(unmatched[sized].astype(np.int64), K.job_columns(jb), K.offer_columns(ob))
    row = {int(t): i for i, t in enumerate(sized.tolist())}
    out = {}
    for t, j in enumerate(unmatched.tolist()):
        i = row.get(t)
        out[jb.job_ids[j]] = explanation_from_counts(
            jb, j, models, counts[t], int(cheapest[t]), int(caps[j]),
            None if i is None or short is None else short[i], None if i is None or most is None else most[i])
    return out


def percentile_wei(values: Sequence[int], q: float) -> int | None:
    """Nearest-rank percentile (``q`` in (0, 100]) of integer wei values; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def quote(job: JobOrder, offers: Iterable[Offer], recent_prices: Sequence[int], *, now_s: float,
          running: Mapping[str, Usage] | None = None) -> Quote:
    """Would ``job`` match now, and at what price?

    Args:
        job: the order as it would be submitted (its ``max_price_wei`` is the cap).
        offers: the current offers; running: usage already on them.
        recent_prices: recent clearing prices (wei) of comparable jobs (the exchange picks them).
        now_s: time of the quote (deadlines are checked against it).
    """
    offers = list(offers)
    ob, models, labels = build_offer_book(offers, running)
    jb = build_job_book([job], ob, models, labels)
    ov = K.override_columns(unit_asks([job], offers), jb, ob)  # per-unit quotes, as in a round
    rem = (ob.cpus_free, ob.gpus_free, ob.mem_free, ob.bond_free)
    counts, cheapest = K.funnel(np.zeros(1, np.int64), K.job_columns(jb), K.offer_columns(ob), jb.max_price.copy(),
                                float(now_s), rem, ov)
    short, most = K.size_shortfall(np.zeros(1, np.int64), K.job_columns(jb), K.offer_columns(ob))
    expl = explanation_from_counts(jb, 0, models, counts[0], int(cheapest[0]), job.max_price_wei, short[0], most[0])
    best = _cheapest_feasible_ask(job, offers, now_s, running)
    return Quote(feasible=bool(counts[0, 0] > 0), cheapest_ask_wei=best, feasible_offers=int(counts[0, 0]),
                 explanation=expl, p50_wei=percentile_wei(recent_prices, 50), p90_wei=percentile_wei(recent_prices, 90),
                 samples=len(recent_prices))


def _cheapest_feasible_ask(job: JobOrder, offers: Iterable[Offer], now_s: float,
                           running: Mapping[str, Usage] | None) -> int | None:
    asks = [static_ask_wei(job, o) for o in offers
            if reference_reason(job, o, now_s, None, running) in ("ok", "price")]
    return min(asks) if asks else None


def reference_reason(job: JobOrder, offer: Offer, now_s: float, cap_wei: int | None,
                     running: Mapping[str, Usage] | None = None) -> str:
    """Plain-Python reference of the kernels' funnel for one pair (start-of-round capacity): the first
    failing reason name, ``"price"`` when only the price fails (``cap_wei`` None: no price check), or ``"ok"``."""
    used = (running or {}).get(offer.provider, Usage())
    labels = offer.labels | {"verify:" + p for p in offer.verification}
    if job.gpus > 0 and (offer.gpu_model is None or (job.gpu_model is not None and job.gpu_model != offer.gpu_model)):
        return "model"
    if not (job.labels_required | {"verify:" + job.verification}) <= labels:
        return "labels"
    if (job.allow_providers and offer.provider not in job.allow_providers) or \
            offer.provider in job.deny_providers or offer.provider in job.exclude_providers:
        return "access"
    if offer.reputation < job.min_reputation:
        return "reputation"
    if (offer.cpus - used.cpus < job.cpus or offer.gpus - used.gpus < job.gpus
            or offer.memory_bytes - used.memory_bytes < job.memory_bytes):
        return "size"
    if now_s + run_seconds(job.duration_estimate_s, offer.speed_milli) > job.deadline_s:
        return "deadline"
    if offer.free_bond_wei < job.collateral_wei:
        return "bond"
    if cap_wei is not None and static_ask_wei(job, offer) > cap_wei:
        return "price"
    return "ok"
