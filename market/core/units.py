"""Ether amounts as people write them: ``1.5eth``, ``2 gwei``, ``42wei``, ``42`` (wei), parsed exactly with
:class:`decimal.Decimal` (never a float), and printed as ETH with the exact wei beside."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext

#: Wei per unit.
UNITS = {"wei": 1, "gwei": 10**9, "eth": 10**18, "ether": 10**18}
_AMOUNT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*([A-Za-z]*)\s*$")


class AmountError(ValueError):
    """An amount that is not ``NUMBER [wei|gwei|eth]``, is negative, or is a fraction of a wei."""


def parse_amount(text: str) -> int:
    """``"1.5eth"`` -> ``1500000000000000000``: a non-negative decimal number and an optional unit (``wei``
    default, ``gwei``, ``eth``/``ether``; any case), exact.

    Raises:
        AmountError: malformed, unknown unit, or not a whole number of wei (``0.1wei``, ``1e-19eth``).
    """
    m = _AMOUNT.match(text or "")
    if not m:
        raise AmountError(f"{text!r} is not an amount: write e.g. 1.5eth, 20gwei or 1000 (wei)")
    unit = (m.group(2) or "wei").lower()
    if unit not in UNITS:
        raise AmountError(f"unknown unit {m.group(2)!r} in {text!r}: use wei, gwei or eth")
    with localcontext() as ctx:
        ctx.prec = 200
        try:
            value = Decimal(m.group(1)) * UNITS[unit]
        except InvalidOperation:
            raise AmountError(f"{text!r} is not an amount") from None
    if value != value.to_integral_value():
        raise AmountError(f"{text!r} is not a whole number of wei (1 wei = 1e-18 eth)")
    return int(value)


def format_eth(wei: int) -> str:
    """``1500000000000000000`` -> ``"1.5 ETH (1500000000000000000 wei)"`` (exact: no float)."""
    whole, frac = divmod(abs(int(wei)), 10**18)
    sign = "-" if wei < 0 else ""
    eth = f"{whole}" + (f".{frac:018d}".rstrip("0") if frac else "")
    return f"{sign}{eth} ETH ({wei} wei)"
