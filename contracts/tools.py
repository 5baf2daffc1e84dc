"""Locate the external npm tools (anvil, solcjs, snarkjs, circom2) the project drives.

They are installed from the npm registry into ``<repo>/.npm-tools`` by ``.ci/run`` (or by a
user with ``npm install --prefix .npm-tools``); ``$RAYMARKET_NPM_BIN`` points elsewhere.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

NPM_BIN_ENV = "RAYMARKET_NPM_BIN"
_REPO_BIN = Path(__file__).resolve().parent.parent / ".npm-tools" / "node_modules" / ".bin"


class ToolNotFound(RuntimeError):
    """An npm tool is not installed; the message says how to install it."""


def npm_bin(name: str) -> str:
    """Absolute path of the npm-installed executable ``name`` (``anvil``, ``solcjs``, ``snarkjs``, ``circom2``).

    Looks in ``$RAYMARKET_NPM_BIN``, then ``<repo>/.npm-tools/node_modules/.bin``, then ``$PATH``.

    Raises:
        ToolNotFound: when it is in none of them.
    """
    candidates = []
    if os.environ.get(NPM_BIN_ENV):
        candidates.append(Path(os.environ[NPM_BIN_ENV]) / name)
    candidates.append(_REPO_BIN / name)
    for path in candidates:
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if found:
        return found
    raise ToolNotFound(
        f"{name!r} not found in ${NPM_BIN_ENV} or {_REPO_BIN}; install the tools with "
        f"`npm install --prefix .npm-tools` from the repository root"
    )


def npm_modules_dir() -> Path:
    """The ``node_modules`` directory holding circomlib etc. (beside the tool binaries)."""
    if os.environ.get(NPM_BIN_ENV):
        return Path(os.environ[NPM_BIN_ENV]).parent
    return _REPO_BIN.parent
