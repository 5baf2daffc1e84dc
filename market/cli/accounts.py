"""``raymarket account new | import | list``, and how every client command finds its signing key.

Keys are eth-account encrypted v3 keystores (scrypt by default; the same format as the provider
agent's ``--key``) under ``<data_dir>/keys/<name>.json``, mode 0600, never overwritten. A party is
its address. The password comes from ``--password-file`` (first line), else ``$RAYMARKET_PASSWORD``,
else ``password_file`` in config.toml (written by ``raymarket dev up`` for its development account
only), else an interactive prompt.

Which key a command signs with (:func:`resolve_keystore`): ``--key`` (a path or a name in the keys
dir), else ``keystore`` in the settings (``RAYMARKET_KEYSTORE`` / config.toml), else the only
keystore in the keys dir.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from rich.table import Table

from market.cli.common import DataDir, JsonOut, PasswordFile, emit, settings
from market.settings import Settings
from proving.errors import RaymarketError

#: Environment variable holding a keystore password (for scripts; prefer --password-file).
PASSWORD_ENV = "RAYMARKET_PASSWORD"

account_app = typer.Typer(help="Your keys: eth-account v3 keystores under <data-dir>/keys.", no_args_is_help=True)

KeyOpt = Annotated[Optional[str], typer.Option(
    "--key", help="Keystore to sign with: a path or a name in <data-dir>/keys (default: `keystore` in "
                  "config.toml, else the only key there).", show_default=False)]
NameOpt = Annotated[Optional[str], typer.Option("--name", help="File name in <data-dir>/keys (default: the address).")]


class KeystoreError(RaymarketError):
    """A keystore is missing, unreadable, or its password is wrong; the message names the file and the fix."""


def read_password(password_file: Path | None, s: Settings, *, confirm: bool = False) -> str:
    """The password from the first source that is set (see the module docstring).

    Raises:
        KeystoreError: no source and no terminal to prompt on, or an unreadable password file.
    """
    path = password_file or s.password_file
    if password_file is None and os.environ.get(PASSWORD_ENV) is not None:
        return os.environ[PASSWORD_ENV]
    if path is not None:
        try:
            return Path(path).read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError) as exc:
            raise KeystoreError(f"cannot read the password file {path} ({exc})") from None
    if not sys.stdin.isatty():
        raise KeystoreError(f"no password: pass --password-file, or set {PASSWORD_ENV}")
    first = getpass.getpass("keystore password: ")
    if confirm and getpass.getpass("again: ") != first:
        raise KeystoreError("the passwords differ")
    return first


def write_keystore(path: Path, private_key: str, password: str, *, kdf: str = "scrypt",
                   iterations: int | None = None) -> str:
    """Write a v3 keystore for ``private_key`` at ``path`` (mode 0600, never overwriting); return the address.

    Raises:
        KeystoreError: ``path`` exists.
    """
    blob = Account.encrypt(private_key, password, kdf=kdf, iterations=iterations)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeystoreError(f"{path} exists already; keystores are never overwritten (choose another --name)") \
            from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(blob, fh)
    return Account.from_key(private_key).address


def keystore_address(path: Path) -> str:
    """The checksummed address recorded in the keystore (no password needed).

    Raises:
        KeystoreError: not a readable v3 keystore with an address.
    """
    try:
        blob = json.loads(path.read_text(encoding="utf-8"))
        addr = blob["address"]
        return to_checksum_address(addr if addr.startswith("0x") else "0x" + addr)
    except FileNotFoundError:
        raise KeystoreError(f"no keystore {path}; create one with `raymarket account new`") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeystoreError(f"{path} is not a v3 keystore with an address ({exc})") from None


def resolve_keystore(key: str | None, s: Settings) -> Path:
    """The keystore a command signs with (see the module docstring).

    Raises:
        KeystoreError: none found, or several and none chosen.
    """
    if key is not None:
        path = Path(key).expanduser()
        named = s.keys_dir / f"{key}.json"
        if not path.is_file() and named.is_file():
            path = named
        if not path.is_file():
            raise KeystoreError(f"no keystore {key!r} (neither a file nor a name in {s.keys_dir}); "
                                f"see `raymarket account list`")
        return path
    if s.keystore is not None:
        return s.keystore
    found = sorted(s.keys_dir.glob("*.json"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise KeystoreError(f"no key in {s.keys_dir}: create one with `raymarket account new` "
                            f"(or start a development market with `raymarket dev up`)")
    raise KeystoreError(f"{len(found)} keys in {s.keys_dir}: choose one with --key NAME (`raymarket account list`)")


def load_account(key: str | None, password_file: Path | None, s: Settings) -> LocalAccount:
    """Decrypt the command's keystore (:func:`resolve_keystore`) into an account kept in this process.

    Raises:
        KeystoreError: no keystore, unreadable, or wrong password.
    """
    path = resolve_keystore(key, s)
    keystore_address(path)  # a clear error for a file that is not a keystore
    password = read_password(password_file, s)
    try:
        return Account.from_key(Account.decrypt(json.loads(path.read_text(encoding="utf-8")), password))
    except ValueError as exc:
        raise KeystoreError(f"cannot decrypt {path} ({exc}); wrong password?") from None


def _key_path(s: Settings, name: str | None, address: str) -> Path:
    return s.keys_dir / f"{name or address}.json"


@account_app.command("new")
def account_new(name: NameOpt = None, password_file: PasswordFile = None, data_dir: DataDir = None,
                as_json: JsonOut = False) -> None:
    """Create a new key (a fresh random secp256k1 key) in an encrypted keystore; print its address."""
    s = settings(data_dir=data_dir)
    key = "0x" + secrets.token_hex(32)
    address = Account.from_key(key).address
    path = _key_path(s, name, address)
    write_keystore(path, key, read_password(password_file, s, confirm=True))
    emit({"address": address, "keystore": str(path)}, as_json, f"{address}  {path}")


@account_app.command("import")
def account_import(
    private_key_file: Annotated[Optional[Path], typer.Option(
        "--private-key-file", help="File holding the 0x-hex private key (default: read it from a prompt).")] = None,
    name: NameOpt = None, password_file: PasswordFile = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Import an existing private key into an encrypted keystore; print its address."""
    s = settings(data_dir=data_dir)
    if private_key_file is not None:
        raw = private_key_file.read_text(encoding="utf-8").strip()
    elif sys.stdin.isatty():
        raw = getpass.getpass("private key (0x-hex): ").strip()
    else:
        raw = sys.stdin.readline().strip()
    try:
        address = Account.from_key(raw).address
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(f"not a 32-byte hex private key ({type(exc).__name__})",
                                 param_hint="--private-key-file") from None
    path = _key_path(s, name, address)
    write_keystore(path, raw, read_password(password_file, s, confirm=True))
    emit({"address": address, "keystore": str(path)}, as_json, f"{address}  {path}")


def list_accounts(s: Settings) -> list[dict[str, Any]]:
    """``[{"name", "address", "keystore", "default"}]`` of the keystores in the keys dir."""
    try:
        default = resolve_keystore(None, s)
    except KeystoreError:
        default = None
    rows = []
    for path in sorted(s.keys_dir.glob("*.json")):
        try:
            address = keystore_address(path)
        except KeystoreError:
            continue
        rows.append({"name": path.stem, "address": address, "keystore": str(path), "default": path == default})
    return rows


@account_app.command("list")
def account_list(data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """List your keys (name, address, keystore file; * marks the default one)."""
    s = settings(data_dir=data_dir)
    rows = list_accounts(s)
    table = Table(title=f"keys in {s.keys_dir}")
    for col in ("", "name", "address", "keystore"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row("*" if r["default"] else "", r["name"], r["address"], r["keystore"])
    emit(rows, as_json, table if rows else f"no keys in {s.keys_dir}: `raymarket account new` creates one")
