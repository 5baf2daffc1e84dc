"""Provider keystores: eth-account v3 (encrypted), 0600, never overwritten, password sources in order."""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from providers.errors import KeystoreError
from providers.keys import PASSWORD_ENV, create_keystore, keystore_address, load_keystore, read_password


def test_create_load_round_trip(tmp_path):
    key = "0x" + "11" * 32
    path = tmp_path / "k.json"
    addr = create_keystore(path, "pw", key, kdf="pbkdf2", iterations=1000)
    assert addr == Account.from_key(key).address == keystore_address(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert "11" * 32 not in path.read_text()  # encrypted, not the raw key
    assert json.loads(path.read_text())["version"] == 3
    assert load_keystore(path, "pw").key.hex().removeprefix("0x") == "11" * 32


def test_refusals(tmp_path):
    path = tmp_path / "k.json"
    create_keystore(path, "pw", kdf="pbkdf2", iterations=1000)
    with pytest.raises(KeystoreError, match="wrong password"):
        load_keystore(path, "not-pw")
    with pytest.raises(KeystoreError, match="never overwritten"):
        create_keystore(path, "pw", kdf="pbkdf2", iterations=1000)
    with pytest.raises(KeystoreError, match="no such keystore"):
        load_keystore(tmp_path / "missing.json", "pw")
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(KeystoreError, match="not an eth v3 keystore"):
        load_keystore(tmp_path / "junk.json", "pw")


def test_password_sources(tmp_path, monkeypatch):
    pw_file = tmp_path / "pw"
    pw_file.write_text("from-file\nignored\n")
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    assert read_password("given", pw_file) == "given"
    assert read_password(None, pw_file) == "from-file"
    assert read_password() == "from-env"
    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(KeystoreError, match="no password"):
        read_password()
