"""The one error handler and exit-code table (CliRunner on the real root app and on a small one)."""

from __future__ import annotations

import json

import httpx
import pytest
import typer
from typer.testing import CliRunner

import cli
from market.cli.errors import ERROR_MAP, HandledGroup, classify
from market.cli.exit_codes import ExitCode
from market.exchange.steps import UnknownJob
from market.ledger.errors import InsufficientFunds, LedgerError
from market.settings import SettingsError
from proving.errors import PairingCheckFailed, RaymarketError


class SomeAreaError(RaymarketError):
    """An error root added later by some package: mapped through the project root."""


def test_exit_codes_are_distinct():
    assert len({int(c) for c in ExitCode}) == len(ExitCode)
    assert (ExitCode.OK, ExitCode.CHECK_FAILED, ExitCode.USAGE) == (0, 1, 2)


@pytest.mark.parametrize("exc,code", [
    (InsufficientFunds("client:a", 10, 3), ExitCode.INSUFFICIENT_FUNDS),
    (UnknownJob("j-1"), ExitCode.NOT_FOUND),
    (LedgerError("x"), ExitCode.BAD_INPUT),
    (SettingsError("port: bad"), ExitCode.BAD_INPUT),
    (SomeAreaError("y"), ExitCode.BAD_INPUT),
    (PairingCheckFailed(), ExitCode.BAD_INPUT),
    (httpx.ConnectError("refused"), ExitCode.UNREACHABLE),
    (FileNotFoundError("nope.txt"), ExitCode.NOT_FOUND),
    (ZeroDivisionError("bug"), ExitCode.INTERNAL),
])
def test_classify(exc, code):
    assert classify(exc)[0] == code


def test_every_map_entry_is_reachable():
    """No entry is shadowed by an earlier, broader one."""
    for i, (etype, _, _) in enumerate(ERROR_MAP):
        for earlier, _, _ in ERROR_MAP[:i]:
            assert not issubclass(etype, earlier), f"{etype.__name__} is shadowed by {earlier.__name__}"


def _app(exc: BaseException) -> typer.Typer:
    app = typer.Typer(cls=HandledGroup)

    @app.command()
    def boom() -> None:
        raise exc

    @app.command()
    def ok() -> None:
        typer.echo("fine")

    return app


def test_handler_prints_one_line_and_hint_never_a_traceback(monkeypatch):
    monkeypatch.delenv("RAYMARKET_DEBUG", raising=False)
    res = CliRunner().invoke(_app(InsufficientFunds("client:a", 10, 3)), ["boom"])
    assert res.exit_code == ExitCode.INSUFFICIENT_FUNDS
    assert "error (InsufficientFunds)" in res.stderr and "hint:" in res.stderr and "Traceback" not in res.stderr
    res = CliRunner().invoke(_app(ZeroDivisionError("division by zero")), ["boom"])
    assert res.exit_code == ExitCode.INTERNAL and "internal error" in res.stderr and "RAYMARKET_DEBUG" in res.stderr
    assert "Traceback" not in res.stderr
    monkeypatch.setenv("RAYMARKET_DEBUG", "1")
    res = CliRunner().invoke(_app(ZeroDivisionError("division by zero")), ["boom"])
    assert "Traceback" in res.stderr


def test_markup_in_messages_is_printed_verbatim():
    res = CliRunner().invoke(_app(RaymarketError("bad value [red]x[/red]")), ["boom"])
    assert "[red]x[/red]" in res.stderr


def test_version_and_explicit_mounts():
    res = CliRunner().invoke(cli.app, ["--version"])
    assert res.exit_code == 0 and res.stdout.startswith("raymarket ")
    names = {c.name or c.callback.__name__ for c in cli.app.registered_commands}
    groups = {g.name for g in cli.app.registered_groups}
    assert {"watch", "prove", "verify", "export-verifier"} <= names
    assert {"db", "ledger", "settlement", "pipeline", "provider"} <= groups


def test_settings_error_from_the_environment_is_a_clean_exit(tmp_path, monkeypatch):
    monkeypatch.setenv("RAYMARKET_HOME", str(tmp_path))
    monkeypatch.setenv("RAYMARKET_FEE_BPS", "-1")
    res = CliRunner().invoke(cli.app, ["ledger", "balances", "--json"])
    assert res.exit_code == ExitCode.BAD_INPUT and "fee_bps" in res.stderr, res.output


def test_ledger_check_json(tmp_path, monkeypatch):
    monkeypatch.setenv("RAYMARKET_HOME", str(tmp_path))
    res = CliRunner().invoke(cli.app, ["ledger", "check", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout) == {"ok": True, "violations": []}


def test_typer_exit_passes_through():
    res = CliRunner().invoke(_app(typer.Exit(4)), ["boom"])
    assert res.exit_code == 4 and "internal error" not in res.stderr
