"""The one error handler of the CLI: an exception becomes one line on stderr, a hint and an exit code.

:data:`ERROR_MAP` is matched in order (the first entry whose type the error is an instance of wins):
narrow, well-known errors first, then the package roots (all deriving from
:class:`proving.errors.RaymarketError`), then a few standard-library and driver errors. Anything
else is a bug: ``internal error`` and :attr:`ExitCode.INTERNAL`; ``RAYMARKET_DEBUG=1`` prints the
traceback. :class:`HandledGroup` installs the handler on the root typer app, so ``CliRunner``
tests see exactly what a user sees.
"""

from __future__ import annotations

import functools
import importlib
import os
import traceback
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup
from typer.exceptions import TyperException

from market.cli.common import err
from market.cli.exit_codes import ExitCode

#: ("module:ExceptionClass", exit code, hint) in match order. Resolved on first use (:func:`error_map`): the
#: classes live all over the project, and importing them all made every command's start-up pay for web3,
#: SQLAlchemy and the exchange (seconds); an error is rare, a start-up is every time.
ERROR_TABLE: list[tuple[str, ExitCode, str]] = [
    # narrow errors with a known fix
    ("market.ledger.errors:InsufficientFunds", ExitCode.INSUFFICIENT_FUNDS, "fund the account first (dev: `raymarket dev up` funds one)"),
    ("market.ledger.errors:UnknownAccount", ExitCode.NOT_FOUND, "fund the account first to open it"),
    ("market.exchange.steps:UnknownJob", ExitCode.NOT_FOUND, "list the jobs with `raymarket status`"),
    ("market.exchange.steps:UnknownProvider", ExitCode.NOT_FOUND, "list the providers with `raymarket provider list`"),
    ("market.settlement.batching:UnknownJob", ExitCode.NOT_FOUND, "the job is not settled yet; see `raymarket status JOB`"),
    ("market.pipeline.errors:BatchNotFound", ExitCode.NOT_FOUND, ""),
    ("market.exchange.steps:InvalidJob", ExitCode.BAD_INPUT, ""),
    ("market.core.matching:ReplayMismatch", ExitCode.CHECK_FAILED, ""),
    ("market.pipeline.errors:ProvenanceMismatch", ExitCode.CHECK_FAILED, ""),
    ("market.exchange.verification:ResultRejected", ExitCode.REJECTED, ""),
    ("contracts.errors:ChainUnreachable", ExitCode.UNREACHABLE, "start the node or fix --rpc-url / RAYMARKET_RPC_URL"),
    ("contracts.errors:ContractReverted", ExitCode.REJECTED, ""),
    ("contracts.tools:ToolNotFound", ExitCode.UNAVAILABLE, "install the npm tools: npm ci --prefix .npm-tools"),
    ("proving.errors:BackendUnavailable", ExitCode.UNAVAILABLE, ""),
    ("market.settings:SettingsError", ExitCode.BAD_INPUT, ""),
    # package roots
    ("market.ledger.errors:LedgerError", ExitCode.BAD_INPUT, ""),
    ("market.exchange.steps:ExchangeError", ExitCode.BAD_INPUT, ""),
    ("market.core.orders:MatchingError", ExitCode.BAD_INPUT, ""),
    ("market.settlement.batching:SettlementError", ExitCode.BAD_INPUT, ""),
    ("market.pipeline.errors:PipelineError", ExitCode.BAD_INPUT, ""),
    ("proving.errors:ProvingError", ExitCode.BAD_INPUT, ""),
    ("contracts.errors:ContractsError", ExitCode.REJECTED, ""),
    ("proving.errors:RaymarketError", ExitCode.BAD_INPUT, ""),
    # outside the project
    ("sqlalchemy.exc:OperationalError", ExitCode.UNREACHABLE,
     "check --database-url / RAYMARKET_DATABASE_URL and that the server is up"),
    ("httpx:TransportError", ExitCode.UNREACHABLE,
     "is the exchange running? start one with `raymarket dev up`, or pass --exchange URL"),
    ("builtins:FileNotFoundError", ExitCode.NOT_FOUND, ""),
    ("builtins:PermissionError", ExitCode.BAD_INPUT, ""),
    ("builtins:ConnectionError", ExitCode.UNREACHABLE, "is the service running?"),
]


@functools.cache
def error_map() -> list[tuple[type[BaseException], ExitCode, str]]:
    """:data:`ERROR_TABLE` with the exception classes imported (once)."""
    out = []
    for ref, code, hint in ERROR_TABLE:
        module, _, name = ref.partition(":")
        out.append((getattr(importlib.import_module(module), name), code, hint))
    return out


def __getattr__(name: str) -> object:  # PEP 562: ``ERROR_MAP`` as before, resolved on first use
    if name == "ERROR_MAP":
        return error_map()
    raise AttributeError(name)


#: The exchange's refusal codes (``market.protocol`` error codes and the SDK's own) -> exit code;
#: any other code is :attr:`ExitCode.REJECTED`.
API_CODES: dict[str, ExitCode] = {
    "not_found": ExitCode.NOT_FOUND, "insufficient_funds": ExitCode.INSUFFICIENT_FUNDS,
    "invalid": ExitCode.BAD_INPUT, "too_large": ExitCode.BAD_INPUT, "unreachable": ExitCode.UNREACHABLE,
    "timeout": ExitCode.TIMEOUT, "bad_result": ExitCode.CHECK_FAILED,
}


def classify(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and hint for ``exc`` (:attr:`ExitCode.INTERNAL` and a bug hint when it is unknown)."""
    api_error = importlib.import_module("market.client").ApiError
    if isinstance(exc, api_error):
        return API_CODES.get(exc.code, ExitCode.REJECTED), exc.hint
    for etype, code, hint in error_map():
        if isinstance(exc, etype):
            return code, getattr(exc, "hint", None) or hint
    return ExitCode.INTERNAL, "this is a bug; rerun with RAYMARKET_DEBUG=1 for the traceback and report it"


def report(exc: BaseException) -> ExitCode:
    """Print ``exc`` as one line (plus its hint) on stderr; return its exit code."""
    code, hint = classify(exc)
    api = isinstance(exc, importlib.import_module("market.client").ApiError)
    text = (f"{exc.code}: {exc.message}" if api else str(exc)).strip()  # type: ignore[attr-defined]
    first = text.splitlines()[0] if text else type(exc).__name__
    label = "internal error" if code == ExitCode.INTERNAL else "error"
    err.print(f"[red]{label}[/red] ({type(exc).__name__}): {escape(first)}"
              + (f"\n  hint: {escape(hint)}" if hint else ""))
    if os.environ.get("RAYMARKET_DEBUG"):
        err.print("".join(traceback.format_exception(exc)), markup=False)
    return code


class HandledGroup(TyperGroup):
    """The root command group: every exception a command raises goes through :func:`report`."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):  # typer's own: usage errors, exits, aborts
            raise
        except KeyboardInterrupt:
            err.print("interrupted")
            ctx.exit(int(ExitCode.INTERRUPTED))
        except Exception as exc:  # noqa: BLE001 - the one place that maps errors to exit codes
            ctx.exit(int(report(exc)))
