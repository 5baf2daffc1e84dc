"""The committed contract artifacts equal a fresh solcjs build (python -m contracts.build --check)."""

from __future__ import annotations

import json

from contracts.build import ARTIFACTS_DIR, SETTINGS, stale_artifacts


def test_committed_artifacts_match_a_fresh_build() -> None:
    assert stale_artifacts() == []  # what `python -m contracts.build --check` runs
    artifact = json.loads((ARTIFACTS_DIR / "Settlement.json").read_text())
    assert artifact["settings"]["evmVersion"] == SETTINGS["evmVersion"] == "prague"
    assert artifact["settings"]["optimizer"]["enabled"] is True
    assert artifact["bytecode"].startswith("0x6080") and artifact["compiler"]["version"].startswith("0.8.")
