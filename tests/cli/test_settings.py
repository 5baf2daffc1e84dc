"""Settings: flags > RAYMARKET_* environment > <data_dir>/config.toml > defaults; one data-dir resolver."""

from __future__ import annotations

from pathlib import Path

import pytest

from market.db.base import default_sqlite_url
from market.paths import default_data_dir
from market.settings import Settings, SettingsError, read_config, update_config


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    for key in [k for k in __import__("os").environ if k.startswith("RAYMARKET_")]:
        monkeypatch.delenv(key)
    home = tmp_path / "home"
    monkeypatch.setenv("RAYMARKET_HOME", str(home))
    return home


def test_data_dir_from_raymarket_home_everywhere(home):
    assert default_data_dir() == home
    assert Settings().data_dir == home
    assert default_sqlite_url() == f"sqlite:///{home / 'ledger.db'}"
    assert Settings().resolved_database_url == default_sqlite_url()
    assert Settings().pipeline_dir == home / "pipeline" and Settings().keys_dir == home / "keys"


def test_data_dir_default_is_the_user_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("RAYMARKET_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "raymarket"


def test_precedence_flag_over_env_over_config_over_default(home, monkeypatch):
    assert Settings.load().port == 8765  # default
    update_config({"port": 9001, "exchange_url": "http://config:1", "lease_s": 12.5}, home)
    s = Settings.load()
    assert (s.port, s.exchange_url, s.lease_s) == (9001, "http://config:1", 12.5)
    monkeypatch.setenv("RAYMARKET_PORT", "9002")
    assert Settings.load().port == 9002 and Settings.load().exchange_url == "http://config:1"
    assert Settings.load(port=9003, exchange_url=None).port == 9003  # None = flag not given
    assert Settings.load(exchange_url=None).exchange_url == "http://config:1"


def test_config_file_of_an_explicit_data_dir(home, tmp_path):
    other = tmp_path / "other"
    update_config({"contract": "0x" + "ab" * 20, "chain_id": 31337}, other)
    s = Settings.load(data_dir=other)
    assert s.data_dir == other and s.contract == "0x" + "ab" * 20 and s.chain_id == 31337
    assert Settings.load().contract is None  # $RAYMARKET_HOME's config has none


def test_update_config_merges_and_removes(home):
    update_config({"exchange_url": "http://a:1", "dev_up": {"providers": [{"name": "p1", "pid": 12}]}}, home)
    update_config({"contract": "0x1", "exchange_url": None}, home)
    assert read_config(home) == {"dev_up": {"providers": [{"name": "p1", "pid": 12}]}, "contract": "0x1"}
    assert Settings.load().exchange_url == "http://127.0.0.1:8765"  # unknown keys ([dev_up]) are ignored


@pytest.mark.parametrize("given,word", [({"fee_bps": 10_001}, "fee_bps"), ({"matching_rule": "dutch"}, "matching_rule"),
                                        ({"exchange_url": "localhost:1"}, "exchange_url"),
                                        ({"heartbeat_s": 40.0}, "heartbeat_s")])
def test_invalid_values_name_the_field(home, given, word):
    with pytest.raises(SettingsError, match=word):
        Settings.load(**given)


def test_invalid_env_and_config_are_settings_errors(home, monkeypatch):
    monkeypatch.setenv("RAYMARKET_PORT", "not-a-port")
    with pytest.raises(SettingsError, match="RAYMARKET_PORT"):
        Settings.load()
    monkeypatch.delenv("RAYMARKET_PORT")
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("port = [unterminated\n")
    with pytest.raises(SettingsError, match="config.toml"):
        Settings.load()


def test_with_revalidates(home):
    s = Settings.load(job_timeout_s=10.0)
    assert s.with_(max_attempts=5).max_attempts == 5 and s.with_(max_attempts=5).job_timeout_s == 10.0
    with pytest.raises(ValueError):
        s.with_(max_attempts=0)
