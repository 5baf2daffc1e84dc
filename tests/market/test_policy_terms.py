"""The verification policy as the EIP-712 attestation carries it: ``(verification, sample_rate_ppm)``."""

from __future__ import annotations

from fractions import Fraction

import pytest

from market.core.policy import (ATTESTATION_CODES, POLICY_NAMES, RATE_PPM, PolicyError, VerificationPolicy,
                                attestation_terms, default_policy, parse_policy, policy_from_terms)


@pytest.mark.parametrize("text,terms", [("proof", (0, 0)), ("attest-only", (2, 0)), ("spot-check:0.5", (1, 500_000)),
                                        ("spot-check:0.000001", (1, 1)), ("spot-check:1", (1, RATE_PPM)),
                                        ("spot-check:0.123456", (1, 123_456))])
def test_terms_round_trip_exactly(text, terms):
    pol = parse_policy(text)
    assert attestation_terms(pol) == terms
    assert policy_from_terms(*terms) == pol and str(policy_from_terms(*terms)) == text


def test_every_policy_has_a_code_and_defaults_map():
    assert set(ATTESTATION_CODES) == set(POLICY_NAMES) and sorted(ATTESTATION_CODES.values()) == [0, 1, 2]
    assert attestation_terms(default_policy("proof")) == (0, 0)
    assert attestation_terms(default_policy("inference")) == (1, 500_000)


@pytest.mark.parametrize("terms,word", [((3, 0), "unknown"), ((True, 0), "unknown"), ((0, 5), "no sample rate"),
                                        ((2, 1), "no sample rate"), ((1, 0), "1..1000000"),
                                        ((1, RATE_PPM + 1), "1..1000000")])
def test_malformed_terms_are_refused(terms, word):
    with pytest.raises(PolicyError, match=word):
        policy_from_terms(*terms)


def test_a_rate_finer_than_a_ppm_has_no_terms():
    with pytest.raises(PolicyError, match="ppm"):
        attestation_terms(VerificationPolicy("spot-check", Fraction(1, 3)))
