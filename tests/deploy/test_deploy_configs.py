"""The deploy/ files are checked, not just shipped: the ``ray up`` YAML against Ray's own config schema,
the KubeRay manifest against the RayCluster CRD's rules, the compose file's structure, and every
``raymarket`` command the files run, with ``--help`` and its options, against the real CLI."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RAYMARKET = [sys.executable, "-c", "import cli; cli.main()"]


def _raymarket_commands(text: str) -> list[list[str]]:
    """Every ``raymarket ...`` invocation in a shell text, as argv after the program name."""
    found = []
    for m in re.finditer(r"(?:^|[\s;&|/])raymarket\s+([^&;|\n]*)", text.replace("\\\n", " ")):
        argv = shlex.split(m.group(1).replace("${", "$").replace("}", ""), posix=True)
        found.append([a for a in argv if not a.startswith(">")])
    return found


def _check_command(argv: list[str]) -> None:
    """``raymarket <sub-commands> --help`` succeeds and lists every option the file passes."""
    words = []
    for a in argv:
        if a.startswith("-"):
            break
        words.append(a)
    env = {**os.environ, "COLUMNS": "300", "TERM": "dumb", "NO_COLOR": "1"}
    out = subprocess.run(RAYMARKET + words + ["--help"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, f"raymarket {' '.join(words)} --help failed: {out.stderr[-500:]}"
    for opt in (a.split("=")[0] for a in argv if a.startswith("--")):
        assert opt in out.stdout, f"raymarket {' '.join(words)} has no option {opt}"


def test_ray_up_yaml_passes_rays_own_schema_and_runs_token_auth():
    config = yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())
    validate_config(prepare_config(config))
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    ray_starts = [c for c in starts if "ray start" in c]
    assert ray_starts and all("RAY_AUTH_MODE=token" in c for c in ray_starts)
    agents = [cmd for c in starts for cmd in _raymarket_commands(c)]
    assert agents and agents[0][:2] == ["provider", "start"]
    for argv in agents:
        _check_command(argv)


def test_a_broken_ray_up_yaml_is_rejected_by_the_same_check():
    config = yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())
    config["head_start_ray_commands"] = [{"not": "a command"}]
    with pytest.raises(Exception):
        validate_config(prepare_config(config))


def _containers(template: dict) -> list[dict]:
    return template["spec"]["containers"]


def test_kuberay_manifest_follows_the_raycluster_crd_and_puts_the_agent_on_the_head():
    doc = yaml.safe_load((DEPLOY / "kuberay-cluster.yaml").read_text())
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayCluster")
    spec = doc["spec"]
    groups = [spec["headGroupSpec"]] + spec["workerGroupSpecs"]
    for group in groups:
        # The CRD types rayStartParams as map[string]string: a number or a bool is refused by the API server.
        assert all(isinstance(v, str) for v in group["rayStartParams"].values()), group["rayStartParams"]
        names = [c["name"] for c in _containers(group["template"])]
        assert len(names) == len(set(names)) and names
        for c in _containers(group["template"]):
            env = {e["name"]: e for e in c.get("env", [])}
            assert env["RAY_AUTH_MODE"]["value"] == "token" and "RAY_AUTH_TOKEN" in env, c["name"]
    for w in spec["workerGroupSpecs"]:
        assert w["groupName"] and 0 <= w["minReplicas"] <= w["replicas"] <= w["maxReplicas"]
    head = _containers(spec["headGroupSpec"]["template"])
    agent = [c for c in head if any("raymarket provider start" in a for a in c.get("args", []))]
    assert len(agent) == 1, "the provider agent runs beside the head"
    volumes = {v["name"] for v in spec["headGroupSpec"]["template"]["spec"].get("volumes", [])}
    assert all(m["name"] in volumes for m in agent[0].get("volumeMounts", []))
    for argv in _raymarket_commands(" ".join(agent[0]["args"])):
        _check_command(argv)


def test_compose_file_runs_postgres_a_chain_node_and_the_exchange_service():
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = doc["services"]
    assert {"postgres", "chain", "exchange"} <= set(services)
    for name, svc in services.items():
        assert "image" in svc, name
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
        for port in svc.get("ports", []):
            assert re.fullmatch(r"(\d+\.\d+\.\d+\.\d+:)?\d+:\d+", port), port
    exchange = services["exchange"]
    assert "postgres:5432" in exchange["environment"]["RAYMARKET_DATABASE_URL"]
    assert exchange["environment"]["RAYMARKET_RPC_URL"].startswith("http://chain:")
    commands = _raymarket_commands(" ".join(exchange["command"]))
    assert ["exchange", "serve"] in [c[:2] for c in commands]
    for argv in commands:
        _check_command(argv)


@pytest.mark.parametrize("unit", ["raymarket-exchange.service", "raymarket-provider.service"])
def test_systemd_units_run_real_commands(unit):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string((DEPLOY / unit).read_text())
    service = parser["Service"]
    assert service["Type"] == "simple" and "ExecStart" in service
    execs = [service[k] for k in ("ExecStartPre", "ExecStart", "ExecReload", "ExecStop") if k in service]
    commands = [cmd for e in execs for cmd in _raymarket_commands(e)]
    assert len(commands) == len(execs)
    for argv in commands:
        _check_command(argv)
