"""Issue 14 finding 4: job ids validated at every entry point, stored files named by content hash, on-chain
jobIds derived (domain-separated) so that distinct jobs never share one."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest
from eth_account import Account
from eth_hash.auto import keccak
from typer.testing import CliRunner

import cli
from contracts.attestation import JOB_ID_DOMAIN, job_id_bytes32
from market.cli.exit_codes import ExitCode
from market.cli.jobs import result_file_name
from market.client import ApiError, Client
from market.protocol import valid_id
from tests.service.conftest import start_service

BAD_IDS = ["../x", "a/b", "..", "x" * 65, "abc\n", "", "a b", "0x" + "ab" * 32, "j\x00"]


def test_onchain_job_id_is_domain_separated_and_never_the_client_string():
    victim = "j-0123456789abcdef0123"
    assert job_id_bytes32(victim) == keccak(JOB_ID_DOMAIN + victim.encode())
    # the attack of the finding: an id that spells the victim's jobId (or its old keccak mapping)
    for attacker in ("0x" + job_id_bytes32(victim).hex(), "0x" + keccak(victim.encode()).hex()):
        assert job_id_bytes32(attacker) != job_id_bytes32(victim)
    u = uuid.uuid4()  # two spellings of one UUID were one jobId under the old mapping
    assert job_id_bytes32(str(u)) != job_id_bytes32(u.hex)
    with pytest.raises(Exception):
        job_id_bytes32(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_id_pattern_is_whole_string(bad):
    assert not valid_id(bad)


def test_result_files_are_named_by_content_hash():
    assert result_file_name("inference", b"abc") == keccak(b"abc").hex() + ".npy"
    assert result_file_name("proof", b"abc") == keccak(b"abc").hex() + ".proof.json"


@pytest.fixture
def home(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("RAYMARKET_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("RAYMARKET_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize("args", [["status", "../../etc/passwd"], ["cancel", "a/b"], ["result", "x" * 65],
                                  ["logs", ".."], ["submit", "proof", "--max-price", "100", "--job-id", "../up"]])
def test_cli_refuses_bad_job_ids_before_any_request(home, args):
    res = CliRunner().invoke(cli.app, [*args, "--exchange", "http://127.0.0.1:9"])
    assert res.exit_code == ExitCode.USAGE, res.output
    assert "job id" in res.output and "Traceback" not in res.output


def test_service_refuses_bad_ids_and_keeps_good_ones_apart(tmp_path):
    svc = start_service(tmp_path / "data")
    try:
        c = Client(svc.url, Account.create().key.hex())
        c.faucet(10**18)
        for bad in BAD_IDS:
            with pytest.raises(ApiError) as e:
                c.submit_inference(b"hello world.", max_price_wei=10**12, job_id=bad)
            assert e.value.code == "invalid", bad
        victim = c.submit_inference(b"hello world.", max_price_wei=10**12, job_id="victim-1")
        attacker_id = "0x" + job_id_bytes32("victim-1").hex()
        with pytest.raises(ApiError):
            c.submit_inference(b"hello world.", max_price_wei=10**12, job_id=attacker_id)
        assert victim["job_id"] == "victim-1"
        for path in ("/v1/jobs/..%2F..%2Fx", "/v1/jobs/" + "x" * 65):
            assert httpx.get(svc.url + path, timeout=10).status_code in (404, 422)
        assert httpx.get(svc.url + "/healthz", timeout=10).json() == {"ok": True}
    finally:
        svc.stop()
