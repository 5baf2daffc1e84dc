"""market.protocol: EIP-712 request envelopes sign, recover, and fail on any tampering."""

from __future__ import annotations

import pytest
from eth_account import Account

from market.protocol import (BadRequestSignature, ExchangeDomain, JobSpecIn, SignedRequest, canonical_json,
                             recover_request, sign_request, valid_id)

KEY = "0x" + "42" * 32  # a throwaway test key, not a real account
DOMAIN = ExchangeDomain(chainId=31337, verifyingContract="0x" + "ab" * 20)


def test_sign_recover_round_trip():
    req = sign_request(KEY, "job.submit", {"spec": {"kind": "proof", "x": [1, 2]}}, DOMAIN)
    assert recover_request(req, DOMAIN) == Account.from_key(KEY).address
    again = SignedRequest.model_validate_json(req.model_dump_json())
    assert recover_request(again, DOMAIN) == req.signer


@pytest.mark.parametrize("change", [
    {"payload": {"spec": {"kind": "proof", "x": [1, 3]}}},
    {"action": "job.cancel"},
    {"nonce": 7},
    {"expiry": 1},
])
def test_tampering_changes_the_signer(change):
    req = sign_request(KEY, "job.submit", {"spec": {"kind": "proof", "x": [1, 2]}}, DOMAIN, nonce=5)
    bad = req.model_copy(update=change)
    with pytest.raises(BadRequestSignature):
        recover_request(bad, DOMAIN)


def test_other_domain_and_claimed_signer_fail():
    req = sign_request(KEY, "account.balance", {}, DOMAIN)
    with pytest.raises(BadRequestSignature):
        recover_request(req, ExchangeDomain(chainId=1, verifyingContract=DOMAIN.verifying_contract))
    other = Account.from_key("0x" + "43" * 32).address
    with pytest.raises(BadRequestSignature):
        recover_request(req.model_copy(update={"signer": other}), DOMAIN)


def test_malformed_signature_and_ids():
    req = sign_request(KEY, "account.balance", {}, DOMAIN)
    with pytest.raises(BadRequestSignature):
        recover_request(req.model_copy(update={"signature": "0x" + "00" * 65}), DOMAIN)
    assert valid_id("job-1_A") and not valid_id("../etc") and not valid_id("x" * 65) and not valid_id("")


def test_canonical_json_and_spec_validation():
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
    spec = JobSpecIn.model_validate({"kind": "proof", "circuit": "mimc7", "rounds": 4, "preimage": "5",
                                     "max_price_wei": "1000"})
    assert spec.max_price_wei == 1000
    with pytest.raises(ValueError):
        JobSpecIn.model_validate({"kind": "inference", "max_price_wei": 1})
