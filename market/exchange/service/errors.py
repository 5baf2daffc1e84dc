"""Refusals: :class:`ServiceError` carries a ``market.protocol.ErrorCode``; the app turns it into a 4xx
``{"error", "message", "hint"}`` response. Raising it inside a transaction rolls the transaction back, so a
refusal changes nothing."""

from __future__ import annotations

from proving.errors import RaymarketError

from market.protocol import ERROR_STATUS, ErrorCode


class ServiceError(RaymarketError):
    """A refused request.

    Attributes:
        code: a :class:`market.protocol.ErrorCode`; message: what is wrong; hint: what to do; status: HTTP status.
    """

    def __init__(self, code: str, message: str, hint: str = "", status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.hint = code, message, hint
        self.status = status or ERROR_STATUS.get(code, 400)

    def body(self) -> dict[str, str]:
        """The JSON refusal body."""
        return {"error": self.code, "message": self.message, "hint": self.hint}


def not_found(what: str, ident: str) -> ServiceError:
    """404 ``not_found`` for ``what`` ``ident``."""
    return ServiceError(ErrorCode.NOT_FOUND, f"no {what} {ident!r}", f"check the {what} id")


def not_owner(what: str, ident: str) -> ServiceError:
    """403 ``not_owner``: the signer does not own ``what`` ``ident``."""
    return ServiceError(ErrorCode.NOT_OWNER, f"the signer does not own {what} {ident!r}",
                        "sign with the key that created it")


def invalid(field: str, message: str) -> ServiceError:
    """422 ``invalid`` naming ``field``."""
    return ServiceError(ErrorCode.INVALID, f"{field}: {message}", f"fix the field {field!r}")


def conflict(message: str, hint: str = "") -> ServiceError:
    """409 ``conflict``."""
    return ServiceError(ErrorCode.CONFLICT, message, hint)
