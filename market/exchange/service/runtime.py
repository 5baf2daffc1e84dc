"""What the service holds while it runs: the engine, the chain and contract, the settler and watcher,
the request domain, the metrics, and the locks. Built once by :func:`open_runtime`."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from market import exchange as ex
from market.db.base import make_engine
from market.db.migrate import upgrade
from market.core.matching import RoundInputs
from market.core.orders import JobOrder, Offer
from market.db.models import LeaseRecord
from market.exchange.service.chain_setup import ChainSetup, setup_chain
from market.exchange.service.challenges import ChallengeBook
from market.exchange.service.config import ServiceConfig
from market.exchange.service.metrics import Metrics
from market.protocol import ExchangeDomain
from market.settlement.batching import BatchingPolicy, Settler
from market.settlement.watcher import Watcher, WatcherConfig, WatcherHooks
from proving.curve import first_invalid_point

OPEN_LEASE = ("assigned", "running")


@dataclass
class Runtime:
    """The running service's state (everything durable is in the database).

    Attributes:
        settings: :class:`market.settings.Settings`; config: :class:`ServiceConfig`; engine: the database;
        chain: :class:`ChainSetup`; settler, watcher: settlement; domain: the request EIP-712 domain;
        metrics: :class:`Metrics`; write_lock: serialises this process's write transactions;
        generation: bumped when new leases exist (long-polls wake on it); explanations: job id -> why unmatched;
        last_round: (market fingerprint, time) of the last round (see ``loop.market_fingerprint``);
        challenges: the outstanding speed challenges (:mod:`market.exchange.service.challenges`).
    """

    settings: Any
    config: ServiceConfig
    engine: Engine
    chain: ChainSetup
    settler: Settler
    watcher: Watcher
    domain: ExchangeDomain
    metrics: Metrics
    write_lock: threading.RLock = field(default_factory=threading.RLock)
    generation: int = 0
    explanations: dict[str, str] = field(default_factory=dict)
    verifying_keys: dict[int, Any] = field(default_factory=dict)
    last_round: tuple[Any, float] = (None, 0.0)
    challenges: ChallengeBook = field(default_factory=ChallengeBook)

    @contextmanager
    def tx(self) -> Iterator[Session]:
        """One write transaction (serialised in this process): commits on success, rolls back on any error."""
        with self.write_lock, Session(self.engine) as s, s.begin():
            yield s

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session."""
        with Session(self.engine) as s:
            yield s

    @property
    def attestation_domain(self) -> Any:
        """The Settlement contract's EIP-712 domain providers sign attestations under."""
        return self.chain.contract.domain

    def close(self) -> None:
        """Dispose of the engine."""
        self.engine.dispose()


def open_runtime(settings: Any, config: ServiceConfig) -> Runtime:
    """Migrate the database, open the engine, set up the chain and contract, settlement and watcher; warm the
    matching kernels.

    Raises:
        contracts.errors.ChainUnreachable, ValueError (see :func:`setup_chain`).
    """
    url = settings.resolved_database_url
    upgrade(url)
    engine = make_engine(url)
    chain = setup_chain(engine, settings.rpc_url, config.contract, config.operator_key)
    policy = BatchingPolicy(max_batch_size=settings.settlement_batch_size, window_s=settings.settlement_window_s)
    settler = Settler(engine, chain.contract, chain.operator_key, policy)
    hooks = ex.register_settlement_hooks(WatcherHooks())
    watcher = Watcher(chain.contract, engine, WatcherConfig(from_block=chain.from_block,
                                                            confirmations=settings.confirmations), hooks)
    domain = ExchangeDomain(chainId=chain.chain.chain_id, verifyingContract=chain.contract.address)
    rt = Runtime(settings, config, engine, chain, settler, watcher, domain, Metrics())
    warm_matching(settings.matching_rule)
    warm_key_checks()
    return rt


def warm_key_checks() -> float:
    """Compile (or load from numba's disk cache) the zkey point checks before the service takes requests: a
    ``circuit add`` or the first MiMC job parses a zkey inside the service's write transaction, and a first
    compile there stalled every request for minutes on a loaded box (found by the chaos suite). Returns the
    seconds it took."""
    t0 = time.perf_counter()
    first_invalid_point(np.zeros((1, 8), np.uint64), False)
    first_invalid_point(np.zeros((1, 16), np.uint64), True)
    return time.perf_counter() - t0


def warm_matching(rule: str) -> float:
    """Clear a small round so the matching kernels compile (numba, cached on disk) before the service takes
    jobs, rather than in its first round. Returns the seconds it took."""
    t0 = time.perf_counter()
    now = time.time()
    jobs = tuple(JobOrder(job_id=f"warm-up-{i}", client="warm-up", kind=("proof", "inference")[i % 2],
                          duration_estimate_s=1 + i, max_price_wei=10**12, deadline_s=now + 3600, cpus=1,
                          gpus=i // 3, memory_bytes=0, collateral_wei=(0, 10)[i % 2],
                          exclude_providers=frozenset({"warm-up-0"} if i == 2 else ()), attempt=int(i == 2))
                 for i in range(4))
    offers = tuple(Offer(provider=f"warm-up-{i}", cpus=2, memory_bytes=2**30, price_per_cpu_s_wei=1 + i,
                         free_bond_wei=100, gpus=i, gpu_model="warm-up" if i else None,
                         price_per_gpu_s_wei=50 * i) for i in range(2))
    RoundInputs(jobs=jobs, offers=offers, rule=rule, now_s=now).clear()
    return time.perf_counter() - t0


def grace_open_leases(rt: Runtime, now_s: float) -> int:
    """Give every open lease at least ``lease_s`` from ``now_s`` (called as the service starts serving: it was
    down, and the providers' work must not be lost for that). Returns how many leases are open."""
    n = 0
    with rt.tx() as s:
        for lease in s.scalars(select(LeaseRecord).where(LeaseRecord.status.in_(OPEN_LEASE))):
            lease.expires_at = max(lease.expires_at, now_s + rt.config.lease_s)
            n += 1
    return n
