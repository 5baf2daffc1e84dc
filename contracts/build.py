"""Compile every ``contracts/*.sol`` with the npm ``solcjs`` (standard JSON) into ``contracts/artifacts``.

Each artifact ``contracts/artifacts/<Name>.json`` holds ``abi``, ``bytecode`` (creation code, 0x-hex),
``deployedBytecode``, the compiler version and the settings, so that a reader can rebuild and compare.

Usage::

    python -m contracts.build           # rebuild the artifacts
    python -m contracts.build --check   # exit 1 when the committed artifacts differ from a fresh build

Settings: optimizer on (200 runs), ``evmVersion: "prague"`` (py-evm, the in-process EVM, stops at Prague;
solc 0.8.37 defaults to Osaka; see FIELD-NOTES).

Imports: ``@openzeppelin/contracts/...`` (npm ``@openzeppelin/contracts`` 5.x, pinned in
``.npm-tools/package-lock.json``) is remapped to ``.npm-tools/node_modules/@openzeppelin/contracts``; relative
imports resolve against the importing file. The build reads every imported file itself and hands solc the
whole closure as standard-JSON ``sources`` (source unit names = the import paths), so solcjs needs no file
system callback. Only the project's own contracts get artifacts.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import re
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from contracts.tools import npm_bin, npm_modules_dir

CONTRACTS_DIR = Path(__file__).resolve().parent
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"

SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "prague",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


#: Import prefix -> npm package directory name under node_modules (solc ``remappings`` done by the build).
REMAPPINGS: dict[str, str] = {"@openzeppelin/contracts/": "@openzeppelin/contracts/"}
_IMPORT = re.compile(r"""^\s*import\s+(?:[^"';]*?\s+from\s+)?["']([^"']+)["']\s*;""", re.M)


class BuildError(RuntimeError):
    """solcjs failed or reported errors; ``errors`` holds solc's formatted messages."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("solc failed:\n" + "\n".join(errors))
        self.errors = errors


def _solcjs() -> str:
    return npm_bin("solcjs")


def _resolve(importer: str, path: str) -> str:
    """Source unit name of ``import "path"`` written in source unit ``importer``."""
    if path.startswith(("./", "../")):
        return posixpath.normpath(posixpath.join(posixpath.dirname(importer), path))
    return path


def _read_import(unit: str, local: dict[str, str]) -> str:
    if unit in local:
        return local[unit]
    for prefix, package in REMAPPINGS.items():
        if unit.startswith(prefix):
            file = npm_modules_dir() / package / unit[len(prefix):]
            if not file.exists():
                raise BuildError([f"import {unit!r}: {file} missing; run `npm ci --prefix .npm-tools`"])
            return file.read_text()
    raise BuildError([f"import {unit!r}: not a project file and no remapping matches it"])


def with_imports(sources: dict[str, str]) -> dict[str, str]:
    """``sources`` plus every file they import, transitively (``{source unit name: text}``).

    Raises:
        BuildError: an import that is neither one of ``sources`` nor under a :data:`REMAPPINGS` prefix,
            or a remapped file that is not installed.
    """
    closure = dict(sources)
    todo = list(sources)
    while todo:
        unit = todo.pop()
        for path in _IMPORT.findall(closure[unit]):
            dep = _resolve(unit, path)
            if dep not in closure:
                closure[dep] = _read_import(dep, sources)
                todo.append(dep)
    return closure


@lru_cache(maxsize=1)
def solc_version() -> str:
    """The solcjs compiler version string, e.g. ``0.8.37+commit.f401782d.Emscripten.clang``."""
    out = subprocess.run([_solcjs(), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def library_versions() -> dict[str, str]:
    """Installed versions of the remapped npm libraries, e.g. ``{"@openzeppelin/contracts": "5.7.0"}``."""
    out = {}
    for package in sorted(set(REMAPPINGS.values())):
        meta = npm_modules_dir() / package / "package.json"
        out[package.rstrip("/")] = json.loads(meta.read_text())["version"] if meta.exists() else "missing"
    return out


def compile_sources(sources: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Compile Solidity sources (``{file name: source text}``) with solcjs standard JSON.

    Imports (OpenZeppelin, sibling files) are added with :func:`with_imports`.
    Returns:
        ``{contract name: artifact dict}`` for every contract, interface or library of ``sources`` (not of the
        imported libraries).
    Raises:
        BuildError: on any solc error (warnings are ignored).
    """
    request = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sorted(with_imports(sources).items())},
        "settings": SETTINGS,
    }
    # solcjs reads stdin with readFileSync(0), which fails with EAGAIN on a pipe that is not ready yet, and exits
    # before a large output to a pipe is flushed (cut at 64 KiB): both ends are regular files instead.
    with tempfile.TemporaryFile("w+") as stdin, tempfile.TemporaryFile("w+") as stdout:
        json.dump(request, stdin)
        stdin.seek(0)
        proc = subprocess.run([_solcjs(), "--standard-json"], stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                              text=True)
        stdout.seek(0)
        text = stdout.read()
    try:
        output = json.loads(text[text.index("{"):])  # solcjs may print a notice line before the JSON
    except ValueError as exc:
        raise BuildError([text[:2000], proc.stderr]) from exc
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    if errors or proc.returncode != 0:
        raise BuildError(errors or [proc.stderr])
    version = solc_version()
    artifacts: dict[str, dict[str, Any]] = {}
    for source_name, contracts in sorted(output["contracts"].items()):
        if source_name not in sources:
            continue  # an imported library file (OpenZeppelin)
        for name, c in sorted(contracts.items()):
            artifacts[name] = {
                "contractName": name,
                "sourceName": source_name,
                "abi": c["abi"],
                "bytecode": "0x" + c["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
                "compiler": {"name": "solcjs", "version": version},
                "libraries": library_versions(),
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
