"""Compile every ``contracts/*.sol`` with the npm ``solcjs`` (standard JSON) into ``contracts/artifacts``.

Each artifact ``contracts/artifacts/<Name>.json`` holds ``abi``, ``bytecode`` (creation code, 0x-hex),
``deployedBytecode``, the compiler version and the settings, so that a reader can rebuild and compare.

Usage::

    python -m contracts.build           # rebuild the artifacts
    python -m contracts.build --check   # exit 1 when the committed artifacts differ from a fresh build

Settings: optimizer on (200 runs), ``evmVersion: "prague"`` (py-evm, the in-process EVM, stops at Prague;
solc 0.8.37 defaults to Osaka; see FIELD-NOTES).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parent
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"

SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "prague",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


class BuildError(RuntimeError):
    """solcjs failed or reported errors; ``errors`` holds solc's formatted messages."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("solc failed:\n" + "\n".join(errors))
        self.errors = errors


def _solcjs() -> str:
    from contracts.tools import npm_bin

    return npm_bin("solcjs")


@lru_cache(maxsize=1)
def solc_version() -> str:
    """The solcjs compiler version string, e.g. ``0.8.37+commit.f401782d.Emscripten.clang``."""
    out = subprocess.run([_solcjs(), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def compile_sources(sources: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Compile Solidity sources (``{file name: source text}``) with solcjs standard JSON.

    Returns:
        ``{contract name: artifact dict}`` for every contract that has bytecode or an ABI.
    Raises:
        BuildError: on any solc error (warnings are ignored).
    """
    request = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sorted(sources.items())},
        "settings": SETTINGS,
    }
    proc = subprocess.run(
        [_solcjs(), "--standard-json"], input=json.dumps(request), capture_output=True, text=True
    )
    try:
        output = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError as exc:
        raise BuildError([proc.stdout, proc.stderr]) from exc
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    if errors or proc.returncode != 0:
        raise BuildError(errors or [proc.stderr])
    version = solc_version()
    artifacts: dict[str, dict[str, Any]] = {}
    for source_name, contracts in sorted(output["contracts"].items()):
        for name, c in sorted(contracts.items()):
            artifacts[name] = {
                "contractName": name,
                "sourceName": source_name,
                "abi": c["abi"],
                "bytecode": "0x" + c["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
                "compiler": {"name": "solcjs", "version": version},
                "settings": {k: v for k, v in SETTINGS.items() if k != "outputSelection"},
            }
    return artifacts


def read_sources(directory: Path = CONTRACTS_DIR) -> dict[str, str]:
    """All ``*.sol`` files of ``directory`` as ``{file name: text}``."""
    return {p.name: p.read_text() for p in sorted(directory.glob("*.sol"))}


def render(artifact: dict[str, Any]) -> str:
    """Canonical JSON text of an artifact (sorted keys, 1-space indent, trailing newline)."""
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


def build(directory: Path = CONTRACTS_DIR) -> dict[str, str]:
    """Compile ``directory``'s sources; returns ``{artifact file name: rendered JSON}``."""
    return {f"{name}.json": render(a) for name, a in compile_sources(read_sources(directory)).items()}


def stale_artifacts(directory: Path = CONTRACTS_DIR) -> list[str]:
    """Artifact file names whose committed content differs from a fresh build (or that are missing/extra)."""
    fresh = build(directory)
    out_dir = directory / "artifacts"
    committed = {p.name: p.read_text() for p in out_dir.glob("*.json")} if out_dir.exists() else {}
    return sorted(n for n in set(fresh) | set(committed) if fresh.get(n) != committed.get(n))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.build", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when committed artifacts are stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_artifacts()
        if stale:
            print("stale artifacts (run `python -m contracts.build`): " + ", ".join(stale), file=sys.stderr)
            return 1
        print("artifacts up to date", file=sys.stderr)
        return 0
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    for name, text in build().items():
        (ARTIFACTS_DIR / name).write_text(text)
        print(f"wrote contracts/artifacts/{name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
