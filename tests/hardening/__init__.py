"""Regression tests of issue 14's findings against the exchange service, the CLI and the core rules."""
