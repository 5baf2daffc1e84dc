"""Validation and fingerprints shared by every ledger module (pure: no session, no SQL).

Ids are non-empty ``str`` of at most :data:`market.ledger.models.ID_LEN` characters without the
:data:`SEP` control character (arrays travel to Postgres as one ``SEP``-joined text); times are
unix seconds; :func:`op_digest` is the idempotency fingerprint stored with each operation.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from market.ledger.errors import InvalidArgument
from market.ledger.models import ID_LEN

SEP = "\x1f"  # separates array elements sent to Postgres as one text (ids may not contain it)


def check_id(name: str, value: Any) -> str:
    if type(value) is not str or not 0 < len(value) <= ID_LEN or SEP in value:
        raise InvalidArgument(name, value, f"give a non-empty str of at most {ID_LEN} characters "
                                           "(no \\x1f control character)")
    return value


def check_time(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InvalidArgument(name, value, "give seconds as an int or float (unix time)")
    return float(value)


def op_digest(kind: str, *inputs: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``[kind, *inputs]``: the idempotency fingerprint."""
    blob = json.dumps([kind, *inputs], separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
