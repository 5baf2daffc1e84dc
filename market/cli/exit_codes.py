"""The exit codes of every ``raymarket`` command, in one table.

Scripts may rely on them: 0 means done; 1 means the command ran and the answer is "no" (a check
failed, like ``grep``/``diff``); 2 is click's own code for a bad flag or argument; the others name
what went wrong. The single error handler (:mod:`market.cli.errors`) maps exceptions to them.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit code of a ``raymarket`` command."""

    #: done
    OK = 0
    #: the command ran and a check failed: invalid proof, replay mismatch, ledger invariant
    #: violated, inclusion proof wrong, result bytes do not match the attested hash
    CHECK_FAILED = 1
    #: click/typer's own code: unknown option, missing or malformed argument
    USAGE = 2
    #: the input is malformed (a file, a spec, a setting), found after parsing
    BAD_INPUT = 3
    #: a job, account, batch, file or key does not exist
    NOT_FOUND = 4
    #: the database, the chain RPC or the exchange service cannot be reached
    UNREACHABLE = 5
    #: the request was refused: the exchange (signature, ownership, conflict), the contract
    #: (revert), or the verification of a result
    REJECTED = 6
    #: not enough balance for the escrow, bond or payment
    INSUFFICIENT_FUNDS = 7
    #: an optional backend or tool (prover backend, anvil, ...) is not installed
    UNAVAILABLE = 8
    #: ``--wait`` or another bounded wait ran out
    TIMEOUT = 9
    #: a bug: an unexpected exception (``EX_SOFTWARE`` of sysexits.h)
    INTERNAL = 70
    #: interrupted (Ctrl-C): 128 + SIGINT
    INTERRUPTED = 130
