"""``raymarket demo --json`` as a user runs it (a subprocess of the real CLI: dev up with anvil or the in-process
EVM, two real provider agents (an inference result is spot re-executed by the other) each on its own Ray
cluster, jobs through the SDK, dev down): its ``"audit"`` is balanced
with no claim pending, and ``"withdrawals"`` lists the on-chain claims (a provider's earnings and the client's
unused balance), so the demo's money entered only by Vault deposits/stake and came back only by Vault claims
(issue 12)."""

from __future__ import annotations

import pytest

from tests.cli.test_dev_flow import ok, run


@pytest.mark.timeout(1800, method="signal")  # signal: the finally still runs `dev down` on a timeout
def test_demo_audit_is_balanced_and_money_comes_back_by_claims(tmp_path):
    home = tmp_path / "home"
    try:
        report = ok(run(home, "demo", "--providers", "2", "--proof-jobs", "1", "--proof-rounds", "8", "--json",
                        timeout=1500))
    finally:
        if (home / "dev" / "state.json").exists():  # the demo did not get to its own dev down
            run(home, "dev", "down", "--json", timeout=300)
    audit = report["audit"]
    assert audit["balanced"] is True, audit
    assert audit["contract_balance_wei"] == audit["ledger_liabilities_wei"] and audit["pending_claims_wei"] == "0"
    assert all(j["status"] in ("paid", "settled") for j in report["jobs"])
    client = report["client_balance"]["address"]
    claimed = {w["address"] for w in report["withdrawals"]}
    assert report["withdrawals"] and all(int(w["amount_wei"]) > 0 and w["tx_hash"] for w in report["withdrawals"])
    assert {p["address"] for p in report["providers"]} & claimed  # a provider took out its earnings
    assert client in claimed  # the client withdrew its unused balance
