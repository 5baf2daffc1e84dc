"""The ledger's error root derives from the project root, so `except RaymarketError` catches ledger refusals."""

from __future__ import annotations

import inspect

from market import ledger
from market.ledger import errors
from proving.errors import RaymarketError


def test_every_ledger_error_is_a_raymarket_error() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]
    assert ledger.LedgerError in classes and len(classes) > 10
    for cls in classes:
        assert issubclass(cls, ledger.LedgerError) and issubclass(cls, RaymarketError), cls
    assert str(ledger.InvalidAmount("amount_wei", 0.5)).startswith("amount_wei must be a positive int")
