"""A provider's Ray head gets distinct ports, fresh on every ``ray start`` attempt (found by the chaos suite: two
one-at-a-time free-port probes returned the same port, ``ray start`` refused "port 36563 ... used by other
components", and all three attempts reused the same command, so a restarted agent could not start its cluster).
Pure: ``ray start`` is replaced by a stub that records its command."""

from __future__ import annotations

import subprocess

import pytest

from providers import cluster
from providers.cluster import HEAD_PORT_FLAGS, ProviderCluster, _free_ports
from providers.errors import ClusterError


def test_free_ports_are_distinct() -> None:
    for _ in range(20):
        ports = _free_ports(len(HEAD_PORT_FLAGS) + 1)
        assert len(set(ports)) == len(ports) and all(1024 <= p < 65536 for p in ports)


def _ports(cmd: list[str]) -> dict[str, int]:
    return {a.split("=")[0]: int(a.split("=")[1]) for a in cmd if a.split("=")[0] in ("--port", *HEAD_PORT_FLAGS)}


def test_every_attempt_of_ray_start_picks_new_distinct_ports(tmp_path, monkeypatch) -> None:
    cmds: list[list[str]] = []

    def failing_ray_start(cmd, **_kw):
        cmds.append(list(cmd))
        return subprocess.CompletedProcess(cmd, 1, "", "ValueError: Ray component dashboard is trying to use a "
                                                      "port number 36563 that is used by other components.")

    monkeypatch.setattr(cluster.subprocess, "run", failing_ray_start)
    monkeypatch.setattr(cluster, "_minimal_dashboard", lambda: False)
    with pytest.raises(ClusterError, match="attempt 3 of 3"):
        ProviderCluster.start("pports", 1, tmp_path / "pports", attempts=3)
    assert len(cmds) == 3
    seen = [_ports(c) for c in cmds]
    for ports in seen:
        assert set(ports) == {"--port", *HEAD_PORT_FLAGS} and len(set(ports.values())) == len(ports)
    assert len({tuple(sorted(p.items())) for p in seen}) == 3  # a new set each time
