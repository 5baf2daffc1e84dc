"""Each provider's own Ray cluster: token auth on, side by side on one host, stopped by PID.

Real ``ray start --head`` clusters (one CPU each); drivers run as subprocesses so that this process never
joins a provider's cluster.
"""

from __future__ import annotations

import time

import psutil
import pytest

from providers.cluster import ProviderCluster
from providers.errors import ClusterError
from tests.providers.harness import driver_result, ray_driver

pytestmark = [pytest.mark.ray]


@pytest.fixture
def two_clusters(tmp_path):
    started = []
    try:
        for name in ("pa", "pb"):
            started.append(ProviderCluster.start(name, 1, tmp_path / name, fast_health_check=True))
        yield started
    finally:
        for c in started:
            c.stop()


def test_token_keeps_other_drivers_out_and_stop_is_by_pid(two_clusters, tmp_path):
    a, b = two_clusters
    assert a.address != b.address and a.token != b.token and a.temp_dir != b.temp_dir
    for c in (a, b):
        token_file = c.data_dir / "ray" / "auth_token"
        assert token_file.stat().st_mode & 0o777 == 0o600 and token_file.read_text().strip() == c.token
        assert c.token not in c.pidfile.read_text()  # the pidfile carries PIDs, not the token
    t0 = time.monotonic()
    # All at once (a refused driver takes ~5 s to give up, see ray_driver): A's token on B, no token on B, B's own.
    procs = {"a_token_on_b": ray_driver(b.address, a.env()),
             "no_token_on_b": ray_driver(b.address, {"RAY_AUTH_MODE": "disabled"}),
             "b_token_on_b": ray_driver(b.address, b.env()),
             "a_token_on_a": ray_driver(a.address, a.env())}
    results = {k: driver_result(p) for k, p in procs.items()}
    print(f"drivers: {time.monotonic() - t0:.1f} s")
    assert results["b_token_on_b"]["connected"] and results["a_token_on_a"]["connected"], results
    for refused in ("a_token_on_b", "no_token_on_b"):
        assert not results[refused]["connected"], refused
        assert "InvalidAuthToken" in results[refused]["stderr"] or "Authentication" in results[refused]["stderr"]

    a_procs = a.processes()
    assert {"raylet", "gcs_server"} <= {p.name() for p in a_procs}
    n = a.stop()
    assert n >= len(a_procs)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in a_procs)
    assert not a.pidfile.exists() and ProviderCluster.from_pidfile(a.data_dir) is None
    # B is untouched by A's stop.
    assert b.alive() and driver_result(ray_driver(b.address, b.env()))["connected"]


@pytest.fixture
def one_cluster(tmp_path):
    c = ProviderCluster.start("pa", 1, tmp_path / "pa", fast_health_check=True)
    try:
        yield c
    finally:
        c.stop()


def test_a_second_head_for_the_same_data_dir_is_refused(one_cluster):
    with pytest.raises(ClusterError, match="stop it first"):
        ProviderCluster.start("pa", 1, one_cluster.data_dir)
    assert one_cluster.alive()  # the refused start left the running head alone
