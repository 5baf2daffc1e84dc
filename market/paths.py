"""The one data-directory resolver of the project (standard library + platformdirs only).

Every default path -- the SQLite ledger (:func:`market.db.base.default_sqlite_url`), the config file,
keys, results, the pipeline's provenance (:class:`market.settings.Settings`) -- is under
:func:`default_data_dir`, so every command opens the same files. It sits below ``market.db`` so that
the database layer can use it without importing the settings above it.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir

#: Environment variable naming the data directory.
HOME_ENV = "RAYMARKET_HOME"


def default_data_dir() -> Path:
    """``$RAYMARKET_HOME`` (``~`` expanded), else the user's data dir (``~/.local/share/raymarket`` on Linux).

    Read at call time, never at import.
    """
    home = os.environ.get(HOME_ENV)
    return Path(home).expanduser() if home else Path(user_data_dir("raymarket", appauthor=False))
