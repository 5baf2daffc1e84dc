"""The provider agent on the real cluster: hardware detected, a detached worker on the provider's
node found by name by the exchange, the offer registered and the bond posted in the ledger."""

from __future__ import annotations

import ray
import pytest
from sqlalchemy.orm import Session

from market import ledger
from market.settings import Settings
from market.db.models import ProviderRecord
from market.exchange.runner import MarketRunner
from providers.agent import start_provider
from providers.workers import find_worker

pytestmark = [pytest.mark.ray]


def test_provider_start_registers_and_exchange_attaches(ray_cluster, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", ray_address=ray_cluster.address)
    info = start_provider(ray_address=ray_cluster.address, price_per_cpu_s_wei=25 * 10**9, bond_wei=5 * 10**17,
                          name="p2", key_file=tmp_path / "p2.key", join=False, cpus=2, settings=settings,
                          progress=lambda m: None)
    actor = find_worker("p2")
    try:
        assert actor is not None
        assert (tmp_path / "p2.key").stat().st_mode & 0o777 == 0o600
        node_of_p2 = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n.get("Labels", {}).get("provider") == "p2"]
        assert info["node_id"] in node_of_p2  # the worker runs on the provider's own node
        runner = MarketRunner(settings)
        runner.start_database()
        with Session(runner.engine) as s:
            rec = s.get(ProviderRecord, "p2")
            assert rec.address == info["address"] and rec.cpus == 2 and rec.price_per_cpu_s_wei == 25 * 10**9
            assert ledger.balance(s, ledger.bond_account("p2")) == 5 * 10**17
        assert runner.attach_providers() == ["p2"]
        assert runner.providers["p2"].address == info["address"]
        runner.engine.dispose()
    finally:
        if actor is not None:
            ray.kill(actor)
