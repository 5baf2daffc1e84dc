"""The committed contract artifacts equal a fresh solcjs build (python -m contracts.build --check)."""

from __future__ import annotations

import json

import pytest

from contracts.build import ARTIFACTS_DIR, SETTINGS, BuildError, compile_sources, stale_artifacts, with_imports
from contracts.build import main as build_main


def test_committed_artifacts_match_a_fresh_build() -> None:
    assert stale_artifacts() == []  # what `python -m contracts.build --check` runs
    for name in ("Settlement", "Vault", "KeyedGroth16Verifier"):
        artifact = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())
        assert artifact["settings"]["evmVersion"] == SETTINGS["evmVersion"] == "prague"
        assert artifact["settings"]["optimizer"]["enabled"] is True
        assert artifact["bytecode"].startswith(("0x60", "0x61")) and artifact["compiler"]["version"].startswith("0.8.")
        assert artifact["libraries"]["@openzeppelin/contracts"].startswith("5.")
    # only the project's contracts get artifacts, not the OpenZeppelin files they import
    assert not (ARTIFACTS_DIR / "Ownable.json").exists() and not (ARTIFACTS_DIR / "ECDSA.json").exists()


def test_check_mode_passes_on_the_committed_tree() -> None:
    assert build_main(["--check"]) == 0


def test_openzeppelin_imports_resolve_from_npm_and_unknown_imports_are_named() -> None:
    closure = with_imports({"A.sol": 'import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";'})
    assert "@openzeppelin/contracts/utils/cryptography/EIP712.sol" in closure
    assert "@openzeppelin/contracts/utils/ShortStrings.sol" in closure  # EIP712's own "../ShortStrings.sol"
    with pytest.raises(BuildError, match="no remapping"):
        compile_sources({"B.sol": 'import "forge-std/Test.sol";\ncontract B {}'})
