"""The provider's signing key (secp256k1): generated once, kept in a 0600 file.

The key signs EIP-712 attestations (``contracts.attestation``); its address is the provider's
identity on the settlement contract.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from eth_account import Account


class KeyFileError(ValueError):
    """The key file is unreadable or does not hold a 32-byte hex private key."""


def load_or_create_key(path: Path) -> str:
    """Return the 0x-hex private key stored at ``path``, creating it (mode 0600) if absent.

    Raises:
        KeyFileError: the file exists but does not hold a 32-byte hex key.
    """
    path = Path(path)
    if path.exists():
        text = path.read_text(encoding="utf-8").strip()
        try:
            Account.from_key(text)
        except Exception as exc:
            raise KeyFileError(f"{path}: not a 32-byte hex private key ({exc}); delete it to generate a new one") from None
        return text
    path.parent.mkdir(parents=True, exist_ok=True)
    key = "0x" + secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    return key


def new_key() -> str:
    """A fresh random 0x-hex private key (kept in memory only)."""
    return "0x" + secrets.token_hex(32)


def address_of(private_key: str) -> str:
    """Checksummed Ethereum address of ``private_key``."""
    return Account.from_key(private_key).address
