"""Errors of the SDK."""

from __future__ import annotations

from proving.errors import RaymarketError


class ClientError(RaymarketError):
    """Root of the SDK's errors."""


class ApiError(ClientError):
    """The exchange refused a request (or could not be reached).

    Attributes:
        code: a ``market.protocol.ErrorCode`` (``"unreachable"`` when no answer came, ``"http"`` for a
            non-JSON error, ``"bad_result"`` when downloaded bytes do not match the attested hash).
        message: what went wrong; hint: how to fix it; status: HTTP status (0 when unreachable).
    """

    def __init__(self, code: str, message: str, hint: str = "", status: int = 0) -> None:
        super().__init__(f"{code}: {message}" + (f" ({hint})" if hint else ""))
        self.code, self.message, self.hint, self.status = code, message, hint, status
