"""``python -m market.exchange.service``: run the exchange service (the CLI's ``raymarket exchange serve``
is the user-facing entry; this one needs nothing but the package, for tests and systemd)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from market.exchange.service.app import serve
from market.exchange.service.config import ServiceConfig
from market.settings import Settings


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m market.exchange.service", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--database-url", default=None, help="SQLAlchemy URL (default: SQLite under the data dir)")
    p.add_argument("--rpc-url", default=None, help="JSON-RPC chain node (default: an in-process EVM)")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--contract", default=None, help="Settlement contract address (default: remembered/deploy)")
    p.add_argument("--dev", action="store_true", help="development exchange: enables the faucet")
    p.add_argument("--lease-s", type=float, default=None)
    p.add_argument("--round-interval-s", type=float, default=None)
    p.add_argument("--settlement-window-s", type=float, default=None)
    p.add_argument("--max-attempts", type=int, default=None)
    p.add_argument("--challenge-interval-s", type=float, default=None,
                   help="seconds between two timed speed challenges of a provider (default 300; 0 = no challenges)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, build the settings and serve."""
    a = _args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    given = {"database_url": a.database_url, "rpc_url": a.rpc_url, "data_dir": a.data_dir,
             "settlement_window_s": a.settlement_window_s, "max_attempts": a.max_attempts,
             "challenge_interval_s": a.challenge_interval_s}
    settings = Settings(**{k: v for k, v in given.items() if v is not None})
    config = ServiceConfig.from_settings(settings, lease_s=a.lease_s, round_interval_s=a.round_interval_s,
                                         dev=a.dev or None, contract=a.contract)
    serve(settings, a.host, a.port, config)


if __name__ == "__main__":
    main()
