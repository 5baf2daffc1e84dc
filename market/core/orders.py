"""Orders of the compute market: what a client asks for (:class:`JobOrder`) and what a provider sells
(:class:`Offer`), plus their columnar forms (:class:`JobBook`, :class:`OfferBook`) that the matching
kernels read.

Units: wei for money (``int``, never ``float``), seconds for time, bytes for memory, a plain count for
CPUs and GPUs. Prices are per resource-second: a provider's ask for a job is

    run_s   = ceil(duration_estimate_s * 1000 / speed_milli)          (seconds at the provider's speed)
    rate    = cpus * price_per_cpu_s_wei + gpus * price_per_gpu_s_wei
              + ceil(memory_bytes * price_per_gib_s_wei / 2**30)      (wei per second)
    ask_wei = run_s * max(rate, 1)                                         (never 0: see below)

where ``speed_milli = round(1000 * speed)`` is the provider's benchmarked speed factor quantised to
thousandths (1000 = the reference machine that ``duration_estimate_s`` is quoted at). See :func:`ask_wei`.
The rate is at least 1 wei per second: an offer priced 0 for every resource a job takes would otherwise ask
0, clear at price 0 and then fail payment (issue 14, finding 7); a pricing hook's ask of 0 or less is
refused outright (:mod:`market.core.pricing_hook`).

Units of work: a job may state ``work_units`` (constraints of a proof, sentences of an inference) and an offer
may quote ``price_per_constraint_wei`` / ``price_per_sentence_wei``; such a pair asks
``work_units * price_per_unit`` (:func:`unit_ask_wei`), independent of any speed, and enters the round as an ask
override (the kernels' hook path). Pairs without a per-unit quote keep the per-second formula above, with the
exchange's measured speed in ``speed`` (:mod:`market.core.pricing`, "measured speed"): one CPU-second at
measured speed ``s`` does ``s * REFERENCE_UNITS_PER_S[kind]`` units, so the per-unit price it implies is
``rate / (s * REFERENCE_UNITS_PER_S[kind])``.

Re-auction (the exchange loop's side): a job that failed, timed out or whose provider was slashed comes
back as :func:`reopen` of its last order: ``attempt`` + 1, the failed provider added to
``exclude_providers`` (never matched to it again) and ``max_price_wei`` lowered to the remaining budget.

Pure module: no Ray, SQLAlchemy or web3.
"""

from __future__ import annotations

import math
from operator import attrgetter
from dataclasses import dataclass, fields, replace
from typing import Any, Iterable, Literal, Mapping

import numpy as np

#: Bytes per GiB (memory prices are per GiB-second).
GIB_BYTES = 2**30
#: Every wei field and every computed ask must stay below this bound (so asks compare exactly in int64).
MAX_WEI = 2**62
#: Verification policies a job may require and an offer may support (MISSION.md, step 5).
VerificationPolicy = Literal["proof", "reexec", "challenge", "attestation"]
VERIFICATION_POLICIES: frozenset[str] = frozenset({"proof", "reexec", "challenge", "attestation"})


class MatchingError(Exception):
    """Root of the errors raised by the matching core (orders, matching, pricing, explain, pricing hooks)."""


class InvalidOrder(MatchingError, ValueError):
    """A job order or offer field is out of range; ``field``/``value`` name it, ``fix`` says what to do."""

    def __init__(self, record: str, field_name: str, value: Any, fix: str) -> None:
        self.record, self.field, self.value, self.fix = record, field_name, value, fix
        super().__init__(f"{record}.{field_name}={value!r}: {fix}")


class DuplicateId(MatchingError, ValueError):
    """Two jobs share a ``job_id`` or two offers share a ``provider`` in one round."""

    def __init__(self, kind: str, ident: str) -> None:
        self.kind, self.ident = kind, ident
        super().__init__(f"duplicate {kind} {ident!r} in one round: ids must be unique (one offer per provider)")


def _check_int(record: str, name: str, value: Any, lo: int, hi: int = MAX_WEI) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidOrder(record, name, value, f"must be an int (got {type(value).__name__})")
    if not lo <= value < hi:
        raise InvalidOrder(record, name, value, f"must be in [{lo}, {hi})")


def _check_real(record: str, name: str, value: Any, lo: float, hi: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidOrder(record, name, value, "must be a number")
    if not (lo <= float(value) <= hi) or math.isnan(float(value)):
        raise InvalidOrder(record, name, value, f"must be in [{lo}, {hi}]")


def _check_names(record: str, name: str, value: Any) -> None:
    if not isinstance(value, frozenset) or not all(isinstance(v, str) and v for v in value):
        raise InvalidOrder(record, name, value, "must be a frozenset of non-empty str")


@dataclass(frozen=True, slots=True)
class JobOrder:
    """A client's job as the matching engine sees it.

    Fields: ``job_id`` (unique, client-chosen), ``client``, ``kind`` (e.g. ``"inference"``, ``"proof"``);
    resources ``cpus``, ``gpus``, ``gpu_model`` (``None`` = any model), ``memory_bytes``;
    ``duration_estimate_s`` at reference speed 1.0; ``max_price_wei`` (the budget left for this attempt);
    ``deadline_s`` (absolute, seconds since the epoch: the job must finish by then at the provider's
    speed); ``collateral_wei`` (free bond the provider must lock for the job); ``allow_providers``
    (empty = any), ``deny_providers`` and ``exclude_providers`` (providers that failed this job before:
    re-auction never returns to them); ``verification`` (policy the provider must support);
    ``min_reputation`` in [0, 1]; ``labels_required`` (offer must carry all).
    Reverse Dutch auction parameters (RISC Zero Boundless request offer: ``minPrice``, ``biddingStart``,
    ``rampUpPeriod``, ``lockTimeout``): ``min_price_wei``, ``bidding_start_s``, ``ramp_period_s``,
    ``lock_timeout_s``. ``attempt`` counts re-auctions (0 = first). ``work_units``: the job's units of work
    (a proof job's constraint count, an inference job's sentence count; 0 = not known), priced by offers that
    quote per unit (:func:`unit_ask_wei`).

    Raises:
        InvalidOrder: a field out of range (names the field and the fix).
    """

    job_id: str
    client: str
    kind: str
    duration_estimate_s: int
    max_price_wei: int
    deadline_s: float
    cpus: int = 1
    gpus: int = 0
    gpu_model: str | None = None
    memory_bytes: int = 0
    collateral_wei: int = 0
    allow_providers: frozenset[str] = frozenset()
    deny_providers: frozenset[str] = frozenset()
    exclude_providers: frozenset[str] = frozenset()
    verification: str = "attestation"
    min_reputation: float = 0.0
    labels_required: frozenset[str] = frozenset()
    min_price_wei: int = 0
    bidding_start_s: float = 0.0
    ramp_period_s: float = 0.0
    lock_timeout_s: float = 600.0
    attempt: int = 0
    work_units: int = 0

    def __post_init__(self) -> None:
        r = f"JobOrder[{self.job_id!r}]"
        for name in ("job_id", "client", "kind"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise InvalidOrder(r, name, getattr(self, name), "must be a non-empty str")
        _check_int(r, "duration_estimate_s", self.duration_estimate_s, 1, 2**31)
        _check_int(r, "max_price_wei", self.max_price_wei, 1)
        _check_real(r, "deadline_s", self.deadline_s, 0.0, 1e15)
        _check_int(r, "cpus", self.cpus, 0, 2**20)
        _check_int(r, "gpus", self.gpus, 0, 2**16)
        _check_int(r, "memory_bytes", self.memory_bytes, 0, 2**50)
        _check_int(r, "collateral_wei", self.collateral_wei, 0)
        _check_int(r, "min_price_wei", self.min_price_wei, 0, self.max_price_wei + 1)
        _check_int(r, "attempt", self.attempt, 0, 2**31)
        _check_int(r, "work_units", self.work_units, 0, 2**40)
        _check_real(r, "min_reputation", self.min_reputation, 0.0, 1.0)
        _check_real(r, "bidding_start_s", self.bidding_start_s, 0.0, 1e15)
        _check_real(r, "ramp_period_s", self.ramp_period_s, 0.0, 1e15)
        _check_real(r, "lock_timeout_s", self.lock_timeout_s, 0.0, 1e15)
        if self.cpus == 0 and self.gpus == 0:
            raise InvalidOrder(r, "cpus", 0, "a job needs at least one CPU or one GPU")
        if self.gpu_model is not None and (not isinstance(self.gpu_model, str) or not self.gpu_model):
            raise InvalidOrder(r, "gpu_model", self.gpu_model, "must be None (any model) or a non-empty str")
        if self.verification not in VERIFICATION_POLICIES:
            raise InvalidOrder(r, "verification", self.verification, f"must be one of {sorted(VERIFICATION_POLICIES)}")
        for name in ("allow_providers", "deny_providers", "exclude_providers", "labels_required"):
            _check_names(r, name, getattr(self, name))


@dataclass(frozen=True, slots=True)
class Offer:
    """A provider's standing offer: its node's capacity, prices and standing.

    Fields: ``provider`` (unique per round: one offer per provider node); capacity ``cpus``, ``gpus``,
    ``gpu_model`` (``None`` when it has no GPU), ``memory_bytes`` (total; what running jobs use is
    subtracted by the round's ``running`` argument); prices ``price_per_cpu_s_wei``,
    ``price_per_gpu_s_wei``, ``price_per_gib_s_wei`` (wei per resource-second at its own speed);
    ``free_bond_wei`` (bond not yet locked as collateral: each assignment consumes the job's
    ``collateral_wei``); ``reputation`` in [0, 1]; ``labels``; ``speed`` (speed factor, 1.0 = reference;
    quantised to thousandths: the exchange puts its *measured* speed here, :mod:`market.core.pricing`);
    ``verification`` (policies it supports); ``price_per_constraint_wei`` / ``price_per_sentence_wei``:
    optional quotes per unit of work (0 = none) for proof / inference jobs that state ``work_units``.

    Raises:
        InvalidOrder: a field out of range.
    """

    provider: str
    cpus: int
    memory_bytes: int
    price_per_cpu_s_wei: int
    free_bond_wei: int
    gpus: int = 0
    gpu_model: str | None = None
    price_per_gpu_s_wei: int = 0
    price_per_gib_s_wei: int = 0
    reputation: float = 1.0
    labels: frozenset[str] = frozenset()
    speed: float = 1.0
    verification: frozenset[str] = VERIFICATION_POLICIES
    price_per_constraint_wei: int = 0
    price_per_sentence_wei: int = 0

    def __post_init__(self) -> None:
        r = f"Offer[{self.provider!r}]"
        if not isinstance(self.provider, str) or not self.provider:
            raise InvalidOrder(r, "provider", self.provider, "must be a non-empty str")
        _check_int(r, "cpus", self.cpus, 0, 2**20)
        _check_int(r, "gpus", self.gpus, 0, 2**16)
        _check_int(r, "memory_bytes", self.memory_bytes, 0, 2**50)
        for name in ("price_per_cpu_s_wei", "price_per_gpu_s_wei", "price_per_gib_s_wei", "free_bond_wei",
                     "price_per_constraint_wei", "price_per_sentence_wei"):
            _check_int(r, name, getattr(self, name), 0)
        _check_real(r, "reputation", self.reputation, 0.0, 1.0)
        _check_real(r, "speed", self.speed, 0.001, 1e6)
        if self.gpus > 0 and not (isinstance(self.gpu_model, str) and self.gpu_model):
            raise InvalidOrder(r, "gpu_model", self.gpu_model, "an offer with GPUs must name their model")
        _check_names(r, "labels", self.labels)
        if not isinstance(self.verification, frozenset) or not self.verification <= VERIFICATION_POLICIES:
            raise InvalidOrder(r, "verification", self.verification, f"must be a subset of {sorted(VERIFICATION_POLICIES)}")

    @property
    def speed_milli(self) -> int:
        """The speed factor in thousandths (``round(1000 * speed)``, at least 1)."""
        return max(1, round(self.speed * 1000))


@dataclass(frozen=True, slots=True)
class Usage:
    """Resources already taken on a provider by running jobs (``running`` argument of a round)."""

    cpus: int = 0
    gpus: int = 0
    memory_bytes: int = 0


def run_seconds(duration_estimate_s: int, speed_milli: int) -> int:
    """Seconds a job quoted at reference speed takes on a provider: ``ceil(duration * 1000 / speed_milli)``."""
    return -(-duration_estimate_s * 1000 // speed_milli)


def ask_wei(job: JobOrder, offer: Offer) -> int:
    """The static ask (wei) of ``offer`` for ``job`` by the formula in the module docstring (exact ints)."""
    mem_term = -(-job.memory_bytes * offer.price_per_gib_s_wei // GIB_BYTES)
    rate = max(1, job.cpus * offer.price_per_cpu_s_wei + job.gpus * offer.price_per_gpu_s_wei + mem_term)
    return run_seconds(job.duration_estimate_s, offer.speed_milli) * rate


#: Which per-unit price of an offer prices a job kind's ``work_units``.
UNIT_PRICE_FIELD: dict[str, str] = {"proof": "price_per_constraint_wei", "inference": "price_per_sentence_wei"}


def unit_ask_wei(job: JobOrder, offer: Offer) -> int | None:
    """The per-unit ask ``work_units * price_per_<unit>_wei`` of ``offer`` for ``job``, or ``None`` when the job
    states no units or the offer quotes no per-unit price for its kind (the time-based :func:`ask_wei` applies).
    Speed plays no part: the same job from the same provider asks the same price however fast the machine
    measured that day."""
    field_name = UNIT_PRICE_FIELD.get(job.kind)
    price = getattr(offer, field_name) if field_name else 0
    if job.work_units <= 0 or price <= 0:
        return None
    return job.work_units * price


def static_ask_wei(job: JobOrder, offer: Offer) -> int:
    """The ask without a pricing hook: the per-unit ask when the offer quotes one, else :func:`ask_wei`."""
    unit = unit_ask_wei(job, offer)
    return ask_wei(job, offer) if unit is None else unit


def unit_asks(jobs: Iterable[JobOrder], offers: Iterable[Offer]) -> dict[tuple[str, str], int]:
    """``(job_id, provider) -> ask`` for every pair priced per unit of work (:func:`unit_ask_wei`), as the round's
    ask overrides. O(offers) when no offer quotes per unit; else O(jobs with units x quoting offers). Asks at or
    above :data:`MAX_WEI` are left out (the pair is then priced by time)."""
    quoting = [o for o in offers if o.price_per_constraint_wei or o.price_per_sentence_wei]
    if not quoting:
        return {}
    out: dict[tuple[str, str], int] = {}
    for j in jobs:
        if j.work_units <= 0:
            continue
        for o in quoting:
            a = unit_ask_wei(j, o)
            if a is not None and a < MAX_WEI:
                out[(j.job_id, o.provider)] = a
    return out


def reopen(job: JobOrder, *, failed_provider: str | None, spent_wei: int = 0) -> JobOrder:
    """The order a failed / timed-out / slashed job re-enters the next round with.

    Args:
        job: the order it was matched with.
        failed_provider: the provider that failed it (excluded from now on), or ``None``.
        spent_wei: budget already paid out for this job (``max_price_wei`` drops by it).

    Raises:
        InvalidOrder: when no budget is left (``spent_wei >= max_price_wei``).
    """
    excluded = job.exclude_providers | ({failed_provider} if failed_provider else set())
    return replace(job, attempt=job.attempt + 1, exclude_providers=frozenset(excluded),
                   max_price_wei=job.max_price_wei - spent_wei,
                   min_price_wei=min(job.min_price_wei, max(0, job.max_price_wei - spent_wei)))


# ---------------------------------------------------------------------------------------------
# Columnar books
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Labels:
    """The round's label vocabulary: label -> bit. Offers and jobs carry ``uint64[n, words]`` masks.

    Verification policies are folded in as labels ``"verify:<policy>"``.
    """

    names: list[str]

    @property
    def words(self) -> int:
        return max(1, (len(self.names) + 63) // 64)

    def masks(self, sets: list[frozenset[str]]) -> np.ndarray:
        """``uint64[len(sets), words]`` bit masks (labels outside the vocabulary are ignored)."""
        index = {n: i for i, n in enumerate(self.names)}
        cache: dict[frozenset[str], int] = {}
        ints = []
        for labels in sets:
            m = cache.get(labels)
            if m is None:
                m = 0
                for name in labels:
                    i = index.get(name)
                    if i is not None:
                        m |= 1 << i
                cache[labels] = m
            ints.append(m)
        words = self.words
        out = np.zeros((len(sets), words), dtype=np.uint64)
        for w in range(words):
            out[:, w] = np.fromiter(((m >> (64 * w)) & 0xFFFFFFFFFFFFFFFF for m in ints), np.uint64, len(ints))
        return out


@dataclass(slots=True)
class OfferBook:
    """Offers as numpy columns, sorted by ``provider`` (the canonical order). Length ``n``.

    ``cpus_free``/``gpus_free``/``mem_free`` are capacity minus ``running`` usage; ``model`` indexes
    ``models`` (-1: no GPU); ``mask`` has one bit per label of ``labels`` (offer labels plus
    ``verify:<policy>``).
    """

    providers: list[str]
    cpus_free: np.ndarray
    gpus_free: np.ndarray
    mem_free: np.ndarray
    bond_free: np.ndarray
    model: np.ndarray
    reputation: np.ndarray
    speed_milli: np.ndarray
    price_cpu: np.ndarray
    price_gpu: np.ndarray
    price_gib: np.ndarray
    mask: np.ndarray

    @property
    def n(self) -> int:
        return len(self.providers)


@dataclass(slots=True)
class JobBook:
    """Jobs as numpy columns, sorted by ``job_id`` (the canonical order). Length ``n``.

    ``model`` indexes the round's model table (-1: any model; -2: a model no offer has);
    ``mask`` is the required-label mask (``labels_required`` plus ``verify:<policy>``); a required label
    no offer carries sets ``impossible_label``; ``unknown_models`` maps rows with model -2 to the name. ``allow_ptr/allow_idx`` and ``deny_ptr/deny_idx`` are CSR
    lists of offer indices (deny includes ``exclude_providers``); ``has_allow`` marks jobs with an
    allow list (an allow list naming no offered provider leaves the job unmatchable).
    """

    job_ids: list[str]
    cpus: np.ndarray
    gpus: np.ndarray
    mem: np.ndarray
    model: np.ndarray
    duration_s: np.ndarray
    max_price: np.ndarray
    min_price: np.ndarray
    deadline_s: np.ndarray
    collateral: np.ndarray
    min_reputation: np.ndarray
    bidding_start_s: np.ndarray
    ramp_period_s: np.ndarray
    mask: np.ndarray
    impossible_label: np.ndarray
    has_allow: np.ndarray
    allow_ptr: np.ndarray
    allow_idx: np.ndarray
    deny_ptr: np.ndarray
    deny_idx: np.ndarray
    unknown_models: dict[int, str]

    @property
    def n(self) -> int:
        return len(self.job_ids)


def _col(records: list[Any], name: str, dtype: Any) -> np.ndarray:
    return np.fromiter(map(attrgetter(name), records), dtype=dtype, count=len(records))


def _verify_labels(policies: Iterable[str]) -> frozenset[str]:
    return frozenset("verify:" + p for p in policies)


def build_offer_book(offers: Iterable[Offer], running: Mapping[str, Usage] | None = None) -> tuple[OfferBook, list[str], Labels]:
    """Columnar, canonically ordered form of ``offers`` with ``running`` usage subtracted.

    Returns:
        ``(book, models, labels)``: ``models`` is the sorted GPU model table, ``labels`` the vocabulary.

    Raises:
        DuplicateId: two offers of one provider.
    """
    recs = sorted(offers, key=lambda o: o.provider)
    for a, b in zip(recs, recs[1:]):
        if a.provider == b.provider:
            raise DuplicateId("offer provider", a.provider)
    running = running or {}
    models = sorted({o.gpu_model for o in recs if o.gpu_model})
    model_ix = {m: i for i, m in enumerate(models)}
    label_sets = [o.labels | _verify_labels(o.verification) for o in recs]
    labels = Labels(sorted(set().union(*label_sets)) if label_sets else [])
    used = [running.get(o.provider, Usage()) for o in recs]
    book = OfferBook(
        providers=[o.provider for o in recs],
        cpus_free=_col(recs, "cpus", np.int64) - _col(used, "cpus", np.int64),
        gpus_free=_col(recs, "gpus", np.int64) - _col(used, "gpus", np.int64),
        mem_free=_col(recs, "memory_bytes", np.int64) - _col(used, "memory_bytes", np.int64),
        bond_free=_col(recs, "free_bond_wei", np.int64),
        model=np.fromiter((model_ix.get(o.gpu_model, -1) if o.gpu_model else -1 for o in recs), np.int32, len(recs)),
        reputation=_col(recs, "reputation", np.float64),
        speed_milli=np.fromiter((o.speed_milli for o in recs), np.int64, len(recs)),
        price_cpu=_col(recs, "price_per_cpu_s_wei", np.int64),
        price_gpu=_col(recs, "price_per_gpu_s_wei", np.int64),
        price_gib=_col(recs, "price_per_gib_s_wei", np.int64),
        mask=labels.masks(label_sets),
    )
    return book, models, labels


def _csr(sets: list[frozenset[str]], index: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    counts = np.zeros(len(sets) + 1, dtype=np.int64)
    idx: list[int] = []
    for row, names in enumerate(sets):
        if names:
            found = sorted(index[n] for n in names if n in index)
            idx.extend(found)
            counts[row + 1] = len(found)
    return np.cumsum(counts), np.asarray(idx, dtype=np.int32)


def build_job_book(jobs: Iterable[JobOrder], offer_book: OfferBook, models: list[str], labels: Labels) -> JobBook:
    """Columnar, canonically ordered form of ``jobs`` against the round's offers.

    Raises:
        DuplicateId: two jobs with one ``job_id``.
    """
    recs = sorted(jobs, key=attrgetter("job_id"))
    for a, b in zip(recs, recs[1:]):
        if a.job_id == b.job_id:
            raise DuplicateId("job_id", a.job_id)
    model_ix = {m: i for i, m in enumerate(models)}
    prov_ix = {p: i for i, p in enumerate(offer_book.providers)}
    req_cache: dict[tuple[frozenset[str], str], frozenset[str]] = {}
    req = []
    for j in recs:
        key = (j.labels_required, j.verification)
        r = req_cache.get(key)
        if r is None:
            r = req_cache[key] = j.labels_required | _verify_labels([j.verification])
        req.append(r)
    known = set(labels.names)
    impossible = {r: not r <= known for r in req_cache.values()}
    empty: frozenset[str] = frozenset()
    deny = [(j.deny_providers | j.exclude_providers) if (j.deny_providers or j.exclude_providers) else empty for j in recs]
    allow = [j.allow_providers for j in recs]
    allow_ptr, allow_idx = _csr(allow, prov_ix)
    deny_ptr, deny_idx = _csr(deny, prov_ix)
    return JobBook(
        job_ids=[j.job_id for j in recs],
        cpus=_col(recs, "cpus", np.int64),
        gpus=_col(recs, "gpus", np.int64),
        mem=_col(recs, "memory_bytes", np.int64),
        model=np.fromiter((-1 if m is None else model_ix.get(m, -2) for m in map(attrgetter("gpu_model"), recs)), np.int32, len(recs)),
        duration_s=_col(recs, "duration_estimate_s", np.int64),
        max_price=_col(recs, "max_price_wei", np.int64),
        min_price=_col(recs, "min_price_wei", np.int64),
        deadline_s=_col(recs, "deadline_s", np.float64),
        collateral=_col(recs, "collateral_wei", np.int64),
        min_reputation=_col(recs, "min_reputation", np.float64),
        bidding_start_s=_col(recs, "bidding_start_s", np.float64),
        ramp_period_s=_col(recs, "ramp_period_s", np.float64),
        mask=labels.masks(req),
        impossible_label=np.fromiter((impossible[r] for r in req), np.bool_, len(recs)),
        has_allow=np.fromiter(map(bool, allow), np.bool_, len(recs)),
        allow_ptr=allow_ptr, allow_idx=allow_idx, deny_ptr=deny_ptr, deny_idx=deny_idx,
        unknown_models={i: j.gpu_model for i, j in enumerate(recs) if j.gpu_model is not None and j.gpu_model not in model_ix},
    )


def record_to_dict(record: JobOrder | Offer | Usage) -> dict[str, Any]:
    """A JSON-ready dict of a record (frozensets as sorted lists)."""
    out: dict[str, Any] = {}
    for f in fields(record):
        v = getattr(record, f.name)
        out[f.name] = sorted(v) if isinstance(v, frozenset) else v
    return out


def record_from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Inverse of :func:`record_to_dict` for ``JobOrder``, ``Offer`` or ``Usage``.

    Raises:
        InvalidOrder: unknown field or bad value.
    """
    kwargs: dict[str, Any] = {}
    known = {f.name: f for f in fields(cls)}
    for k, v in data.items():
        if k not in known:
            raise InvalidOrder(cls.__name__, k, v, f"unknown field; expected one of {sorted(known)}")
        kwargs[k] = frozenset(v) if isinstance(v, list) else v
    return cls(**kwargs)
