"""The provider's signing key (secp256k1): an eth-account encrypted v3 keystore (scrypt by default).

The key signs EIP-712 requests to the exchange (``market.protocol``) and attestations of results
(``contracts.attestation``); its address is the provider's identity. It lives only in the agent process:
never in a Ray actor, object or task argument.

Password sources, first that is set wins: the ``password`` argument, ``password_file`` (first line),
the ``RAYMARKET_PASSWORD`` environment variable, an interactive prompt (when allowed).

The older helpers (:func:`load_or_create_key`, :func:`new_key`, :func:`address_of`) stay for tests and
the in-process demo; a raw 0600 key file is not how a provider keeps its key.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from providers.errors import KeystoreError, ProviderError

#: Environment variable holding the keystore password (for unattended agents: prefer a 0600 password file).
PASSWORD_ENV = "RAYMARKET_PASSWORD"


class KeyFileError(ProviderError, ValueError):
    """The key file is unreadable or does not hold a 32-byte hex private key."""


def read_password(password: str | None = None, password_file: Path | str | None = None, *,
                  prompt: bool = False, confirm: bool = False) -> str:
    """The keystore password from the first source that is set (see the module docstring).

    Raises:
        KeystoreError: no source set and ``prompt`` is False, or the password file is unreadable.
    """
    if password is not None:
        return password
    if password_file is not None:
        try:
            return Path(password_file).read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError) as exc:
            raise KeystoreError(password_file, f"cannot read the password file ({exc})") from None
    env = os.environ.get(PASSWORD_ENV)
    if env is not None:
        return env
    if prompt:
        first = getpass.getpass("keystore password: ")
        if confirm and getpass.getpass("again: ") != first:
            raise KeystoreError("<prompt>", "the passwords differ")
        return first
    raise KeystoreError("<password>", f"no password: pass --password-file, or set {PASSWORD_ENV}")


def create_keystore(path: Path | str, password: str, private_key: str | bytes | None = None, *,
                    kdf: str = "scrypt", iterations: int | None = None) -> str:
    """Write a new v3 keystore (mode 0600) for ``private_key`` (a fresh random key when None).

    Args:
        kdf, iterations: eth-account's ``Account.encrypt`` options (scrypt with its default cost when None;
            tests may pass ``kdf="pbkdf2", iterations=1000`` to stay fast).
    Returns:
        the account's checksummed address.
    Raises:
        KeystoreError: ``path`` exists already (never overwritten).
    """
    path = Path(path)
    key = private_key if private_key is not None else "0x" + secrets.token_hex(32)
    blob = Account.encrypt(key, password, kdf=kdf, iterations=iterations)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeystoreError(path, "exists already; keystores are never overwritten") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(blob, fh)
    return Account.from_key(key).address


def keystore_address(path: Path | str) -> str:
    """The checksummed address recorded in keystore ``path`` (no password needed).

    Raises:
        KeystoreError: not a readable v3 keystore with an address.
    """
    blob = _read(Path(path))
    try:
        return _checksum(blob["address"])
    except (KeyError, ValueError, TypeError):
        raise KeystoreError(path, "keystore has no valid address field") from None


def load_keystore(path: Path | str, password: str) -> LocalAccount:
    """Decrypt keystore ``path`` into an eth-account ``LocalAccount`` (kept in this process only).

    Raises:
        KeystoreError: unreadable, not a v3 keystore, or wrong password.
    """
    path = Path(path)
    blob = _read(path)
    try:
        key = Account.decrypt(blob, password)
    except ValueError as exc:
        raise KeystoreError(path, f"cannot decrypt ({exc}); wrong password?") from None
    return Account.from_key(key)


def _read(path: Path) -> dict[str, Any]:
    try:
        blob = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeystoreError(path, "no such keystore; create one with `raymarket account new`") from None
    except (OSError, ValueError) as exc:
        raise KeystoreError(path, f"not a JSON keystore ({exc})") from None
    if not isinstance(blob, dict) or "crypto" not in blob and "Crypto" not in blob:
        raise KeystoreError(path, "not an eth v3 keystore (no crypto section)")
    return blob


def _checksum(addr: str) -> str:
    return to_checksum_address(addr if addr.startswith("0x") else "0x" + addr)


def load_or_create_key(path: Path) -> str:
    """Return the 0x-hex private key stored at ``path``, creating it (mode 0600) if absent (tests, demo).

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
