"""Fixtures of the service tests: the real service on SQLite + in-process EVM (thread) with funded parties."""

from __future__ import annotations

import pytest
from eth_account import Account

from market.core.tickets import DEV_SETUP_SEED
from market.client import Client, ProviderClient
from market.exchange.service import ServiceConfig
from market.settings import Settings
from tests.service.harness import ThreadService

ROUNDS = 4
#: Lease lifetime of the test services, seconds: short, yet long enough on a loaded 2-core box.
LEASE_S = 6.0
#: Small request limits so that the size checks are cheap to exercise.
SMALL_LIMITS = {"max_body_bytes": 2 * 2**20, "max_result_bytes": 2**20, "max_input_bytes": 256 * 2**10}  # MiMC-7 rounds of the test proof jobs: the flow, not the prover, is under test


def new_key() -> str:
    """A fresh throwaway private key (test only)."""
    return Account.create().key.hex()


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory):
    """The dev proving key of the test circuit, built once, and the prover compiled (warm)."""
    from tests.service.harness import run_lease

    path = tmp_path_factory.mktemp("keys")
    run_lease({"kind": "proof", "ticket": {"preimage": "1", "rounds": ROUNDS, "setup_seed": DEV_SETUP_SEED}}, path)
    return path


def start_service(data_dir, database_url=None, rpc_url=None) -> ThreadService:
    """The service in dev mode with short leases (``LEASE_S``), a fast loop and 1 s settlement windows."""
    settings = Settings(data_dir=data_dir, database_url=database_url, rpc_url=rpc_url, settlement_window_s=1.0,
                        max_attempts=3)
    return ThreadService(settings, ServiceConfig(lease_s=LEASE_S, round_interval_s=0.1, dev=True, **SMALL_LIMITS)).start()


@pytest.fixture
def service(tmp_path, keys_dir):
    """The service on the embedded defaults: SQLite + the in-process EVM."""
    svc = start_service(tmp_path / "data")
    yield svc
    svc.stop()


@pytest.fixture(params=["sqlite+in-process-evm", "postgres+anvil"])
def any_service(request, tmp_path, keys_dir):
    """The service on the embedded defaults, then on a real Postgres server and a real anvil node."""
    if request.param == "postgres+anvil":
        svc = start_service(tmp_path / "data", request.getfixturevalue("pg_url"),
                            request.getfixturevalue("anvil").rpc_url)
    else:
        svc = start_service(tmp_path / "data")
    yield svc
    svc.stop()


def make_parties(service):
    """A funded client and two registered, bonded providers (p1 cheaper than p2)."""
    client = Client(service.url, new_key())
    client.faucet(10**18)
    provs = {}
    for name, price in (("p1", 10**9), ("p2", 2 * 10**9)):
        key = new_key()
        pc = ProviderClient(service.url, key)
        pc.register(name, offer={"price_per_cpu_s_wei": price, "cpus": 4, "gpus": 0, "gpu_model": None,
                                 "memory_bytes": 8 * 2**30, "speed": 1.0})
        Client(service.url, key).faucet(0, bond_wei=10**17, provider_name=name)
        provs[name] = (pc, key)
    for name, (pc, _) in provs.items():  # both online now: under load the bonding above can outlast a lease
        pc.heartbeat(name)               # period, and a provider last seen at its registration would be offline
    return client, provs


@pytest.fixture
def parties(service):
    """:func:`make_parties` on :func:`service`."""
    return make_parties(service)
