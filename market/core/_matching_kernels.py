"""numba kernels of the matching round (private to :mod:`market.core.matching` and :mod:`market.core.explain`).

Data layout (the column tuples are built by :func:`job_columns`, :func:`offer_columns` and
:func:`override_columns` here, the shapes by :mod:`market.core.matching`):

* ``J`` jobs and ``O`` offers as the columns of :class:`market.core.orders.JobBook` / ``OfferBook``.
* "Shapes": jobs grouped by (cpus, gpus, gpu model, memory bucket). Each shape owns a list of the offers
  that could ever hold it (model matches, capacity at round start >= the shape's size), sorted by
  ``cost`` = wei per reference-second for that shape at that offer (``rate * 1000 / speed_milli``), then
  by offer index; a sentinel ``-1`` closes each list. ``duration_s * cost`` is a lower bound of the ask,
  so a walk down the list stops as soon as it exceeds the job's price cap or the best ask found.
* ``nxt`` is a skip list over list positions (path halving): an offer that can no longer hold the
  shape's size is skipped for good in the current pass.

Reason codes, in funnel order (the first failing one is an offer's reason, see :mod:`market.core.explain`).
The plain-Python reference of :func:`pair_reason` / :func:`pair_ask` is
:func:`market.core.explain.reference_reason` (compared in ``tests/matching/test_kernels.py``).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from numba import njit, prange

from market.core.orders import JobBook, OfferBook

R_OK = 0
R_MODEL = 1
R_LABELS = 2
R_ACCESS = 3
R_REPUTATION = 4
R_SIZE = 5
R_DEADLINE = 6
R_BOND = 7
R_PRICE = 8
R_TAKEN = 9
N_REASONS = 10

_GIB_SHIFT = 30
_GIB_MASK = (1 << 30) - 1
_I64_MAX = np.iinfo(np.int64).max
GIB_FLOAT = 1073741824.0
UNBOUNDED = 1 << 62
#: Once the top-k is full, live list positions still examined for a cheaper exact ask (the cost order
#: ranks by the continuous rate; whole-second rounding of run time can reorder near-ties).
TIE_BAND_STEPS = 8
REASON_NAMES = ("ok", "model", "labels", "access", "reputation", "size", "deadline", "bond", "price", "taken")


# ---------------------------------------------------------------------------------------------
# The column tuples the kernels read (plain Python; built once per round from the books)
# ---------------------------------------------------------------------------------------------


def job_columns(jb: JobBook) -> tuple:
    """The job tuple the kernels read (order documented in :func:`static_reason`)."""
    return (jb.cpus, jb.gpus, jb.mem, jb.model, jb.impossible_label, jb.duration_s, jb.deadline_s, jb.collateral,
            jb.min_reputation, jb.mask, jb.has_allow, jb.allow_ptr, jb.allow_idx, jb.deny_ptr, jb.deny_idx)


def offer_columns(ob: OfferBook) -> tuple:
    """The offer tuple the kernels read (order documented in :func:`static_reason`)."""
    return (ob.cpus_free, ob.gpus_free, ob.mem_free, ob.bond_free, ob.model, ob.reputation, ob.speed_milli,
            ob.price_cpu, ob.price_gpu, ob.price_gib, ob.mask)


def override_columns(overrides: Mapping[tuple[str, str], int], jb: JobBook, ob: OfferBook) -> tuple:
    """Provider-hook asks as ``(hooked bool[O], ov_ptr int64[J+1], ov_off int32[N], ov_ask int64[N])``: a CSR
    per job (job-id order), each row sorted by offer; ``hooked[o]`` marks offers having any. Pairs naming a
    job or provider not in the books are ignored."""
    hooked = np.zeros(ob.n, dtype=np.bool_)
    ptr = np.zeros(jb.n + 1, dtype=np.int64)
    if not overrides:
        return hooked, ptr, np.zeros(0, np.int32), np.zeros(0, np.int64)
    jix = {j: i for i, j in enumerate(jb.job_ids)}
    oix = {p: i for i, p in enumerate(ob.providers)}
    rows = sorted((jix[j], oix[p], int(a)) for (j, p), a in overrides.items() if j in jix and p in oix)
    arr = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    np.add.at(ptr, arr[:, 0] + 1, 1)
    hooked[arr[:, 1]] = True
    return hooked, np.cumsum(ptr), arr[:, 1].astype(np.int32), arr[:, 2].copy()


@njit(cache=True)
def shape_lists(size, rep, mask, bond, oc):
    """Each shape's list of the offers that could ever hold it, cheapest cost per reference-second first
    (ties by offer index), closed by a ``-1`` sentinel (cost ``inf``).

    ``size`` int64[S, 4] (cpus, gpus, model (-1 any, -2 unknown), memory), ``rep`` float64[S] reputation
    floor, ``mask`` uint64[S, words] required labels, ``bond`` int64[S] the shape's smallest collateral.
    An offer qualifies when its start-of-round capacity, free bond, reputation, labels and (for GPU
    shapes) model can hold the shape. Cost = ``(cpus * price_cpu + gpus * price_gpu + memory *
    (price_gib / 2**30)) / (speed_milli / 1000)`` (float64, the same operations in the same order as the
    numpy form it replaced, so the same bits).

    Returns ``(s_ptr int64[S+1], s_off int32[L], s_cost float64[L], first_cost float64[S])``."""
    o_cpu, o_gpu, o_mem, o_bond, o_model, o_rep, o_speed, o_pc, o_pg, o_pm, o_mask = oc
    n_shapes, n_off, words = size.shape[0], len(o_cpu), mask.shape[1]
    ptr = np.zeros(n_shapes + 1, dtype=np.int64)
    offs = np.empty(n_shapes * (n_off + 1), dtype=np.int32)
    costs = np.empty(n_shapes * (n_off + 1), dtype=np.float64)
    first = np.full(n_shapes, np.inf)
    idx = np.empty(n_off, dtype=np.int64)
    cost = np.empty(n_off, dtype=np.float64)
    pos = 0
    for s in range(n_shapes):
        c, g, m, mem = size[s, 0], size[s, 1], size[s, 2], size[s, 3]
        n = 0
        for o in range(n_off):
            if o_cpu[o] < c or o_gpu[o] < g or o_mem[o] < mem or o_bond[o] < bond[s] or o_rep[o] < rep[s]:
                continue
            if g > 0 and (o_model[o] < 0 or m == -2 or (m >= 0 and o_model[o] != m)):
                continue
            ok = True
            for w in range(words):
                if (o_mask[o, w] & mask[s, w]) != mask[s, w]:
                    ok = False
            if not ok:
                continue
            idx[n] = o
            cost[n] = (c * float(o_pc[o]) + g * float(o_pg[o]) + mem * (float(o_pm[o]) / GIB_FLOAT)) \
                / (float(o_speed[o]) / 1000.0)
            n += 1
        order = np.argsort(cost[:n], kind="mergesort")
        for t in range(n):
            offs[pos + t] = idx[order[t]]
            costs[pos + t] = cost[order[t]]
        if n:
            first[s] = costs[pos]
        offs[pos + n] = -1
        costs[pos + n] = np.inf
        pos += n + 1
        ptr[s + 1] = pos
    return ptr, offs[:pos].copy(), costs[:pos].copy(), first


@njit(cache=True, inline="always")
def run_seconds(duration_s, speed_milli):
    """ceil(duration_s * 1000 / speed_milli)."""
    return (duration_s * 1000 + speed_milli - 1) // speed_milli


@njit(cache=True, inline="always")
def rate_float(cpus, gpus, mem, pc, pg, pm):
    """Approximate wei per second (float64) of a job's resources at an offer's prices."""
    return cpus * float(pc) + gpus * float(pg) + mem * (float(pm) / 1073741824.0)


@njit(cache=True, inline="always")
def rate_exact(cpus, gpus, mem, pc, pg, pm):
    """Exact wei per second: cpus*pc + gpus*pg + ceil(mem*pm / 2**30), at least 1 (a zero ask would clear at
    price 0 and fail payment: :func:`market.core.orders.ask_wei`), without int64 overflow whenever the
    result is below 2**62 (memory term split in 30-bit halves)."""
    mem_hi = mem >> _GIB_SHIFT
    mem_lo = mem & _GIB_MASK
    pm_hi = pm >> _GIB_SHIFT
    pm_lo = pm & _GIB_MASK
    mterm = mem_hi * pm + mem_lo * pm_hi + ((mem_lo * pm_lo + _GIB_MASK) >> _GIB_SHIFT)
    return max(cpus * pc + gpus * pg + mterm, 1)


@njit(cache=True, inline="always")
def pair_ask(j, o, jc, oc, cap):
    """Exact ask (wei) of offer ``o`` for job ``j`` when it is <= ``cap``; -1 when above (too expensive)."""
    run_s = run_seconds(jc[5][j], oc[6][o])
    ask_f = run_s * rate_float(jc[0][j], jc[1][j], jc[2][j], oc[7][o], oc[8][o], oc[9][o])
    if ask_f > cap * (1.0 + 1e-9) + 4.0:
        return -1
    ask = run_s * rate_exact(jc[0][j], jc[1][j], jc[2][j], oc[7][o], oc[8][o], oc[9][o])
    if ask > cap:
        return -1
    return ask


@njit(cache=True, inline="always")
def _member(ptr, idx, j, value):
    lo = ptr[j]
    hi = ptr[j + 1]
    while lo < hi:
        mid = (lo + hi) >> 1
        if idx[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo < ptr[j + 1] and idx[lo] == value


@njit(cache=True, inline="always")
def static_reason(j, o, jc, oc, now_s):
    """First failing constraint (funnel order) of offer ``o`` for job ``j`` before price and before
    this round's other assignments; R_OK when all pass. Capacity here is free capacity at round start.

    jc = (cpus, gpus, mem, model, impossible_label, duration_s, deadline_s, collateral, min_rep, mask,
          has_allow, allow_ptr, allow_idx, deny_ptr, deny_idx)
    oc = (cpus_free, gpus_free, mem_free, bond_free, model, reputation, speed_milli, price_cpu,
          price_gpu, price_gib, mask)
    """
    if jc[1][j] > 0:
        if oc[4][o] < 0 or jc[3][j] == -2 or (jc[3][j] >= 0 and jc[3][j] != oc[4][o]):
            return R_MODEL
    if jc[4][j]:
        return R_LABELS
    jm = jc[9]
    om = oc[10]
    for w in range(jm.shape[1]):
        if (om[o, w] & jm[j, w]) != jm[j, w]:
            return R_LABELS
    if jc[10][j] and not _member(jc[11], jc[12], j, o):
        return R_ACCESS
    if _member(jc[13], jc[14], j, o):
        return R_ACCESS
    if oc[5][o] < jc[8][j]:
        return R_REPUTATION
    if oc[0][o] < jc[0][j] or oc[1][o] < jc[1][j] or oc[2][o] < jc[2][j]:
        return R_SIZE
    if now_s + run_seconds(jc[5][j], oc[6][o]) > jc[6][j]:
        return R_DEADLINE
    if oc[3][o] < jc[7][j]:
        return R_BOND
    return R_OK


@njit(cache=True, inline="always")
def _find(nxt, k):
    while nxt[k] != k:
        nxt[k] = nxt[nxt[k]]
        k = nxt[k]
    return k


@njit(cache=True, inline="always")
def _fits(j, o, jc, rem):
    return (rem[0][o] >= jc[0][j] and rem[1][o] >= jc[1][j] and rem[2][o] >= jc[2][j]
            and rem[3][o] >= jc[7][j])


@njit(cache=True, inline="always")
def _override(j, o, ov_ptr, ov_off, ov_ask):
    lo = ov_ptr[j]
    hi = ov_ptr[j + 1]
    while lo < hi:
        mid = (lo + hi) >> 1
        if ov_off[mid] < o:
            lo = mid + 1
        else:
            hi = mid
    if lo < ov_ptr[j + 1] and ov_off[lo] == o:
        return ov_ask[lo]
    return -2


@njit(cache=True)
def _push(o, a, out_o, out_a, n):
    """Insert (a, o) into the sorted top-k arrays holding ``n`` entries; returns the new count."""
    k = len(out_o)
    if a < 0:
        return n
    if n == k and (a > out_a[n - 1] or (a == out_a[n - 1] and o >= out_o[n - 1])):
        return n
    i = n if n < k else k - 1
    while i > 0 and (out_a[i - 1] > a or (out_a[i - 1] == a and out_o[i - 1] > o)):
        out_a[i] = out_a[i - 1]
        out_o[i] = out_o[i - 1]
        i -= 1
    out_a[i] = a
    out_o[i] = o
    return n + 1 if n < k else n


@njit(cache=True)
def scan_offers(j, shape, jc, oc, rem, lists, nxt, cap, now_s, ov, skip_o, use_rem, out_o, out_a, max_steps):
    """The ``len(out_o)`` cheapest (exact ask, then offer index) offers for job ``j`` that pass every
    constraint (with remaining capacity ``rem`` when ``use_rem``, else start-of-round capacity) with
    ask <= ``cap``, written sorted into ``out_o``/``out_a``; ``skip_o`` is left out (-1: none). The walk
    down the cost-sorted list stops after ``max_steps`` live positions, or ``TIE_BAND_STEPS`` positions
    after the top-k filled (so near-ties beyond that band are not compared).
    Returns how many were found.

    lists = (s_ptr, s_off, s_cost, s_cpus, s_gpus, s_mem, s_bond); ov = (hooked, ov_ptr, ov_off, ov_ask).
    """
    s_ptr, s_off, s_cost, s_cpus, s_gpus, s_mem, s_bond = lists
    hooked, ov_ptr, ov_off, ov_ask = ov
    kmax = len(out_o)
    n = 0
    capf = float(cap)
    if jc[10][j]:  # allow list: look only at the allowed offers
        for t in range(jc[11][j], jc[11][j + 1]):
            o = jc[12][t]
            if o == skip_o or (use_rem and not _fits(j, o, jc, rem)):
                continue
            if static_reason(j, o, jc, oc, now_s) == R_OK:
                a = _override(j, o, ov_ptr, ov_off, ov_ask) if hooked[o] else -2
                if a == -2:
                    a = pair_ask(j, o, jc, oc, cap)
                elif a > cap:
                    a = -1
                n = _push(o, a, out_o, out_a, n)
        return n
    for t in range(ov_ptr[j], ov_ptr[j + 1]):  # provider-hook asks: any position in the cost order
        o = ov_off[t]
        if o == skip_o or ov_ask[t] > cap or (use_rem and not _fits(j, o, jc, rem)):
            continue
        if static_reason(j, o, jc, oc, now_s) == R_OK:
            n = _push(o, ov_ask[t], out_o, out_a, n)
    dur = float(jc[5][j])
    k = _find(nxt, s_ptr[shape]) if use_rem else s_ptr[shape]
    steps = 0
    after_full = 0
    while True:
        o = s_off[k]
        if o < 0 or steps >= max_steps:
            break
        lb = dur * s_cost[k]
        if lb > capf * (1.0 + 1e-9) + 4.0:
            break
        if n == kmax and (lb > float(out_a[n - 1]) * (1.0 + 1e-9) + 4.0 or after_full >= TIE_BAND_STEPS):
            break
        if n == kmax:
            after_full += 1
        if use_rem and (rem[0][o] < s_cpus[shape] or rem[1][o] < s_gpus[shape] or rem[2][o] < s_mem[shape]
                        or rem[3][o] < s_bond[shape]):
            nxt[k] = k + 1
            k = _find(nxt, k + 1)
            continue
        steps += 1
        if o != skip_o and (not use_rem or _fits(j, o, jc, rem)):
            if not (hooked[o] and _override(j, o, ov_ptr, ov_off, ov_ask) != -2):
                if static_reason(j, o, jc, oc, now_s) == R_OK:
                    n = _push(o, pair_ask(j, o, jc, oc, cap), out_o, out_a, n)
        k = _find(nxt, k + 1) if use_rem else k + 1
    return n


@njit(cache=True)
def best_offer(j, shape, jc, oc, rem, lists, nxt, cap, now_s, ov, skip_o, use_rem, max_steps=UNBOUNDED):
    """Cheapest feasible offer for ``j`` (see :func:`scan_offers`): ``(offer, ask)``, offer -1 when none."""
    out_o = np.empty(1, dtype=np.int64)
    out_a = np.empty(1, dtype=np.int64)
    if scan_offers(j, shape, jc, oc, rem, lists, nxt, cap, now_s, ov, skip_o, use_rem, out_o, out_a, max_steps) == 0:
        return -1, np.int64(0)
    return out_o[0], out_a[0]


@njit(cache=True)
def _take(j, o, jc, rem, sign):
    rem[0][o] -= sign * jc[0][j]
    rem[1][o] -= sign * jc[1][j]
    rem[2][o] -= sign * jc[2][j]
    rem[3][o] -= sign * jc[7][j]


@njit(cache=True)
def reset_skips(nxt, lists, rem):
    """Rebuild the skip list from the remaining capacity (offers revived by moves become visible)."""
    s_ptr, s_off, s_cost, s_cpus, s_gpus, s_mem, s_bond = lists
    for s in range(len(s_ptr) - 1):
        for k in range(s_ptr[s], s_ptr[s + 1]):
            o = s_off[k]
            if o >= 0 and (rem[0][o] < s_cpus[s] or rem[1][o] < s_gpus[s] or rem[2][o] < s_mem[s]
                           or rem[3][o] < s_bond[s]):
                nxt[k] = k + 1
            else:
                nxt[k] = k


@njit(cache=True)
def greedy_pass(order, job_shape, jc, oc, rem, lists, nxt, caps, now_s, ov, assign, ask):
    """Assign each unassigned job of ``order`` to its cheapest feasible offer with room.

    The same walk as :func:`best_offer` (``use_rem``, nothing skipped, no step bound) written out in one
    loop with the job's columns gathered in ``order`` first: a call per job with the column tuples costs
    an atomic reference-count increment and decrement per array (measured: half of the pass). Jobs with
    an allow list or provider-hook asks take :func:`scan_offers` itself. ``tests/matching/test_kernels.py``
    checks the result equals :func:`best_offer` job by job."""
    s_ptr, s_off, s_cost, s_cpus, s_gpus, s_mem, s_bond = lists
    ov_ptr = ov[1]
    r_cpu, r_gpu, r_mem, r_bond = rem
    j_cpu, j_gpu, j_mem, j_model, j_impossible, j_dur, j_deadline, j_coll, j_rep, j_mask, j_allow = jc[:11]
    deny_ptr, deny_idx = jc[13], jc[14]
    o_cpu, o_gpu, o_mem, o_bond, o_model, o_rep, o_speed, o_pc, o_pg, o_pm, o_mask = oc
    words = o_mask.shape[1]
    out_o = np.empty(1, dtype=np.int64)
    out_a = np.empty(1, dtype=np.int64)
    n_ord = len(order)
    g_cpu = np.empty(n_ord, dtype=np.int64)
    g_gpu = np.empty(n_ord, dtype=np.int64)
    g_mem = np.empty(n_ord, dtype=np.int64)
    g_coll = np.empty(n_ord, dtype=np.int64)
    g_dur = np.empty(n_ord, dtype=np.float64)
    g_cap = np.empty(n_ord, dtype=np.int64)
    g_shape = np.empty(n_ord, dtype=np.int64)
    g_slow = np.empty(n_ord, dtype=np.bool_)
    for t in range(n_ord):
        j = order[t]
        g_cpu[t], g_gpu[t], g_mem[t], g_coll[t] = j_cpu[j], j_gpu[j], j_mem[j], j_coll[j]
        g_dur[t], g_cap[t], g_shape[t] = float(j_dur[j]), caps[j], job_shape[j]
        g_slow[t] = j_allow[j] or ov_ptr[j + 1] > ov_ptr[j]
    for t in range(n_ord):
        j = order[t]
        if assign[j] >= 0:
            continue
        shape, cap = g_shape[t], g_cap[t]
        if g_slow[t]:
            if scan_offers(j, shape, jc, oc, rem, lists, nxt, cap, now_s, ov, -1, True, out_o, out_a, UNBOUNDED):
                assign[j] = out_o[0]
                ask[j] = out_a[0]
                _take(j, out_o[0], jc, rem, 1)
            continue
        cj, gj, mj, bj, dur = g_cpu[t], g_gpu[t], g_mem[t], g_coll[t], g_dur[t]
        dur_i, mdl, impossible, min_rep, deadline = j_dur[j], j_model[j], j_impossible[j], j_rep[j], j_deadline[j]
        has_deny = deny_ptr[j + 1] > deny_ptr[j]
        sc, sg, sm, sb = s_cpus[shape], s_gpus[shape], s_mem[shape], s_bond[shape]
        cap_bound = float(cap) * (1.0 + 1e-9) + 4.0
        bound = cap_bound  # min(cap bound, best ask bound): past it no ask can win (see scan_offers)
        bo = -1
        ba = np.int64(0)
        after_full = 0
        k = _find(nxt, s_ptr[shape])
        while True:
            o = s_off[k]
            if o < 0:
                break
            if dur * s_cost[k] > bound:
                break
            if bo >= 0:
                if after_full >= TIE_BAND_STEPS:
                    break
                after_full += 1
            if r_cpu[o] < sc or r_gpu[o] < sg or r_mem[o] < sm or r_bond[o] < sb:
                nxt[k] = k + 1
                k = _find(nxt, k + 1)
                continue
            if r_cpu[o] >= cj and r_gpu[o] >= gj and r_mem[o] >= mj and r_bond[o] >= bj:
                # static_reason(j, o) == R_OK, written out (same checks, same order)
                ok = not impossible and o_rep[o] >= min_rep
                if ok and gj > 0:
                    ok = not (o_model[o] < 0 or mdl == -2 or (mdl >= 0 and mdl != o_model[o]))
                for w in range(words):
                    if ok and (o_mask[o, w] & j_mask[j, w]) != j_mask[j, w]:
                        ok = False
                if ok and has_deny:
                    ok = not _member(deny_ptr, deny_idx, j, o)
                ok = ok and o_cpu[o] >= cj and o_gpu[o] >= gj and o_mem[o] >= mj and o_bond[o] >= bj
                run_s = np.int64(0)
                if ok:
                    run_s = run_seconds(dur_i, o_speed[o])
                    ok = now_s + run_s <= deadline
                if ok:  # pair_ask(j, o, cap), written out
                    if run_s * rate_float(cj, gj, mj, o_pc[o], o_pg[o], o_pm[o]) <= cap_bound:
                        a = run_s * rate_exact(cj, gj, mj, o_pc[o], o_pg[o], o_pm[o])
                        if a <= cap and (bo < 0 or a < ba or (a == ba and o < bo)):
                            bo, ba = o, a
                            bound = min(cap_bound, float(ba) * (1.0 + 1e-9) + 4.0)
            k = _find(nxt, k + 1)
        if bo >= 0:
            assign[j] = bo
            ask[j] = ba
            r_cpu[bo] -= cj
            r_gpu[bo] -= gj
            r_mem[bo] -= mj
            r_bond[bo] -= bj


@njit(cache=True)
def _jobs_by_offer(assign, n_offers, by):
    """CSR of the jobs on each offer, each list in the order of ``by`` (a permutation of the jobs)."""
    ptr = np.zeros(n_offers + 1, dtype=np.int64)
    for j in range(len(assign)):
        if assign[j] >= 0:
            ptr[assign[j] + 1] += 1
    for o in range(n_offers):
        ptr[o + 1] += ptr[o]
    fill = ptr[:-1].copy()
    lst = np.empty(ptr[-1], dtype=np.int64)
    for t in range(len(by)):
        j = by[t]
        o = assign[j]
        if o >= 0:
            lst[fill[o]] = j
            fill[o] += 1
    return ptr, lst


@njit(cache=True, inline="always")
def _fits_without(j, k, o, jc, rem):
    return (rem[0][o] + jc[0][k] >= jc[0][j] and rem[1][o] + jc[1][k] >= jc[1][j]
            and rem[2][o] + jc[2][k] >= jc[2][j] and rem[3][o] + jc[7][k] >= jc[7][j])


@njit(cache=True)
def improve_pass(order, job_shape, jc, oc, rem, lists, nxt, caps, max_price, now_s, ov, assign, ask, n_cand, limit,
                 shortest, max_victims, victim_steps):
    """Local improvement by moves with one eviction, for the first ``limit`` jobs of ``order`` (assigned
    or not): job ``j`` (taken off its offer, if any) tries its ``n_cand`` cheapest feasible offers ``o``
    (start-of-round capacity); it moves there directly if it fits, else by evicting one job ``k`` there,
    which moves to its cheapest other offer with room (possibly ``j``'s old one) or drops out. Applied
    when welfare rises: ``(max_j - ask_jo) - w_j,now - (max_k - ask_ko) + (max_k - ask_k,alt) > 0``.
    Victims are tried shortest job first (``shortest``: jobs by ascending duration; they lose least by
    moving), at most ``max_victims`` per offer; a victim's new place is searched over at most
    ``victim_steps`` live list positions. Returns the number of moves."""
    ptr, lst = _jobs_by_offer(assign, len(rem[0]), shortest)
    cand_o = np.empty(n_cand, dtype=np.int64)
    cand_a = np.empty(n_cand, dtype=np.int64)
    start = (oc[0], oc[1], oc[2], oc[3])
    no_skip = np.zeros(1, dtype=np.int64)
    moves = 0
    for t in range(min(limit, len(order))):
        j = order[t]
        o0 = assign[j]
        w_now = max_price[j] - ask[j] if o0 >= 0 else np.int64(0)
        n = scan_offers(j, job_shape[j], jc, oc, start, lists, no_skip, caps[j], now_s, ov, o0, False, cand_o, cand_a,
                        UNBOUNDED)
        if n == 0 or max_price[j] - cand_a[0] <= w_now:
            continue
        if o0 >= 0:
            _take(j, o0, jc, rem, -1)
        best_gain = np.int64(0)
        best_o, best_k, best_ko, best_ka, best_ja = -1, -1, -1, np.int64(0), np.int64(0)
        for c in range(n):
            o = cand_o[c]
            d_j = max_price[j] - cand_a[c] - w_now
            if d_j <= best_gain:
                continue
            if _fits(j, o, jc, rem):
                best_gain, best_o, best_k, best_ja = d_j, o, -1, cand_a[c]
                continue
            tried = 0
            for v in range(ptr[o], ptr[o + 1]):
                k = lst[v]
                if k == j or assign[k] != o or not _fits_without(j, k, o, jc, rem):
                    continue
                if tried == max_victims:
                    break
                tried += 1
                ko, ka = best_offer(k, job_shape[k], jc, oc, rem, lists, nxt, caps[k], now_s, ov, o, True, victim_steps)
                gain = d_j - (max_price[k] - ask[k]) + (max_price[k] - ka if ko >= 0 else 0)
                if gain > best_gain:
                    best_gain, best_o, best_k, best_ko, best_ka, best_ja = gain, o, k, ko, ka, cand_a[c]
        if best_o < 0:
            if o0 >= 0:
                _take(j, o0, jc, rem, 1)
            continue
        if best_k >= 0:
            _take(best_k, best_o, jc, rem, -1)
            assign[best_k] = -1
        assign[j] = best_o
        ask[j] = best_ja
        _take(j, best_o, jc, rem, 1)
        if best_k >= 0 and best_ko >= 0:
            assign[best_k] = best_ko
            ask[best_k] = best_ka
            _take(best_k, best_ko, jc, rem, 1)
        moves += 1
    return moves


@njit(cache=True)
def feasible_pairs(jc, oc, caps, now_s, ov):
    """All (job, offer, ask) pairs passing every constraint at start-of-round capacity (small rounds)."""
    hooked, ov_ptr, ov_off, ov_ask = ov
    n_jobs = len(jc[0])
    n_off = len(oc[0])
    pj = np.empty(n_jobs * n_off, dtype=np.int64)
    po = np.empty(n_jobs * n_off, dtype=np.int64)
    pa = np.empty(n_jobs * n_off, dtype=np.int64)
    n = 0
    for j in range(n_jobs):
        for o in range(n_off):
            if static_reason(j, o, jc, oc, now_s) != R_OK:
                continue
            a = _override(j, o, ov_ptr, ov_off, ov_ask) if hooked[o] else -2
            if a == -2:
                a = pair_ask(j, o, jc, oc, caps[j])
            elif a > caps[j]:
                a = -1
            if a >= 0:
                pj[n] = j
                po[n] = o
                pa[n] = a
                n += 1
    return pj[:n], po[:n], pa[:n]


@njit(cache=True)
def branch_and_bound(order, ptr, off, ask, w, jc, rem, assign, node_limit):
    """Exact welfare maximisation by depth-first branch and bound (small rounds).

    ``order``: jobs, best option first; options of ``order[i]`` are ``off/ask/w[ptr[i]:ptr[i+1]]`` sorted
    by welfare ``w`` descending, then "not assigned". Bound: value so far + sum of the remaining jobs'
    best welfare. ``assign`` holds the incumbent (job -> offer or -1) on entry and the best found on
    exit. Stops after ``node_limit`` nodes. Returns (best welfare found, True if the search completed).
    """
    n = len(order)
    suffix = np.zeros(n + 1, dtype=np.int64)
    for i in range(n - 1, -1, -1):
        suffix[i] = suffix[i + 1] + (w[ptr[i]] if ptr[i + 1] > ptr[i] else 0)
    best = np.int64(0)
    for i in range(n):
        j = order[i]
        if assign[j] >= 0:
            for k in range(ptr[i], ptr[i + 1]):
                if off[k] == assign[j]:
                    best += w[k]
    choice = np.full(n + 1, -1, dtype=np.int64)
    cur = np.full(n, -1, dtype=np.int64)
    value = np.int64(0)
    depth = 0
    nodes = 0
    while depth >= 0:
        if nodes >= node_limit:
            return best, False
        nodes += 1
        if depth == n:
            if value > best:
                best = value
                for i in range(n):
                    assign[order[i]] = off[cur[i]] if cur[i] >= 0 else -1
            depth -= 1
            continue
        j = order[depth]
        if cur[depth] >= 0:  # undo the option taken last time at this depth
            k = cur[depth]
            _take(j, off[k], jc, rem, -1)
            value -= w[k]
            cur[depth] = -1
        cnt = ptr[depth + 1] - ptr[depth]
        c = choice[depth] + 1
        moved = False
        while c <= cnt:
            if c < cnt:
                k = ptr[depth] + c
                if value + w[k] + suffix[depth + 1] <= best:
                    c = cnt  # options are sorted by welfare: none of the rest can win; try "skip"
                    continue
                if _fits(j, off[k], jc, rem):
                    _take(j, off[k], jc, rem, 1)
                    value += w[k]
                    cur[depth] = k
                    moved = True
                    break
                c += 1
            else:
                if value + suffix[depth + 1] > best:
                    moved = True
                    break
                c += 1
        choice[depth] = c
        if moved:
            depth += 1
            choice[depth] = -1
        else:
            choice[depth] = -1
            depth -= 1
    return best, True


@njit(cache=True)
def second_asks(jobs, offers_won, job_shape, jc, oc, lists, caps, now_s, ov):
    """For each assigned job: the lowest ask among the statically feasible offers other than its winner
    (capacity at round start, ask <= cap), or -1 when there is none (Vickrey second price)."""
    out = np.full(len(jobs), -1, dtype=np.int64)
    dummy_nxt = np.zeros(1, dtype=np.int64)
    for t in range(len(jobs)):
        j = jobs[t]
        o, a = best_offer(j, job_shape[j], jc, oc, (oc[0], oc[1], oc[2], oc[3]), lists, dummy_nxt,
                          caps[j], now_s, ov, offers_won[t], False)
        if o >= 0:
            out[t] = a
    return out


@njit(cache=True, parallel=True)
def funnel(jobs, jc, oc, caps, now_s, rem, ov):
    """For each job of ``jobs``: counts[t, reason] over all offers (first failing constraint, funnel
    order, same rules as :func:`static_reason`; R_TAKEN = passes all but this round's assignments left no
    room), and the cheapest ask among offers whose only failure is price (-1 if none). Jobs run in
    parallel; each job's per-offer loop reads hoisted columns."""
    hooked, ov_ptr, ov_off, ov_ask = ov
    o_cpu, o_gpu, o_mem, o_bond, o_model, o_rep, o_speed = oc[0], oc[1], oc[2], oc[3], oc[4], oc[5], oc[6]
    o_mask = oc[10]
    r_cpu, r_gpu, r_mem, r_bond = rem
    n_off = len(o_cpu)
    words = o_mask.shape[1]
    counts = np.zeros((len(jobs), N_REASONS), dtype=np.int64)
    cheapest = np.full(len(jobs), -1, dtype=np.int64)
    for t in prange(len(jobs)):
        j = jobs[t]
        cpus, gpus, mem, model = jc[0][j], jc[1][j], jc[2][j], jc[3][j]
        dur, deadline, collat, min_rep = jc[5][j], jc[6][j], jc[7][j], jc[8][j]
        impossible, has_allow = jc[4][j], jc[10][j]
        jmask = jc[9][j]
        cap = caps[j]
        best = -1
        for o in range(n_off):
            r = R_OK
            if gpus > 0 and (o_model[o] < 0 or model == -2 or (model >= 0 and model != o_model[o])):
                r = R_MODEL
            elif impossible:
                r = R_LABELS
            else:
                for w in range(words):
                    if (o_mask[o, w] & jmask[w]) != jmask[w]:
                        r = R_LABELS
                        break
            if r == R_OK:
                if (has_allow and not _member(jc[11], jc[12], j, o)) or _member(jc[13], jc[14], j, o):
                    r = R_ACCESS
                elif o_rep[o] < min_rep:
                    r = R_REPUTATION
                elif o_cpu[o] < cpus or o_gpu[o] < gpus or o_mem[o] < mem:
                    r = R_SIZE
                elif now_s + run_seconds(dur, o_speed[o]) > deadline:
                    r = R_DEADLINE
                elif o_bond[o] < collat:
                    r = R_BOND
                else:
                    a = _override(j, o, ov_ptr, ov_off, ov_ask) if hooked[o] else -2
                    if a == -2:
                        a = pair_ask(j, o, jc, oc, _I64_MAX // 4)
                    if a > cap or a < 0:
                        r = R_PRICE
                        if a >= 0 and (best < 0 or a < best):
                            best = a
                    elif r_cpu[o] < cpus or r_gpu[o] < gpus or r_mem[o] < mem or r_bond[o] < collat:
                        r = R_TAKEN
            counts[t, r] += 1
        cheapest[t] = best
    return counts, cheapest


@njit(cache=True)
def size_shortfall(jobs, jc, oc):
    """For each job of ``jobs``, over the offers whose first failing constraint is R_SIZE (the rules of
    :func:`static_reason`, capacity free at round start): ``short[t, r]`` = how many of them lack resource ``r``
    (0 CPUs, 1 GPUs, 2 memory bytes; one offer may lack several) and ``most[t, r]`` = the most of ``r`` free on
    any offer lacking it (-1 when none lacks it). Only the explanations call it, for jobs failing on size."""
    short = np.zeros((len(jobs), 3), dtype=np.int64)
    most = np.full((len(jobs), 3), -1, dtype=np.int64)
    o_cpu, o_gpu, o_mem = oc[0], oc[1], oc[2]
    for t in range(len(jobs)):
        j = jobs[t]
        need = (np.int64(jc[0][j]), np.int64(jc[1][j]), np.int64(jc[2][j]))
        for o in range(len(o_cpu)):
            if static_reason(j, o, jc, oc, 0.0) != R_SIZE:
                continue
            free = (np.int64(o_cpu[o]), np.int64(o_gpu[o]), np.int64(o_mem[o]))
            for r in range(3):
                if free[r] < need[r]:
                    short[t, r] += 1
                    if free[r] > most[t, r]:
                        most[t, r] = free[r]
    return short, most


@njit(cache=True)
def _lagrange_primal(order, ptr, po, pa, w, need, cap, lam, rem, assign, ask):
    """Jobs in ``order`` each take, among their pairs that fit ``rem``, the one of largest reduced profit
    ``w - sum_r lam[o, r] * need[j, r] / cap[o, r]`` (any sign; pairs of welfare 0 skipped). Returns welfare."""
    total = np.int64(0)
    for t in range(len(order)):
        j = order[t]
        best_p = -1
        best_rc = -np.inf
        for p in range(ptr[j], ptr[j + 1]):
            o = po[p]
            if w[p] <= 0 or rem[o, 0] < need[j, 0] or rem[o, 1] < need[j, 1] or rem[o, 2] < need[j, 2] \
                    or rem[o, 3] < need[j, 3]:
                continue
            rc = float(w[p])
            for r in range(4):
                if need[j, r] > 0:
                    rc -= lam[o, r] * need[j, r] / cap[o, r]
            if rc > best_rc:
                best_rc = rc
                best_p = p
        if best_p >= 0:
            o = po[best_p]
            for r in range(4):
                rem[o, r] -= need[j, r]
            assign[j] = o
            ask[j] = pa[best_p]
            total += w[best_p]
    return total


@njit(cache=True)
def lagrangian_heuristic(n_jobs, ptr, po, pa, w, need, rem0, iters):
    """Lagrangian relaxation of the capacity rows (CPUs, GPUs, memory, bond per offer, normalised by
    capacity) solved by subgradient steps (Polyak step ``mu * (L - best) / |g|^2``, ``mu`` from 2, halved
    after 8 steps without a better dual bound), with a primal repair at every step: jobs in decreasing
    reduced profit take their best-reduced-profit pair that still fits (:func:`_lagrange_primal`).
    Held & Karp / Fisher, "The Lagrangian relaxation method for solving integer programming problems"
    (Management Science, 1981). Pairs are grouped by job (``ptr``), ``need`` is int64[J, 4], ``rem0``
    int64[O, 4] the free capacity, ``w`` the pair welfare. Deterministic: ``iters`` steps.

    Returns ``(assign int64[J], ask int64[J], welfare, dual_bound)`` of the best primal found."""
    n_off = rem0.shape[0]
    cap = np.maximum(rem0.astype(np.float64), 1.0)
    lam = np.zeros((n_off, 4))
    best_assign = np.full(n_jobs, -1, dtype=np.int64)
    best_ask = np.zeros(n_jobs, dtype=np.int64)
    best_val = np.int64(-1)
    best_dual = np.inf
    mu = 2.0
    stall = 0
    red = np.zeros(n_jobs)
    load = np.zeros((n_off, 4))
    rem = np.empty((n_off, 4), dtype=np.int64)
    assign = np.empty(n_jobs, dtype=np.int64)
    ask = np.empty(n_jobs, dtype=np.int64)
    for it in range(iters):
        load[:, :] = 0.0
        dual = 0.0
        for j in range(n_jobs):
            best_rc = 0.0
            best_p = -1
            for p in range(ptr[j], ptr[j + 1]):
                o = po[p]
                rc = float(w[p])
                for r in range(4):
                    if need[j, r] > 0:
                        rc -= lam[o, r] * need[j, r] / cap[o, r]
                if rc > best_rc:
                    best_rc = rc
                    best_p = p
            red[j] = best_rc
            dual += best_rc
            if best_p >= 0:
                o = po[best_p]
                for r in range(4):
                    load[o, r] += need[j, r] / cap[o, r]
        dual += lam.sum()
        if it == 0 or dual < best_dual - 1e-9 * abs(best_dual):
            best_dual = dual
            stall = 0
        else:
            stall += 1
            if stall >= 8:
                mu *= 0.5
                stall = 0
        # primal repair: by decreasing reduced profit, then by best welfare
        order = np.argsort(-red, kind="mergesort")
        rem[:, :] = rem0
        assign[:] = -1
        ask[:] = 0
        val = _lagrange_primal(order, ptr, po, pa, w, need, cap, lam, rem, assign, ask)
        if val > best_val:
            best_val = val
            best_assign[:] = assign
            best_ask[:] = ask
        gap = best_dual - float(best_val)
        norm = 0.0
        for o in range(n_off):
            for r in range(4):
                g = load[o, r] - 1.0
                if lam[o, r] <= 0.0 and g < 0:
                    g = 0.0
                norm += g * g
        if norm <= 0.0 or gap <= 0.0:
            break
        t = mu * gap / norm
        for o in range(n_off):
            for r in range(4):
                v = lam[o, r] + t * (load[o, r] - 1.0)
                lam[o, r] = v if v > 0.0 else 0.0
    return best_assign, best_ask, best_val, best_dual
