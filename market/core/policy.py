"""The market's policy numbers in one place, each with where it comes from (pure: constants and tiny rules).

Numbers that are *choices of this project* say so; numbers taken from another system name it. The
slashing rules themselves (fractions and splits per fault) are data in :mod:`market.core.slashing`,
which re-exports the protocol constants below for its callers.

Units: wei for money, seconds for time, basis points (1 bp = 1/10_000) for fractions of money;
reputation is a float in [0, 1].
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- protocol money

#: Protocol fee taken from each released job payment, in basis points: 1%. Project choice (stated in
#: :mod:`market.core.slashing`'s list of choices); the default of the ledger's ``release_payment`` and of
#: the proving pipeline's payments.
DEFAULT_PROTOCOL_FEE_BPS = 100

#: Delay between ``request_unbond`` and ``complete_unbond``, in seconds: 7 days. EigenLayer's withdrawal
#: delay is ~7 days (MIN_WITHDRAWAL_DELAY_BLOCKS = 50_400 blocks of 12 s), so a fault found late can
#: still be slashed.
UNBONDING_PERIOD_S = 7 * 24 * 3600

#: Window after a slash during which an arbiter may cancel it, in seconds: 2 days. Project choice, after
#: the queued-then-final slashing of SP1 / EigenLayer (ELIP-002 veto committee); shorter than the
#: unbonding period so a provider cannot unbond out of a queued slash.
SLASH_CANCEL_WINDOW_S = 2 * 24 * 3600

# ----------------------------------------------------------------------------- reputation

#: Factor a provider's reputation is multiplied by when it delivers a provably wrong result (a safety
#: fault: it is also slashed). Project choice: halving, so two wrong results put a provider below any
#: ``min_reputation`` of 0.3 or more.
REPUTATION_FACTOR_WRONG_RESULT = 0.5

#: Factor for an infrastructure fault (lease expired, job given back, worker died): a liveness fault,
#: not slashed (MISSION.md lists "providers slashed for infrastructure faults" as a pain to avoid), so
#: it costs much less reputation. Project choice: 10% per fault.
REPUTATION_FACTOR_FAULT = 0.9


def lowered_reputation(reputation: float, *, wrong_result: bool) -> float:
    """A provider's reputation after a fault: times :data:`REPUTATION_FACTOR_WRONG_RESULT` or
    :data:`REPUTATION_FACTOR_FAULT`, floored at 0, rounded to 6 decimals (stable in the database)."""
    factor = REPUTATION_FACTOR_WRONG_RESULT if wrong_result else REPUTATION_FACTOR_FAULT
    return max(0.0, round(reputation * factor, 6))


# ----------------------------------------------------------------------------- prices

#: A GPU-second's default ask as a multiple of the provider's CPU-second ask, used when a provider is
#: registered with GPUs but no GPU price (the in-process runner). Project choice, kept from the code it
#: was written twice in (runner and provider agent): roughly the ratio of an on-demand datacentre GPU
#: hour to a vCPU hour at public clouds.
GPU_PRICE_PER_CPU_PRICE = 50


def default_gpu_price_wei(price_per_cpu_s_wei: int, gpus: int) -> int:
    """Default ask per GPU-second (wei) of a provider with ``gpus`` GPUs: ``price_per_cpu_s_wei *``
    :data:`GPU_PRICE_PER_CPU_PRICE`, or 0 without GPUs."""
    return price_per_cpu_s_wei * GPU_PRICE_PER_CPU_PRICE if gpus else 0


# ----------------------------------------------------------------------------- quotes

#: How many recent clearing prices of the same job kind a quote's p50 / p90 come from. Project choice:
#: enough for a stable p90, recent enough to follow the market.
QUOTE_RECENT_PRICES = 200


# ----------------------------------------------------------------------------- collateral

#: Default collateral of a job, in basis points of its max price, by how its result is verified (issue 14
#: finding 5: a job with 0 collateral made a provable wrong result slash nothing). Project choice:
#: ``exact`` (proof jobs: the exchange checks the Groth16 pairing before paying, and a bad settled leaf can
#: be challenged on chain) 10%: a wrong proof is never paid, the stake only answers for the client's lost
#: time; ``spot`` (inference: only sampled rows are re-executed, so a wrong result can be paid) 100%: a
#: caught cheat loses at least what the job could have paid it.
DEFAULT_COLLATERAL_BPS = {"exact": 1_000, "spot": 10_000}

#: How each job kind's result is verified (the key of :data:`DEFAULT_COLLATERAL_BPS`).
VERIFICATION_POLICY = {"proof": "exact", "inference": "spot"}


def default_collateral_wei(max_price_wei: int, kind: str) -> int:
    """Collateral (wei of the provider's free bond locked while it holds the job) for a job the client gave no
    collateral for: ``max_price_wei * DEFAULT_COLLATERAL_BPS[VERIFICATION_POLICY[kind]] // 10_000``, at least
    1 wei for a priced job (so a provider with no bond is never matched).

    Raises:
        KeyError: an unknown job kind.
    """
    bps = DEFAULT_COLLATERAL_BPS[VERIFICATION_POLICY[kind]]
    return max(max_price_wei * bps // 10_000, 1 if max_price_wei > 0 else 0)
