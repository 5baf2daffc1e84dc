"""``raymarket exchange serve``: the exchange service (FastAPI + uvicorn), the only process that opens
the market's database and holds the operator's settlement key (:mod:`market.exchange.service`)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from market.cli.common import DatabaseUrl, DataDir, RpcUrl, settings
from market.exchange.service.app import serve
from market.exchange.service.config import ServiceConfig

exchange_app = typer.Typer(help="The exchange service.", no_args_is_help=True)


@exchange_app.command("serve")
def serve_cmd(
    host: Annotated[Optional[str], typer.Option("--host", help="Address to listen on (env RAYMARKET_HOST; "
                                                               "default 127.0.0.1).", show_default=False)] = None,
    port: Annotated[Optional[int], typer.Option("--port", min=0, max=65535, help="Port (env RAYMARKET_PORT; "
                                                                                 "default 8765).",
                                                show_default=False)] = None,
    database_url: DatabaseUrl = None, rpc_url: RpcUrl = None, data_dir: DataDir = None,
    contract: Annotated[Optional[str], typer.Option("--contract", help="Settlement contract address (default: "
                                                    "the one remembered in the database, else deploy one).")] = None,
    dev: Annotated[Optional[bool], typer.Option("--dev/--no-dev", help="Development exchange: enables the faucet "
                                                "(never in production).", show_default=False)] = None,
    lease_s: Annotated[Optional[float], typer.Option("--lease-s", min=0.1, help="Lease lifetime, seconds.")] = None,
    round_interval_s: Annotated[Optional[float], typer.Option("--round-interval-s", min=0.01,
                                                              help="Seconds between rounds.")] = None,
    settlement_window_s: Annotated[Optional[float], typer.Option("--settlement-window-s", min=0.1,
                                                                 help="Settlement batch window, seconds.")] = None,
    challenge_interval_s: Annotated[Optional[float], typer.Option(
        "--challenge-interval-s", min=0.0, help="Seconds between two timed speed challenges of a provider "
        "(env RAYMARKET_CHALLENGE_INTERVAL_S; default 300; 0 = no challenges: claimed speeds count, capped at "
        "the reference machine's).", show_default=False)] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn's log level.")] = "info",
) -> None:
    """Run the exchange service until SIGINT/SIGTERM (all state is in the database: restart it at will)."""
    s = settings(host=host, port=port, database_url=database_url, rpc_url=rpc_url, data_dir=data_dir,
                 contract=contract, dev=dev, lease_s=lease_s, round_interval_s=round_interval_s,
                 settlement_window_s=settlement_window_s, challenge_interval_s=challenge_interval_s)
    serve(s, s.host, s.port, ServiceConfig.from_settings(s), log_level=log_level)
