"""Issue 14 finding 2: spot re-execution rows come from a secret the exchange holds, mixed with the attested
result hash, so a provider cannot know them before it commits to its result.

What exists today (recorded in the report): ``market.exchange.verification.spot_sample`` / ``check_spot_sample``
are not called by the service; an inference upload is accepted on its hash, its EIP-712 attestation and the
shape / unit-norm check only (``market.exchange.service.completion.verify``)."""

from __future__ import annotations

import secrets

import pytest
from eth_utils import keccak

from market.exchange.verification import spot_sample

N = 240


def test_rows_depend_on_the_exchange_secret_not_only_the_job_id():
    job, h = "j-0123456789abcdef0123", keccak(b"result")
    ours = spot_sample(secrets.token_bytes(32), job, h, N)
    # what the provider could compute before (keccak(job_id)-seeded) no longer determines the rows
    guesses = {tuple(spot_sample(secrets.token_bytes(32), job, h, N)) for _ in range(20)}
    assert tuple(ours) not in guesses and len(guesses) == 20


def test_rows_are_drawn_after_the_result_hash():
    secret, job = secrets.token_bytes(32), "j-1"
    a = spot_sample(secret, job, keccak(b"result a"), N)
    assert a == spot_sample(secret, job, keccak(b"result a"), N)  # replayable by the exchange
    assert a != spot_sample(secret, job, keccak(b"result b"), N)
    assert len(set(a)) == 8 and all(0 <= r < N for r in a)


def test_refuses_weak_inputs():
    with pytest.raises(ValueError, match="secret"):
        spot_sample(b"short", "j-1", bytes(32), N)
    with pytest.raises(ValueError, match="result_hash"):
        spot_sample(secrets.token_bytes(32), "j-1", b"\x00" * 8, N)
