"""``raymarket quote JOB`` and ``raymarket submit JOB.toml`` against a real exchange (ThreadService: SQLite + the
in-process chain) with one bonded provider: quote exits non-zero and names the blocking constraint exactly when
submit's job is never matched; the job carries its verification policy (status --json) and its priced
collateral. A job on a registered circuit (``circuit add``; the spec names its id and a witness) is quoted like
it is submitted (the quote looks the circuit up), and a quote naming an unknown circuit says so. An infeasible
quote names the blocking resource (``resource``: gpus, memory)."""

from __future__ import annotations

import json
import time
import tomllib

from eth_account import Account
from typer.testing import CliRunner

import cli
from market.cli.exit_codes import ExitCode
from market.client import Client, ProviderClient
from market.core import policy as P
from market.core.jobspec import validate_spec
from market.core.tickets import dev_proving_key
from market.exchange import circuits
from proving.formats.zkey import zkey_bytes
from tests.service.conftest import start_service
from tests.service.harness import Heartbeats

PW = "jobspec test password"
BOND = 10**17
TEXT = "one sentence here.\n"


#: The blocking resource each infeasible spec's quote names (``resource`` in the quote JSON).
RESOURCE = {"gpu": "gpus", "memory": "memory", "circuit_gpu": "gpus"}


def _specs(tmp_path, circuit_id: str) -> dict[str, tuple[str | None, str]]:
    """name -> (expected blocking constraint or None when feasible, TOML)."""
    (tmp_path / "s.txt").write_text(TEXT)
    (tmp_path / "w.wtns").write_bytes(circuits.mimc_witness(5, 3))  # a witness of the registered circuit
    base = 'kind = "inference"\n[inputs]\ntext_file = "s.txt"\n'
    circuit = f'kind = "proof"\nmax_price = "100 gwei"\n[inputs]\ncircuit = "{circuit_id}"\nwitness = "w.wtns"\n'
    return {
        "ok": (None, 'max_price = "0.001 eth"\nverification = "spot-check:0.2"\n' + base),
        "gpu": ("model", 'max_price = "0.001 eth"\n' + base + '[resources]\ngpus = 1\n'),
        "memory": ("size", 'max_price = "0.001 eth"\n' + base + '[resources]\nmemory = "64GiB"\n'),
        "price": ("price", 'max_price = 1000\n' + base),
        "bond": ("bond", 'max_price = "0.01 eth"\nverification = "attest-only"\n' + base),  # 19 x 0.01 eth > bond
        "proof_ok": (None, 'kind = "proof"\nmax_price = "100 gwei"\n[inputs]\nrounds = 4\n'),
        "circuit_ok": (None, circuit),
        "circuit_gpu": ("model", circuit + '[resources]\ngpus = 1\n'),
    }


def test_quote_and_submit_agree_on_feasibility(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("RAYMARKET_HOME", str(home))
    monkeypatch.setenv("RAYMARKET_PASSWORD", PW)
    svc = start_service(tmp_path / "data")
    runner = CliRunner()
    try:
        key = Account.create().key.hex()
        Client(svc.url, key).faucet(10**18)
        pkey = Account.create().key.hex()
        pc = ProviderClient(svc.url, pkey)
        pc.register("p1", offer={"price_per_cpu_s_wei": 10**9, "cpus": 4, "gpus": 0, "gpu_model": None,
                                 "memory_bytes": 8 * 2**30, "speed": 1.0})
        Client(svc.url, pkey).faucet(0, bond_wei=BOND, provider_name="p1")
        (tmp_path / "k.txt").write_text(key + "\n")
        assert runner.invoke(cli.app, ["account", "import", "--private-key-file", str(tmp_path / "k.txt"),
                                       "--name", "c"]).exit_code == 0
        # a registered circuit (the project's own dev key of a 3-round MiMC, uploaded like any snarkjs zkey)
        circuit_id = Client(svc.url, key).add_circuit(zkey_bytes(dev_proving_key(3, tmp_path / "keys")))["circuit_id"]

        with Heartbeats(pc, "p1", []):  # online for the whole test (quotes count active providers only)
            submitted: dict[str, str] = {}
            leased: set[str] = set()
            for name, (blocking, toml) in _specs(tmp_path, circuit_id).items():
                path = tmp_path / f"{name}.toml"
                path.write_text(toml)
                q = runner.invoke(cli.app, ["quote", str(path), "--exchange", svc.url, "--json"])
                assert q.exit_code == (ExitCode.OK if blocking is None else ExitCode.CHECK_FAILED), (name, q.output)
                quote = json.loads(q.stdout)
                assert quote["blocking"] == blocking and quote["explanation"], (name, quote)
                assert quote["resource"] == RESOURCE.get(name), (name, quote)
                text = runner.invoke(cli.app, ["quote", str(path), "--exchange", svc.url])
                assert (blocking or "feasible") in text.stdout, text.output
                res = runner.invoke(cli.app, ["submit", str(path), "--exchange", svc.url, "--key", "c", "--json"])
                assert res.exit_code == 0, (name, res.output)
                job = json.loads(res.stdout)
                submitted[job["job_id"]] = name
                spec = validate_spec(tomllib.loads(toml), base_dir=tmp_path)
                assert job["verification"] == str(spec.policy) and int(job["collateral_wei"]) == spec.collateral_wei
                assert quote["collateral_wei"] == job["collateral_wei"]

                # the feasible one comes at once; an infeasible one is watched 0.5 s here and 3 s more below
                leased |= _poll(pc, job["job_id"] if blocking is None else None, timeout_s=0.5)
                assert (job["job_id"] in leased) == (blocking is None), (name, leased)
            leased |= _poll(pc, None)  # and many more rounds (0.1 s each): the infeasible ones never come
            assert {submitted[j] for j in leased} == {"ok", "proof_ok", "circuit_ok"}, leased
            unknown = tmp_path / "unknown.toml"  # a circuit the exchange does not have: not_found, named
            unknown.write_text(_specs(tmp_path, "ab" * 32)["circuit_ok"][1])
            q = runner.invoke(cli.app, ["quote", str(unknown), "--exchange", svc.url, "--json"])
            assert q.exit_code != 0 and "not_found" in q.output and "ab" * 6 in q.output, q.output
        mem = runner.invoke(cli.app, ["status", next(j for j, n in submitted.items() if n == "memory"),
                                      "--exchange", svc.url, "--json"])  # status names the blocking resource too
        assert "free memory 64 GiB (most free: 8 GiB)" in json.loads(mem.stdout)["explanation"], mem.stdout
        st = runner.invoke(cli.app, ["status", next(j for j, n in submitted.items() if n == "bond"),
                                     "--exchange", svc.url, "--json"])
        view = json.loads(st.stdout)
        assert view["status"] == "open" and view["verification"] == "attest-only"
        assert int(view["collateral_wei"]) == P.required_collateral_wei(10**16, P.parse_policy("attest-only"))
    finally:
        svc.stop()


def _poll(pc: ProviderClient, want: str | None, timeout_s: float = 3.0) -> set[str]:
    """Lease ids polled by p1 until ``want`` arrives (at most 30 s) or, without ``want``, for ``timeout_s``."""
    got: set[str] = set()
    deadline = time.monotonic() + (30.0 if want else timeout_s)
    while time.monotonic() < deadline and (want is None or want not in got):
        got |= {lease["job_id"] for lease in pc.poll("p1", max_leases=10, wait_s=0.3)}
    return got
