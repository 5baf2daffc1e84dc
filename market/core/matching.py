"""The matching round: clear open jobs against offers in one batch auction under constraints.

:func:`clear_round` maximises welfare = sum over assigned jobs of (``max_price_wei`` - ask) subject to:
per-provider capacity (CPUs, GPUs, memory) across this round's assignments and ``running`` jobs (no
over-commit), GPU model, free bond >= the job's collateral (each assignment consumes it), deadline met at
the provider's benchmarked speed, reputation floor, allow / deny / exclude lists, required labels and
verification policy, and ask <= the job's price cap under the pricing rule (:mod:`market.core.pricing`).

Algorithm (the problem is a multi-dimensional generalised assignment problem, NP-hard):

1. Jobs are grouped into *shapes* (cpus, gpus, gpu model, memory, reputation floor, required labels);
   each shape gets the list of offers that could ever hold it, sorted by cost per reference-second
   (``rate * 1000 / speed_milli``). ``duration_s * cost`` is a lower bound on the ask, so a job's walk
   down its list stops early; offers too full for the shape leave it through a path-halving skip list.
2. Phase 1 (selection): jobs in decreasing welfare density (welfare at the shape's cheapest offer per
   unit of the round's supply it takes) each take their cheapest feasible offer with room
   (:func:`market.core._matching_kernels.greedy_pass`). Rounds up to ``PORTFOLIO_JOBS`` jobs run steps 2-4
   for each of ``PRIORITY_VARIANTS`` (density variants, :func:`priority_order`) and keep the best.
3. Phase 2 (placement): on fresh capacity, the selected jobs are placed again, most cost-sensitive first
   (``duration * cheapest cost``: long, big jobs gain most from cheap capacity; rounds up to
   ``SMALL_ROUND_JOBS`` jobs also try that key divided by the shape's number of usable offers, so
   inflexible jobs go first), then the rest of phase 1's order fills what is left. The best of the
   phase-1 and phase-2 assignments is kept. Rounds above ``PHASE2_MAX_JOBS`` jobs skip phase 2.
4. Local improvement (``improve_pass``): unassigned jobs, then assigned ones, move to a cheaper offer or
   take a place by evicting one job that moves elsewhere, when welfare rises (all jobs in small rounds,
   ``IMPROVE_LIMIT`` in large ones); then unassigned jobs retry.
5. Rounds with ``jobs * offers <= LAGRANGE_MAX_COMBINATIONS`` also run a Lagrangian heuristic over all
   statically feasible pairs (capacity rows relaxed, subgradient steps with a primal repair at each,
   :func:`market.core._matching_kernels.lagrangian_heuristic`), then step 4 on its best assignment; the better
   of the two is kept. It prices each provider's scarce resources, so jobs that accept any GPU model stop
   taking the pools that model-specific jobs need (measured: 0.9856 -> 0.996 of the optimum at 1k x 100).
6. Rounds with ``jobs * offers <= EXACT_MAX_PAIRS`` are finished by an exact branch and bound
   (``branch_and_bound``) seeded with that assignment, within ``EXACT_NODE_LIMIT`` nodes.

The exact optimum (MIP, ``benchmarks/matching.py`` and ``tests/matching``) is the yardstick: the result
should stay within 1 % of it (measured figures: ``benchmarks/matching.py``). Determinism: books are
sorted by ids, every tie is broken by index (or by a ``seed``-keyed permutation for ``seed != 0``), and
every work bound counts steps, never time, so the same inputs and seed give the same assignment.

Replay: :class:`RoundInputs` is the canonical JSON of a round's inputs; :func:`replay` recomputes the
round and checks ``input_hash`` / ``output_hash`` (sha256 over the canonical columnar encoding, see
:func:`_input_hash`) against the recorded ones.

Re-auction: failed, timed-out or slashed jobs re-enter the next round as :func:`market.core.orders.reopen`
of their order (``attempt`` + 1, failed provider excluded, remaining budget as ``max_price_wei``).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from functools import cached_property
from operator import attrgetter
from typing import Any, Iterable, Mapping

import numpy as np

from market.core import _matching_kernels as K
from market.core._matching_kernels import job_columns, offer_columns, override_columns
from market.core.explain import Explanation, explain_unmatched
from market.core.orders import (JobBook, JobOrder, MatchingError, Offer, OfferBook, Usage, build_job_book,
                           build_offer_book, record_from_dict, record_to_dict, unit_asks)
from market.core.pricing import check_rule, clearing_prices, price_caps

#: Above this many distinct exact shapes, memory is bucketed (1/8 octave, rounded down) for the ranking.
MAX_EXACT_SHAPES = 256
#: Local improvement: candidate offers per job, passes, jobs examined per pass in large rounds, evicted
#: jobs tried per offer, list positions searched for an evicted job (candidates and victims x2 in rounds
#: up to PORTFOLIO_JOBS jobs).
IMPROVE_CANDIDATES = 4
IMPROVE_PASSES = 2
IMPROVE_LIMIT = 2000
IMPROVE_VICTIMS = 1
IMPROVE_VICTIM_STEPS = 16
#: Rounds with jobs x offers <= EXACT_MAX_PAIRS are then solved exactly by branch and bound, starting from
#: the heuristic's assignment, within EXACT_NODE_LIMIT nodes (deterministic; the incumbent is kept beyond).
EXACT_MAX_PAIRS = 4096
EXACT_NODE_LIMIT = 500_000
#: Rounds with jobs x offers <= LAGRANGE_MAX_COMBINATIONS also run the Lagrangian heuristic for LAGRANGE_ITERS
#: subgradient steps over their feasible pairs (fewer when pairs x steps > LAGRANGE_MAX_WORK; skipped below
#: LAGRANGE_MIN_ITERS steps) and keep it when its welfare is higher.
LAGRANGE_MAX_COMBINATIONS = 1_000_000
LAGRANGE_ITERS = 200
LAGRANGE_MIN_ITERS = 50
LAGRANGE_MAX_WORK = 40_000_000
#: Rounds up to PORTFOLIO_JOBS jobs run every priority variant and keep the best (one variant above).
PRIORITY_VARIANTS = ("sum", "sqrt", "sum/flex", "sqrt/flex")
PORTFOLIO_JOBS = 5000
#: Above this many jobs phase 2 is skipped (it adds ~0.1-0.2 % welfare there, at ~30 % of the time).
PHASE2_MAX_JOBS = 60_000
#: Rounds up to this many jobs try both phase-2 orders and improve every job.
SMALL_ROUND_JOBS = 20_000
HASH_DOMAIN = b"raymarket/round/v1"


class ReplayMismatch(MatchingError):
    """A replayed round's hash differs from the recorded one (``which``: "input_hash"/"output_hash")."""

    def __init__(self, which: str, recorded: str, recomputed: str) -> None:
        self.which, self.recorded, self.recomputed = which, recorded, recomputed
        super().__init__(f"{which} mismatch: recorded {recorded}, recomputed {recomputed}")


@dataclass(frozen=True, slots=True)
class Assignment:
    """``job_id`` runs on ``provider``; the provider asked ``ask_wei``, the job pays ``price_wei``."""

    job_id: str
    provider: str
    ask_wei: int
    price_wei: int


@dataclass
class RoundResult:
    """Outcome of one round (columnar; ``assignments`` / ``explanations`` materialise lazily).

    Fields: ``rule``, ``now_s``, ``seed``; ``job_index``/``offer_index``/``ask_wei``/``price_wei`` (int64
    arrays, one row per assignment, sorted by job id); ``unmatched_index`` (job rows); ``welfare_wei``;
    ``input_hash``/``output_hash`` (hex sha256); ``timings_s`` (phase -> seconds).
    """

    rule: str
    now_s: float
    seed: int
    job_index: np.ndarray
    offer_index: np.ndarray
    ask_wei: np.ndarray
    price_wei: np.ndarray
    unmatched_index: np.ndarray
    welfare_wei: int
    input_hash: str
    output_hash: str
    timings_s: dict[str, float]
    jobs: JobBook = field(repr=False)
    offers: OfferBook = field(repr=False)
    models: list[str] = field(repr=False)
    caps_wei: np.ndarray = field(repr=False)
    remaining: tuple = field(repr=False)
    overrides: tuple = field(repr=False)
    reason_counts: np.ndarray | None = field(default=None, repr=False)
    cheapest_ask_wei: np.ndarray | None = field(default=None, repr=False)

    @cached_property
    def assignments(self) -> list[Assignment]:
        """One :class:`Assignment` per matched job, sorted by job id."""
        ids, provs = self.jobs.job_ids, self.offers.providers
        return [Assignment(ids[j], provs[o], a, p) for j, o, a, p in
                zip(self.job_index.tolist(), self.offer_index.tolist(), self.ask_wei.tolist(), self.price_wei.tolist())]

    @property
    def unmatched(self) -> list[str]:
        """Ids of the jobs left unmatched (sorted)."""
        return [self.jobs.job_ids[j] for j in self.unmatched_index.tolist()]

    def count_reasons(self) -> tuple[np.ndarray, np.ndarray]:
        """Run the explanation funnel for every unmatched job (O(unmatched x offers), numba) if not done.

        Returns:
            ``(reason_counts int64[U, N_REASONS], cheapest_ask_wei int64[U])``, one row per unmatched job.
        """
        if self.reason_counts is None or self.cheapest_ask_wei is None:
            self.reason_counts, self.cheapest_ask_wei = K.funnel(
                self.unmatched_index, job_columns(self.jobs), offer_columns(self.offers), self.caps_wei,
                self.now_s, self.remaining, self.overrides)
        return self.reason_counts, self.cheapest_ask_wei

    @cached_property
    def explanations(self) -> dict[str, Explanation]:
        """job id -> why it was not matched (reasons counted over the offers, see :mod:`market.core.explain`);
        computed on first access unless ``clear_round(explain=True)``."""
        counts, cheapest = self.count_reasons()
        return explain_unmatched(self.jobs, self.offers, self.models, self.unmatched_index, self.caps_wei,
                                 counts, cheapest, self.rule)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: hashes, welfare, assignments, unmatched ids with their explanation text."""
        return {"rule": self.rule, "now_s": self.now_s, "seed": self.seed, "welfare_wei": self.welfare_wei,
                "input_hash": self.input_hash, "output_hash": self.output_hash,
                "assignments": [[a.job_id, a.provider, a.ask_wei, a.price_wei] for a in self.assignments],
                "unmatched": {k: e.text for k, e in self.explanations.items()}}


# ---------------------------------------------------------------------------------------------
# Round inputs (canonical JSON for replay)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundInputs:
    """Everything :func:`clear_round` reads; ``to_json`` / ``from_json`` round-trip it exactly.

    ``ask_overrides`` maps ``(job_id, provider)`` to a provider-hook ask (wei) replacing the static ask.
    """

    jobs: tuple[JobOrder, ...]
    offers: tuple[Offer, ...]
    rule: str = "pay-as-bid"
    now_s: float = 0.0
    running: Mapping[str, Usage] = field(default_factory=dict)
    seed: int = 0
    ask_overrides: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def to_json(self, *, input_hash: str | None = None, output_hash: str | None = None) -> str:
        """Canonical JSON (sorted keys and records); the hashes, when given, are recorded for :func:`replay`."""
        doc: dict[str, Any] = {
            "version": 1, "rule": self.rule, "now_s": self.now_s, "seed": self.seed,
            "jobs": [record_to_dict(j) for j in sorted(self.jobs, key=lambda j: j.job_id)],
            "offers": [record_to_dict(o) for o in sorted(self.offers, key=lambda o: o.provider)],
            "running": {p: record_to_dict(u) for p, u in sorted(self.running.items())},
            "ask_overrides": sorted([j, p, a] for (j, p), a in self.ask_overrides.items()),
        }
        if input_hash:
            doc["input_hash"] = input_hash
        if output_hash:
            doc["output_hash"] = output_hash
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "RoundInputs":
        """Parse :meth:`to_json` output.

        Raises:
            InvalidOrder: a record with unknown or bad fields.
        """
        doc = json.loads(text)
        return cls(jobs=tuple(record_from_dict(JobOrder, d) for d in doc["jobs"]),
                   offers=tuple(record_from_dict(Offer, d) for d in doc["offers"]),
                   rule=doc["rule"], now_s=doc["now_s"], seed=doc["seed"],
                   running={p: record_from_dict(Usage, u) for p, u in doc["running"].items()},
                   ask_overrides={(j, p): a for j, p, a in doc["ask_overrides"]})

    def clear(self) -> RoundResult:
        """:func:`clear_round` on these inputs."""
        return clear_round(self.jobs, self.offers, rule=self.rule, now_s=self.now_s, running=self.running,
                           seed=self.seed, ask_overrides=self.ask_overrides)


def replay(round_inputs_json: str) -> RoundResult:
    """Recompute a recorded round and check it matches.

    Raises:
        ReplayMismatch: the recorded ``input_hash`` or ``output_hash`` differs from the recomputed one.
    """
    doc = json.loads(round_inputs_json)
    result = RoundInputs.from_json(round_inputs_json).clear()
    for which in ("input_hash", "output_hash"):
        if which in doc and doc[which] != getattr(result, which):
            raise ReplayMismatch(which, doc[which], getattr(result, which))
    return result


# ---------------------------------------------------------------------------------------------
# The round
# ---------------------------------------------------------------------------------------------


def _unique_rows(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, axis=0, return_inverse=True)`` for int64 rows (lexicographic order, column 0 first):
    each column is ranked on its own, the ranks are combined in mixed radix (column 0 most significant, so
    the order is kept) and that one int64 code is uniqued; a lexsort when the radix product passes 2**62."""
    n, n_cols = keys.shape
    code = np.zeros(n, dtype=np.int64)
    radix = 1
    for c in range(n_cols):
        vals, rank = np.unique(keys[:, c], return_inverse=True)
        radix *= len(vals)
        if radix >= 1 << 62:
            return _unique_rows_lexsort(keys)
        code = code * len(vals) + rank.reshape(-1)
    ucode, first, inv = np.unique(code, return_index=True, return_inverse=True)
    return keys[first], inv.reshape(-1).astype(np.int64)


def _unique_rows_lexsort(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_unique_rows` by one lexsort of the rows (any number of distinct values)."""
    order = np.lexsort(keys.T[::-1])
    sk = keys[order]
    new = np.ones(len(sk), dtype=bool)
    if len(sk) > 1:
        new[1:] = np.any(sk[1:] != sk[:-1], axis=1)
    group = np.cumsum(new) - 1
    inv = np.empty(len(keys), dtype=np.int64)
    inv[order] = group
    return sk[new], inv


def _shape_keys(jb: JobBook) -> tuple[np.ndarray, np.ndarray]:
    """The shapes: unique key rows (cpus, gpus, model (GPU jobs), memory, reputation floor (float bits), mask
    words; lexicographic order) and each job's row. Memory (1/8 octave, rounded down) and the reputation
    floor (0.05 steps, down) are bucketed when there are more than MAX_EXACT_SHAPES exact keys; buckets
    only loosen a shape's offer list, every pair is still checked exactly."""
    model_key = np.where(jb.gpus > 0, jb.model, -1).astype(np.int64)
    rep = jb.min_reputation.copy()
    cols = [jb.cpus, jb.gpus, model_key, jb.mem, rep.view(np.int64), *(jb.mask.view(np.int64).T)]
    keys = np.stack(cols, axis=1)
    uniq, inv = _unique_rows(keys)
    if len(uniq) > MAX_EXACT_SHAPES:
        mem = keys[:, 3].astype(np.float64)
        bucket = np.where(mem > 0, np.exp2(np.floor(np.log2(np.maximum(mem, 1.0)) * 8) / 8), 0.0)
        keys[:, 3] = np.minimum(np.floor(bucket).astype(np.int64), jb.mem)
        keys[:, 4] = np.minimum(np.floor(rep * 20) / 20, rep).view(np.int64)
        uniq, inv = _unique_rows(keys)
    return uniq, inv


def build_shapes(jb: JobBook, ob: OfferBook) -> tuple[np.ndarray, tuple, np.ndarray]:
    """Group jobs into shapes and build each shape's cost-sorted offer list (see the kernels' docstring).

    Returns:
        ``(job_shape int32[J], lists, first_cost float64[S])``; ``lists`` = (s_ptr, s_off, s_cost, s_cpus,
        s_gpus, s_mem, s_bond); ``s_bond`` is the smallest collateral of the shape's jobs; ``first_cost``
        is the cheapest cost per reference-second of each shape (inf: no offer).
    """
    uniq, inv = _shape_keys(jb)
    s_bond = np.full(len(uniq), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(s_bond, inv, jb.collateral)
    ptr, offs, costs, first = K.shape_lists(uniq[:, :4].copy(), uniq[:, 4].copy().view(np.float64),
                                            uniq[:, 5:].copy().view(np.uint64), s_bond, offer_columns(ob))
    lists = (ptr, offs, costs, uniq[:, 0].copy(), uniq[:, 1].copy(), uniq[:, 3].copy(), s_bond)
    return inv.astype(np.int32), lists, first


def priority_order(jb: JobBook, job_shape: np.ndarray, first_cost: np.ndarray, caps: np.ndarray,
                   ob: OfferBook, seed: int, variant: str = "sum", flex: np.ndarray | None = None) -> np.ndarray:
    """Greedy order: decreasing welfare density = (cap - duration * cheapest cost) / capacity share, where
    the share adds the job's CPUs, GPUs and memory over the round's total free supply of each
    (``variant`` "sum"; "sqrt": its square root, favouring big jobs; "/flex" suffix: also divided by the
    square root of the number of offers the job's shape can use, so inflexible jobs go earlier).
    Ties: job index (``seed == 0``) or a seed-keyed permutation."""
    value = caps.astype(np.float64) - jb.duration_s * first_cost[job_shape]
    tot = lambda a: max(1.0, float(np.maximum(a, 0).sum()))  # noqa: E731
    share = (jb.cpus / tot(ob.cpus_free) + jb.gpus / tot(ob.gpus_free) + jb.mem / tot(ob.mem_free)) * jb.n
    if variant.startswith("sqrt"):
        share = np.sqrt(share)
    if variant.endswith("/flex") and flex is not None:
        share = share * np.sqrt(np.maximum(flex[job_shape], 1.0))
    density = np.where(np.isfinite(value), value / np.maximum(share, 1e-12), -np.inf)
    tie = np.arange(jb.n) if seed == 0 else np.random.default_rng(seed).permutation(jb.n)
    return np.lexsort((tie, -density)).astype(np.int64)


def _place(order: np.ndarray, fill: np.ndarray, jb: JobBook, ob: OfferBook, shapes: tuple, caps: np.ndarray,
           now_s: float, ov: tuple) -> tuple[np.ndarray, np.ndarray, tuple, np.ndarray, float]:
    """Greedy placement of ``order`` then of ``fill`` on fresh capacity; returns the state and its welfare (float)."""
    job_shape, lists, jc, oc = shapes
    rem = (ob.cpus_free.copy(), ob.gpus_free.copy(), ob.mem_free.copy(), ob.bond_free.copy())
    nxt = np.arange(len(lists[1]), dtype=np.int64)
    assign, ask = np.full(jb.n, -1, dtype=np.int64), np.zeros(jb.n, dtype=np.int64)
    K.greedy_pass(order, job_shape, jc, oc, rem, lists, nxt, caps, now_s, ov, assign, ask)
    K.greedy_pass(fill, job_shape, jc, oc, rem, lists, nxt, caps, now_s, ov, assign, ask)
    on = assign >= 0
    return assign, ask, rem, nxt, float((jb.max_price[on] - ask[on]).astype(np.float64).sum())


def _match(jb: JobBook, ob: OfferBook, caps: np.ndarray, now_s: float, ov: tuple, seed: int
           ) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Shapes, then for each priority variant (one in large rounds) phases 1-2 and local improvement; the
    best welfare wins (first variant on ties); small rounds finish with branch and bound. See module doc."""
    job_shape, lists, first_cost = build_shapes(jb, ob)
    jc, oc = job_columns(jb), offer_columns(ob)
    shapes = (job_shape, lists, jc, oc)
    flex = np.diff(lists[0]).astype(np.float64)
    variants = PRIORITY_VARIANTS if jb.n <= PORTFOLIO_JOBS else PRIORITY_VARIANTS[:1]
    cands = [_solve(priority_order(jb, job_shape, first_cost, caps, ob, seed, variant, flex), jb, ob, shapes,
                    first_cost, flex, caps, now_s, ov) for variant in variants]
    if LAGRANGE_ITERS > 0 and jb.n * ob.n <= LAGRANGE_MAX_COMBINATIONS:
        lag = _lagrangian(jb, ob, shapes, first_cost, caps, now_s, ov, seed)
        if lag is not None:
            cands.append(lag)
    assign, ask, rem, _, _ = max(cands, key=lambda c: c[4])  # the first of the best: ties keep the earlier
    if jb.n * ob.n <= EXACT_MAX_PAIRS and EXACT_NODE_LIMIT > 0:
        assign, ask, rem = _exact_small(jb, ob, caps, now_s, ov, jc, oc, assign)
    return assign, ask, (job_shape, lists, jc, oc, rem)


def _solve(order: np.ndarray, jb: JobBook, ob: OfferBook, shapes: tuple, first_cost: np.ndarray, flex: np.ndarray,
           caps: np.ndarray, now_s: float, ov: tuple) -> tuple:
    """Phase 1 in ``order``, phase 2 re-placement(s), local improvement: ``(assign, ask, rem, nxt, welfare)``."""
    job_shape, lists, jc, oc = shapes
    empty = np.zeros(0, dtype=np.int64)
    best = _place(order, empty, jb, ob, shapes, caps, now_s, ov)
    sel = np.nonzero(best[0] >= 0)[0]
    sens = jb.duration_s[sel] * first_cost[job_shape[sel]]
    keys = [sens] if jb.n > SMALL_ROUND_JOBS else [sens, sens / flex[job_shape[sel]]]
    if jb.n > PHASE2_MAX_JOBS:
        keys = []  # measured +0.07-0.2 % welfare at 50k-100k jobs for ~30 % of the round's time
    for key in keys:
        # most cost-sensitive first (largest ask at the cheapest offer), optionally per unit of flexibility
        cand = _place(sel[np.lexsort((sel, -key))].astype(np.int64), order, jb, ob, shapes, caps, now_s, ov)
        if cand[4] > best[4]:
            best = cand
    return _improve(order, best[0], best[1], best[2], best[3], jb, shapes, first_cost, caps, now_s, ov)


def _improve(order: np.ndarray, assign: np.ndarray, ask: np.ndarray, rem: tuple, nxt: np.ndarray, jb: JobBook,
             shapes: tuple, first_cost: np.ndarray, caps: np.ndarray, now_s: float, ov: tuple) -> tuple:
    """Local improvement passes (step 4) on an assignment, refilling from ``order``: ``(assign, ask, rem, nxt,
    welfare)``."""
    job_shape, lists, jc, oc = shapes
    sens_all = jb.duration_s * first_cost[job_shape]
    sens_order = np.lexsort((np.arange(jb.n), -sens_all)).astype(np.int64)
    limit = jb.n if jb.n <= SMALL_ROUND_JOBS else IMPROVE_LIMIT
    small = jb.n <= PORTFOLIO_JOBS
    n_cand, n_victims = (2 * IMPROVE_CANDIDATES, 2 * IMPROVE_VICTIMS) if small else (IMPROVE_CANDIDATES, IMPROVE_VICTIMS)
    shortest = np.lexsort((np.arange(jb.n), jb.duration_s)).astype(np.int64)
    for _ in range(IMPROVE_PASSES):
        imp_order = np.concatenate([order[assign[order] < 0], sens_order[assign[sens_order] >= 0]])
        K.reset_skips(nxt, lists, rem)
        moves = K.improve_pass(imp_order, job_shape, jc, oc, rem, lists, nxt, caps, jb.max_price, now_s, ov,
                               assign, ask, n_cand, limit, shortest, n_victims, IMPROVE_VICTIM_STEPS)
        K.reset_skips(nxt, lists, rem)
        K.greedy_pass(order, job_shape, jc, oc, rem, lists, nxt, caps, now_s, ov, assign, ask)
        if moves == 0:
            break
    on = assign >= 0
    return assign, ask, rem, nxt, float((jb.max_price[on] - ask[on]).astype(np.float64).sum())


def _lagrangian(jb: JobBook, ob: OfferBook, shapes: tuple, first_cost: np.ndarray, caps: np.ndarray, now_s: float,
                ov: tuple, seed: int) -> tuple | None:
    """Step 5: the Lagrangian heuristic over all feasible pairs (:func:`market.core._matching_kernels.lagrangian_heuristic`,
    ``LAGRANGE_ITERS`` subgradient steps, fewer when the pairs x steps exceed ``LAGRANGE_MAX_WORK``), then
    local improvement; ``None`` when the round has too many pairs for at least ``LAGRANGE_MIN_ITERS`` steps."""
    job_shape, lists, jc, oc = shapes
    pj, po, pa = K.feasible_pairs(jc, oc, caps, now_s, ov)
    iters = min(LAGRANGE_ITERS, LAGRANGE_MAX_WORK // max(len(pj), 1))
    if iters < LAGRANGE_MIN_ITERS:
        return None
    w = jb.max_price[pj] - pa
    ptr = np.searchsorted(pj, np.arange(jb.n + 1)).astype(np.int64)
    need = np.stack([jb.cpus, jb.gpus, jb.mem, jb.collateral], axis=1).astype(np.int64)
    free = (ob.cpus_free, ob.gpus_free, ob.mem_free, ob.bond_free)
    rem0 = np.maximum(np.stack(free, axis=1), 0).astype(np.int64)
    assign, ask, _, _ = K.lagrangian_heuristic(jb.n, ptr, po.astype(np.int64), pa, w, need, rem0, iters)
    rem = tuple(f.copy() for f in free)
    on = np.nonzero(assign >= 0)[0]
    for r, col in zip(rem, (jb.cpus, jb.gpus, jb.mem, jb.collateral)):
        np.subtract.at(r, assign[on], col[on])
    nxt = np.arange(len(lists[1]), dtype=np.int64)
    order = priority_order(jb, job_shape, first_cost, caps, ob, seed, PRIORITY_VARIANTS[0])
    return _improve(order, assign, ask, rem, nxt, jb, shapes, first_cost, caps, now_s, ov)


def _exact_small(jb: JobBook, ob: OfferBook, caps: np.ndarray, now_s: float, ov: tuple, jc: tuple, oc: tuple,
                 incumbent: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Small rounds: branch and bound from the heuristic's assignment (kept if the node budget runs out)."""
    pj, po, pa = K.feasible_pairs(jc, oc, caps, now_s, ov)
    w = jb.max_price[pj] - pa
    best_w = np.full(jb.n, -1, dtype=np.int64)
    np.maximum.at(best_w, pj, w)
    order = np.lexsort((np.arange(jb.n), -best_w))
    order = order[best_w[order] >= 0]
    pos = np.empty(jb.n, dtype=np.int64)
    pos[order] = np.arange(len(order))
    keep = best_w[pj] >= 0
    srt = np.lexsort((po, -w, pos[pj]))
    srt = srt[keep[srt]]
    ptr = np.searchsorted(pos[pj[srt]], np.arange(len(order) + 1))
    assign = incumbent.copy()
    rem = (ob.cpus_free.copy(), ob.gpus_free.copy(), ob.mem_free.copy(), ob.bond_free.copy())
    K.branch_and_bound(order.astype(np.int64), ptr.astype(np.int64), po[srt], pa[srt], w[srt], jc, rem, assign,
                       EXACT_NODE_LIMIT)
    ask = np.zeros(jb.n, dtype=np.int64)
    rem = (ob.cpus_free.copy(), ob.gpus_free.copy(), ob.mem_free.copy(), ob.bond_free.copy())
    pair_ask = {(int(j), int(o)): int(a) for j, o, a in zip(pj, po, pa)}
    for j in np.nonzero(assign >= 0)[0].tolist():
        o = int(assign[j])
        ask[j] = pair_ask[(j, o)]
        for r, need in zip(rem, (jb.cpus[j], jb.gpus[j], jb.mem[j], jb.collateral[j])):
            r[o] -= need
    return assign, ask, rem


def clear_round(jobs: Iterable[JobOrder], offers: Iterable[Offer], *, rule: str = "pay-as-bid", now_s: float,
                running: Mapping[str, Usage] | None = None, seed: int = 0,
                ask_overrides: Mapping[tuple[str, str], int] | None = None, explain: bool = False) -> RoundResult:
    """Clear one batch-auction round.

    Args:
        jobs: open job orders (unique ``job_id``); re-auctioned jobs come as :func:`market.core.orders.reopen`.
        offers: standing offers (one per provider).
        rule: ``"pay-as-bid"``, ``"second-price"`` or ``"reverse-dutch"`` (:mod:`market.core.pricing`).
        now_s: the round's time (seconds since the epoch): deadlines and the Dutch ramp are read at it.
        running: provider -> resources already taken by running jobs (subtracted from capacity).
        seed: tie-break permutation key (0: ties by job id).
        ask_overrides: ``(job_id, provider) -> ask_wei`` from provider pricing hooks
            (:mod:`market.core.pricing_hook`), replacing the static ask for that pair. Pairs priced per unit
            of work (:func:`market.core.orders.unit_asks`) join them (a hook's ask wins).
        explain: count the reasons of every unmatched job over all offers now (O(unmatched x offers));
            otherwise :attr:`RoundResult.explanations` counts them on first access.

    Returns:
        :class:`RoundResult`.

    Raises:
        UnknownRule, DuplicateId, InvalidOrder.
    """
    check_rule(rule)
    t0 = time.perf_counter()
    jobs = sorted(jobs, key=attrgetter("job_id"))  # the canonical order (the book's sort then finds it sorted)
    offers = list(offers)
    ob, models, labels = build_offer_book(offers, running)
    jb = build_job_book(jobs, ob, models, labels)
    caps = price_caps(rule, jb.max_price, jb.min_price, jb.bidding_start_s, jb.ramp_period_s, now_s)
    ov = override_columns({**unit_asks(jobs, offers), **(ask_overrides or {})}, jb, ob)  # per-unit quotes, then hooks
    t1 = time.perf_counter()
    assign, ask, (job_shape, lists, jc, oc, rem) = _match(jb, ob, caps, float(now_s), ov, seed)
    t2 = time.perf_counter()
    j_idx = np.nonzero(assign >= 0)[0]
    o_idx, asks = assign[j_idx], ask[j_idx]
    second = None
    if rule == "second-price":
        second = K.second_asks(j_idx, o_idx, job_shape, jc, oc, lists, caps, float(now_s), ov)
    prices = clearing_prices(rule, asks, caps[j_idx], second)
    unmatched = np.nonzero(assign < 0)[0]
    t3 = time.perf_counter()
    welfare = sum(jb.max_price[j_idx].tolist()) - sum(asks.tolist())
    in_hash = _input_hash(jobs, jb, ob, models, labels, rule, float(now_s), seed, ov)
    out_hash = _output_hash(in_hash, j_idx, o_idx, asks, prices, unmatched)
    t4 = time.perf_counter()
    result = RoundResult(rule, float(now_s), seed, j_idx, o_idx, asks, prices, unmatched, welfare, in_hash,
                         out_hash, {"build": t1 - t0, "match": t2 - t1, "price": t3 - t2, "hash": t4 - t3},
                         jb, ob, models, caps, rem, ov)
    if explain:
        result.count_reasons()
        result.timings_s["explain"] = time.perf_counter() - t4
    return result


# ---------------------------------------------------------------------------------------------
# Canonical hashes
# ---------------------------------------------------------------------------------------------


def _feed(h: Any, name: str, value: Any) -> None:
    h.update(name.encode() + b"\x00")
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    elif isinstance(value, list):
        h.update(str(len(value)).encode() + b"\x00" + "\x1f".join(value).encode())
    else:
        h.update(repr(value).encode())
    h.update(b"\x1e")


def _input_hash(jobs: list[JobOrder], jb: JobBook, ob: OfferBook, models: list[str], labels: Any, rule: str,
                now_s: float, seed: int, ov: tuple) -> str:
    """sha256 over the canonical columnar encoding: domain tag; rule, now_s (repr), seed; every column of
    the job and offer books in field order (little-endian, dtype and shape prefixed); the id, model and
    label tables (unit-separator joined); the jobs' client, kind, attempt, lock_timeout_s (``jobs`` comes
    sorted by job id); the hook-ask CSR."""
    h = hashlib.sha256(HASH_DOMAIN)
    for name, v in (("rule", rule), ("now_s", now_s), ("seed", seed), ("models", models), ("labels", labels.names)):
        _feed(h, name, v)
    for book in (jb, ob):
        for name in book.__slots__:
            value = getattr(book, name)
            _feed(h, name, sorted(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else value)
    _feed(h, "client", list(map(attrgetter("client"), jobs)))
    _feed(h, "kind", list(map(attrgetter("kind"), jobs)))
    _feed(h, "attempt", np.fromiter(map(attrgetter("attempt"), jobs), np.int64, len(jobs)))
    _feed(h, "lock_timeout_s", np.fromiter(map(attrgetter("lock_timeout_s"), jobs), np.float64, len(jobs)))
    for i, arr in enumerate(ov):
        _feed(h, f"overrides{i}", arr)
    return h.hexdigest()


def _output_hash(in_hash: str, j_idx: np.ndarray, o_idx: np.ndarray, asks: np.ndarray, prices: np.ndarray,
                 unmatched: np.ndarray) -> str:
    """sha256 over the input hash and the assignment columns (job row, offer row, ask, price) + unmatched rows."""
    h = hashlib.sha256(HASH_DOMAIN + b"/out")
    _feed(h, "input", in_hash)
    for name, arr in (("job", j_idx), ("offer", o_idx), ("ask", asks), ("price", prices), ("unmatched", unmatched)):
        _feed(h, name, np.asarray(arr, dtype=np.int64))
    return h.hexdigest()
