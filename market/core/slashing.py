"""Protocol constants and slashing rules, as data (pure: no database, no Ray, no web3).

The ledger (:func:`market.ledger.slash`) applies these rules; the exchange and the verifier
only name a :class:`SlashReason`.

Sources:
  * RISC Zero Boundless, "Proof lifecycle" / market docs: a prover locks an order with
    collateral; if it misses the deadline the collateral is slashed, part is burned and part
    becomes a bounty for the prover who fulfils the order instead (half / half).
  * Succinct SP1 prover network and EigenLayer slashing (ELIP-002 "Slashing via Unique Stake
    & Operator Sets", and the veto committee design): a slash is first *queued*; during a
    window an arbiter (veto committee) may cancel it; only then is it final. Withdrawals of
    stake wait an unbonding / withdrawal delay so that a fault found late can still be slashed.
  * Liveness vs safety faults (Ethereum consensus specs distinguish inactivity from
    slashable equivocation): a missed deadline is often an infrastructure fault, a wrong
    result is a safety fault, so the latter is slashed harder and compensates the client.

Choices of this project (not copied from a source, stated so they can be argued with):
  * a missed deadline slashes HALF the job's locked collateral (Boundless slashes all of it;
    MISSION.md lists "providers slashed for infrastructure faults" as a pain to avoid), split
    half burned / half to the rescuing provider as in Boundless;
  * a wrong result slashes ALL the job's locked collateral: half compensates the client,
    half is burned;
  * a share whose recipient is absent (no rescuer, no client named) is burned, so that no
    party profits from a fault it did not repair;
  * protocol fee 1% (100 bps), unbonding period 7 days, cancellation window 2 days (the numbers:
    :mod:`market.core.policy`).

All fractions are integer basis points (1 bp = 1/10_000); amounts are int wei; times are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from market.core.policy import DEFAULT_PROTOCOL_FEE_BPS, SLASH_CANCEL_WINDOW_S, UNBONDING_PERIOD_S

#: Basis points in one whole (100%).
BPS_DENOMINATOR = 10_000

# The protocol constants (fee, unbonding period, cancel window) live in market.core.policy with their
# sources; re-exported here for the ledger and the pipeline.
__all__ = ["BPS_DENOMINATOR", "DEFAULT_PROTOCOL_FEE_BPS", "UNBONDING_PERIOD_S", "SLASH_CANCEL_WINDOW_S",
           "SlashReason", "SlashRule", "SLASH_RULES", "SlashSplit", "rule_for", "slash_amount_wei", "split_slash",
           "protocol_fee_wei"]


class SlashReason(StrEnum):
    """Why a provider is slashed."""

    MISSED_DEADLINE = "missed_deadline"
    WRONG_RESULT = "wrong_result"


@dataclass(frozen=True)
class SlashRule:
    """How much of a job's locked collateral a fault costs, and where it goes.

    Attributes:
        reason: the fault this rule covers.
        slash_bps: fraction of the job's locked collateral slashed, in bps (0 < x <= 10_000).
        burn_bps, rescuer_bps, client_bps: split of the slashed amount, in bps; they sum to 10_000.
    """

    reason: SlashReason
    slash_bps: int
    burn_bps: int
    rescuer_bps: int
    client_bps: int

    def __post_init__(self) -> None:
        if not 0 < self.slash_bps <= BPS_DENOMINATOR:
            raise ValueError(f"slash_bps must be in (0, {BPS_DENOMINATOR}], got {self.slash_bps}")
        parts = (self.burn_bps, self.rescuer_bps, self.client_bps)
        if min(parts) < 0 or sum(parts) != BPS_DENOMINATOR:
            raise ValueError(f"burn/rescuer/client bps must be >= 0 and sum to {BPS_DENOMINATOR}, got {parts}")


#: The rules, one per reason (see the module docstring for sources and choices).
SLASH_RULES: dict[SlashReason, SlashRule] = {
    SlashReason.MISSED_DEADLINE: SlashRule(SlashReason.MISSED_DEADLINE, slash_bps=5_000,
                                           burn_bps=5_000, rescuer_bps=5_000, client_bps=0),
    SlashReason.WRONG_RESULT: SlashRule(SlashReason.WRONG_RESULT, slash_bps=10_000,
                                        burn_bps=5_000, rescuer_bps=0, client_bps=5_000),
}


@dataclass(frozen=True)
class SlashSplit:
    """Where a slashed amount goes, in wei; ``burn_wei + rescuer_wei + client_wei == amount_wei``."""

    amount_wei: int
    burn_wei: int
    rescuer_wei: int
    client_wei: int


def rule_for(reason: SlashReason | str) -> SlashRule:
    """The rule for ``reason``.

    Raises:
        ValueError: when ``reason`` is not a :class:`SlashReason` value (the message lists them).
    """
    try:
        return SLASH_RULES[SlashReason(reason)]
    except ValueError:
        valid = ", ".join(r.value for r in SlashReason)
        raise ValueError(f"unknown slash reason {reason!r}: use one of {valid}") from None


def slash_amount_wei(rule: SlashRule, locked_wei: int) -> int:
    """Amount slashed from ``locked_wei`` of job collateral: ``floor(locked * slash_bps / 10_000)``."""
    return locked_wei * rule.slash_bps // BPS_DENOMINATOR


def split_slash(rule: SlashRule, amount_wei: int, *, has_rescuer: bool, has_client: bool) -> SlashSplit:
    """Split ``amount_wei`` by ``rule``; rounding dust and shares without a recipient are burned.

    Returns:
        a :class:`SlashSplit` whose parts sum exactly to ``amount_wei``.
    """
    rescuer = amount_wei * rule.rescuer_bps // BPS_DENOMINATOR if has_rescuer else 0
    client = amount_wei * rule.client_bps // BPS_DENOMINATOR if has_client else 0
    return SlashSplit(amount_wei, amount_wei - rescuer - client, rescuer, client)


def protocol_fee_wei(price_wei: int, fee_bps: int) -> int:
    """Protocol fee on ``price_wei``: ``floor(price * fee_bps / 10_000)`` (rounding favours the provider).

    Raises:
        ValueError: when ``fee_bps`` is outside [0, 10_000].
    """
    if not 0 <= fee_bps <= BPS_DENOMINATOR:
        raise ValueError(f"fee_bps must be in [0, {BPS_DENOMINATOR}], got {fee_bps}")
    return price_wei * fee_bps // BPS_DENOMINATOR
