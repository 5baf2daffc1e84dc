"""Settings: one typed object, built once at the edge (``cli.py``) and passed down.

Sources, highest first (pydantic-settings):

1. explicit values (CLI flags, keyword arguments) -- ``None`` means "not given";
2. the environment, ``RAYMARKET_<FIELD>`` (``RAYMARKET_DATABASE_URL``, ``RAYMARKET_EXCHANGE_URL``, ...);
   the data dir itself is ``RAYMARKET_HOME``;
3. the config file ``<data_dir>/config.toml`` (top-level keys named like the fields; ``raymarket dev up``
   writes ``exchange_url``, ``contract``, ``chain_id``, ``keystore`` there);
4. the defaults below.

Nothing is read at import. Units are in the names: ``_s`` seconds, ``_wei`` wei, ``_bps`` basis points.
The data dir comes from :func:`market.paths.default_data_dir`, the project's one resolver: every
default path (the SQLite ledger, keys, results, the pipeline's provenance) is under it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from market.core.policy import UNBONDING_PERIOD_S
from market.paths import HOME_ENV, default_data_dir
from proving.errors import RaymarketError

#: Name of the config file inside the data directory.
CONFIG_FILE = "config.toml"
#: The Vault's longest unbonding period (``Vault.MAX_UNBONDING_PERIOD``), seconds.
MAX_UNBONDING_PERIOD_S = 365 * 24 * 3600


class SettingsError(RaymarketError, ValueError):
    """A setting is missing, malformed or out of range; the message names it and the fix."""


def config_path(data_dir: Path | None = None) -> Path:
    """``<data_dir>/config.toml`` (``data_dir`` defaults to :func:`default_data_dir`)."""
    return (data_dir or default_data_dir()) / CONFIG_FILE


def read_config(data_dir: Path | None = None) -> dict[str, Any]:
    """The config file's contents (``{}`` when there is none).

    Raises:
        SettingsError: the file is not valid TOML.
    """
    path = config_path(data_dir)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML ({exc}); fix or delete it") from None


def update_config(changes: dict[str, Any], data_dir: Path | None = None) -> Path:
    """Merge ``changes`` into the config file (a ``None`` value removes the key); write it atomically.

    Values must be TOML-able (str, int, float, bool, lists, dicts; ``Path`` is written as str).

    Returns:
        the config file's path.
    """
    path = config_path(data_dir)
    doc = read_config(data_dir)
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = _tomlable(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(doc), encoding="utf-8")
    tmp.replace(path)
    return path


def _tomlable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _tomlable(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_tomlable(v) for v in value]
    return value


class _ConfigFileSource(PydanticBaseSettingsSource):
    """``<data_dir>/config.toml``, where ``data_dir`` comes from the explicit values or ``$RAYMARKET_HOME``."""

    def __init__(self, settings_cls: type[BaseSettings], init: InitSettingsSource) -> None:
        super().__init__(settings_cls)
        given = init.init_kwargs.get("data_dir")
        self.data_dir = Path(given).expanduser() if given else default_data_dir()

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the whole file

    def __call__(self) -> dict[str, Any]:
        doc = read_config(self.data_dir)
        fields = set(self.settings_cls.model_fields) - {"data_dir"}
        return {k: v for k, v in doc.items() if k in fields}


class Settings(BaseSettings):
    """Everything the market needs to run, validated in one place (immutable).

    Attributes:
        data_dir: results, inputs, keys, the config file and the SQLite ledger live here
            (``$RAYMARKET_HOME``; see :func:`default_data_dir`).
        database_url: SQLAlchemy URL; None = ``sqlite:///<data_dir>/ledger.db``.
        rpc_url: an Ethereum JSON-RPC node (anvil); None = the service's in-process EVM.
        ray_address: an existing Ray cluster to join; None = start a local one.
        exchange_url: where clients and provider agents reach the exchange service.
        host, port: where ``raymarket exchange serve`` listens.
        dev: the service accepts development-only requests (the faucet); never in production.
        lease_s: lifetime of an assignment's lease; a heartbeat extends it, an expired one re-auctions.
        heartbeat_s: how often a provider agent heartbeats (must be well below ``lease_s``).
        round_interval_s: seconds between the service's auction rounds.
        contract: the settlement contract's address (remembered by ``dev up``); None = deploy one.
        chain_id: the chain id of ``contract``'s chain, when known.
        keystore: the default client key (an eth-account v3 keystore file); None = the only key in
            ``<data_dir>/keys/``.
        password_file: a file whose first line is that keystore's password (``dev up`` writes one for its
            development account; for a real key prefer the prompt or ``$RAYMARKET_PASSWORD``).
        fee_bps: protocol fee on each payment, basis points.
        job_timeout_s: how long a provider may take on one job before it is re-auctioned.
        max_attempts: auctions per job before it fails.
        settlement_batch_size: attestations per on-chain batch at most.
        settlement_window_s: a batch closes at the end of its deterministic time window, seconds.
        confirmations: blocks the watcher waits before it trusts an event.
        matching_rule: ``pay-as-bid`` | ``second-price`` (see ``market.core.pricing``).
        epoch_interval_s: seconds between the service's settlement epochs (earnings swept to claimable, final
            slashes carried out on chain, the cumulative claim root posted to the Vault); > 0.
        unbonding_period_s: seconds between ``Vault.requestUnstake`` and ``withdrawStake`` (on-chain time), used
            when the service deploys a new Vault; stake stays slashable until then. In ``[1, 365 days]`` (the
            Vault's own bounds); default 7 days (:data:`market.core.policy.UNBONDING_PERIOD_S`).
        challenge_interval_s: seconds between two timed speed challenges of one provider
            (``market.exchange.service.challenges``, issue 14 finding 10); 0 turns them off. Default 300.

    Raises:
        pydantic.ValidationError (a ``ValueError``) from the constructor; :meth:`load` raises
        :class:`SettingsError` instead, naming the field and its source.
    """

    model_config = SettingsConfigDict(env_prefix="RAYMARKET_", frozen=True, extra="ignore",
                                      populate_by_name=True)

    data_dir: Path = Field(default_factory=default_data_dir,
                           validation_alias=AliasChoices("data_dir", HOME_ENV))
    database_url: str | None = None
    rpc_url: str | None = None
    ray_address: str | None = None
    exchange_url: str = "http://127.0.0.1:8765"
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    dev: bool = False
    lease_s: float = Field(30.0, gt=0)
    heartbeat_s: float = Field(5.0, gt=0)
    round_interval_s: float = Field(0.5, gt=0)
    contract: str | None = None
    chain_id: int | None = None
    keystore: Path | None = None
    password_file: Path | None = None
    fee_bps: int = Field(100, ge=0, le=10_000)
    job_timeout_s: float = Field(600.0, gt=0)
    max_attempts: int = Field(3, ge=1)
    settlement_batch_size: int = Field(256, ge=1)
    settlement_window_s: float = Field(30.0, gt=0)
    confirmations: int = Field(0, ge=0)
    matching_rule: Literal["pay-as-bid", "second-price"] = "pay-as-bid"
    epoch_interval_s: float = Field(10.0, gt=0)
    unbonding_period_s: int = Field(UNBONDING_PERIOD_S, gt=0, le=MAX_UNBONDING_PERIOD_S)
    challenge_interval_s: float = Field(300.0, ge=0)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        assert isinstance(init_settings, InitSettingsSource)
        return init_settings, env_settings, _ConfigFileSource(settings_cls, init_settings)

    @field_validator("data_dir", "keystore", "password_file", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @field_validator("exchange_url", mode="after")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    @field_validator("database_url", mode="after")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        """SQLite or Postgres URLs only (the message never repeats the URL: it may hold a password)."""
        if value is None:
            return None
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme.split("+", 1)[0] not in ("sqlite", "postgresql", "postgres"):
            shown = f"scheme {scheme!r}" if scheme else "no scheme"
            raise ValueError(f"must be sqlite:///PATH or postgresql://USER@HOST/DB (SQLite and Postgres are the "
                             f"supported databases), got {shown}")
        return value

    @model_validator(mode="after")
    def _heartbeat_below_lease(self) -> "Settings":
        if self.heartbeat_s >= self.lease_s:
            raise ValueError(f"heartbeat_s ({self.heartbeat_s}) must be below lease_s ({self.lease_s})")
        return self

    @classmethod
    def load(cls, **given: Any) -> "Settings":
        """Build the settings from ``given`` (``None`` values are "not given"), the environment and the config.

        Raises:
            SettingsError: a value is invalid (the message names the field and where to fix it).
        """
        explicit = {k: v for k, v in given.items() if v is not None}
        try:
            return cls(**explicit)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = ".".join(str(p) for p in first["loc"]) or "settings"
            where = (f"the --{name.replace('_', '-')} flag, ${'RAYMARKET_' + name.upper()} or "
                     f"{config_path(explicit.get('data_dir'))}")
            raise SettingsError(f"{name}: {first['msg']} (set by {where})") from None

    def with_(self, **changes: Any) -> "Settings":
        """A copy with ``changes`` applied (validated again)."""
        return type(self)(**{**self.model_dump(), **changes})

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``sqlite:///<data_dir>/ledger.db`` (the directory is created)."""
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.data_dir / 'ledger.db'}"

    @property
    def config_file(self) -> Path:
        """``<data_dir>/config.toml``."""
        return self.data_dir / CONFIG_FILE

    @property
    def keys_dir(self) -> Path:
        """Where ``raymarket account`` keeps v3 keystores (``<data_dir>/keys``)."""
        return self.data_dir / "keys"

    @property
    def results_dir(self) -> Path:
        """Where job results are written (``<data_dir>/results``)."""
        return self.data_dir / "results"

    @property
    def inputs_dir(self) -> Path:
        """Where submitted inputs are kept, immutable, by job id (``<data_dir>/inputs``)."""
        return self.data_dir / "inputs"

    @property
    def pipeline_dir(self) -> Path:
        """The proving pipeline's provenance and metrics (``<data_dir>/pipeline``)."""
        return self.data_dir / "pipeline"
