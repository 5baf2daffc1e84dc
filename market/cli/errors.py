"""The one error handler of the CLI: an exception becomes one line on stderr, a hint and an exit code.

:data:`ERROR_MAP` is matched in order (the first entry whose type the error is an instance of wins):
narrow, well-known errors first, then the package roots (all deriving from
:class:`proving.errors.RaymarketError`), then a few standard-library and driver errors. Anything
else is a bug: ``internal error`` and :attr:`ExitCode.INTERNAL`; ``RAYMARKET_DEBUG=1`` prints the
traceback. :class:`HandledGroup` installs the handler on the root typer app, so ``CliRunner``
tests see exactly what a user sees.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

import httpx
import sqlalchemy.exc
import typer
from rich.markup import escape
from typer.core import TyperGroup
from typer.exceptions import TyperException

from contracts.errors import ChainUnreachable, ContractReverted, ContractsError
from contracts.tools import ToolNotFound
from market.cli.common import err
from market.cli.exit_codes import ExitCode
from market.client import ApiError
from market.core.matching import ReplayMismatch
from market.core.orders import MatchingError
from market.exchange.steps import ExchangeError, InvalidJob, UnknownJob, UnknownProvider
from market.exchange.verification import ResultRejected
from market.ledger.errors import InsufficientFunds, LedgerError, UnknownAccount
from market.pipeline.errors import BatchNotFound, PipelineError, ProvenanceMismatch
from market.settings import SettingsError
from market.settlement.batching import SettlementError
from market.settlement.batching import UnknownJob as UnknownSettledJob
from proving.errors import BackendUnavailable, ProvingError, RaymarketError

#: (exception type, exit code, hint) in match order.
ERROR_MAP: list[tuple[type[BaseException], ExitCode, str]] = [
    # narrow errors with a known fix
    (InsufficientFunds, ExitCode.INSUFFICIENT_FUNDS, "fund the account first (dev: `raymarket dev up` funds one)"),
    (UnknownAccount, ExitCode.NOT_FOUND, "fund the account first to open it"),
    (UnknownJob, ExitCode.NOT_FOUND, "list the jobs with `raymarket status`"),
    (UnknownProvider, ExitCode.NOT_FOUND, "list the providers with `raymarket provider list`"),
    (UnknownSettledJob, ExitCode.NOT_FOUND, "the job is not settled yet; see `raymarket status JOB`"),
    (BatchNotFound, ExitCode.NOT_FOUND, ""),
    (InvalidJob, ExitCode.BAD_INPUT, ""),
    (ReplayMismatch, ExitCode.CHECK_FAILED, ""),
    (ProvenanceMismatch, ExitCode.CHECK_FAILED, ""),
    (ResultRejected, ExitCode.REJECTED, ""),
    (ChainUnreachable, ExitCode.UNREACHABLE, "start the node or fix --rpc-url / RAYMARKET_RPC_URL"),
    (ContractReverted, ExitCode.REJECTED, ""),
    (ToolNotFound, ExitCode.UNAVAILABLE, "install the npm tools: npm ci --prefix .npm-tools"),
    (BackendUnavailable, ExitCode.UNAVAILABLE, ""),
    (SettingsError, ExitCode.BAD_INPUT, ""),
    # package roots
    (LedgerError, ExitCode.BAD_INPUT, ""),
    (ExchangeError, ExitCode.BAD_INPUT, ""),
    (MatchingError, ExitCode.BAD_INPUT, ""),
    (SettlementError, ExitCode.BAD_INPUT, ""),
    (PipelineError, ExitCode.BAD_INPUT, ""),
    (ProvingError, ExitCode.BAD_INPUT, ""),
    (ContractsError, ExitCode.REJECTED, ""),
    (RaymarketError, ExitCode.BAD_INPUT, ""),
    # outside the project
    (sqlalchemy.exc.OperationalError, ExitCode.UNREACHABLE,
     "check --database-url / RAYMARKET_DATABASE_URL and that the server is up"),
    (httpx.TransportError, ExitCode.UNREACHABLE,
     "is the exchange running? start one with `raymarket dev up`, or pass --exchange URL"),
    (FileNotFoundError, ExitCode.NOT_FOUND, ""),
    (PermissionError, ExitCode.BAD_INPUT, ""),
    (ConnectionError, ExitCode.UNREACHABLE, "is the service running?"),
]


#: The exchange's refusal codes (``market.protocol`` error codes and the SDK's own) -> exit code;
#: any other code is :attr:`ExitCode.REJECTED`.
API_CODES: dict[str, ExitCode] = {
    "not_found": ExitCode.NOT_FOUND, "insufficient_funds": ExitCode.INSUFFICIENT_FUNDS,
    "invalid": ExitCode.BAD_INPUT, "too_large": ExitCode.BAD_INPUT, "unreachable": ExitCode.UNREACHABLE,
    "timeout": ExitCode.TIMEOUT, "bad_result": ExitCode.CHECK_FAILED,
}


def classify(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and hint for ``exc`` (:attr:`ExitCode.INTERNAL` and a bug hint when it is unknown)."""
    if isinstance(exc, ApiError):
        return API_CODES.get(exc.code, ExitCode.REJECTED), exc.hint
    for etype, code, hint in ERROR_MAP:
        if isinstance(exc, etype):
            return code, getattr(exc, "hint", None) or hint
    return ExitCode.INTERNAL, "this is a bug; rerun with RAYMARKET_DEBUG=1 for the traceback and report it"


def report(exc: BaseException) -> ExitCode:
    """Print ``exc`` as one line (plus its hint) on stderr; return its exit code."""
    code, hint = classify(exc)
    text = (f"{exc.code}: {exc.message}" if isinstance(exc, ApiError) else str(exc)).strip()
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
