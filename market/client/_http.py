"""The SDK's HTTP edge: one persistent ``httpx.Client``, the exchange's EIP-712 domain fetched once,
signed POSTs, JSON errors mapped to :class:`market.client.errors.ApiError`."""

from __future__ import annotations

from typing import Any

import httpx
from eth_account import Account

from market.client.errors import ApiError
from market.protocol import ExchangeDomain, sign_request


def _account(account: Any) -> Any:
    """An eth-account ``LocalAccount`` from a key (0x-hex / bytes) or an account."""
    return account if hasattr(account, "key") and hasattr(account, "address") else Account.from_key(account)


class Transport:
    """Signed and unsigned calls to one exchange.

    Args:
        exchange_url: ``http://host:port`` of the exchange service.
        account: the signer (key or ``LocalAccount``); None for public reads only.
        timeout_s: HTTP timeout per request, seconds.
    """

    def __init__(self, exchange_url: str, account: Any = None, *, timeout_s: float = 60.0,
                 http: httpx.Client | None = None) -> None:
        self.url = exchange_url.rstrip("/")
        self.account = None if account is None else _account(account)
        self.http = http or httpx.Client(base_url=self.url, timeout=timeout_s)
        self._info: dict[str, Any] | None = None

    @property
    def address(self) -> str:
        """The signer's checksummed address (raises ApiError ``no_account`` without one)."""
        if self.account is None:
            raise ApiError("no_account", "this client has no signing account", "pass account= to the client")
        return self.account.address

    def info(self) -> dict[str, Any]:
        """``GET /v1/info`` (fetched once)."""
        if self._info is None:
            self._info = self.get("/v1/info")
        return self._info

    @property
    def domain(self) -> ExchangeDomain:
        """The exchange's EIP-712 request domain (from ``/v1/info``)."""
        return ExchangeDomain(**self.info()["domain"])

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path``; returns the decoded JSON. Raises ApiError."""
        return self._send("GET", path, params=params or None)

    def post(self, path: str, body: Any) -> Any:
        """POST a JSON body (unsigned). Raises ApiError."""
        return self._send("POST", path, json=body)

    def signed(self, path: str, action: str, payload: dict[str, Any], *, ttl_s: int = 120) -> Any:
        """POST ``payload`` signed for ``action`` with a fresh nonce. Raises ApiError."""
        if self.account is None:
            raise ApiError("no_account", f"{action} needs a signing account", "pass account= to the client")
        req = sign_request(self.account, action, payload, self.domain, ttl_s=ttl_s)
        return self._send("POST", path, content=req.model_dump_json())

    def signed_stream(self, path: str, action: str, payload: dict[str, Any], body: Any, *,
                      header: str, ttl_s: int = 600) -> Any:
        """POST ``body`` (bytes or an iterator of byte chunks, sent as it is read) with ``payload`` signed for
        ``action`` in the request header ``header`` (compact JSON of the signed request). Raises ApiError."""
        if self.account is None:
            raise ApiError("no_account", f"{action} needs a signing account", "pass account= to the client")
        req = sign_request(self.account, action, payload, self.domain, ttl_s=ttl_s)
        try:
            resp = self.http.post(path, content=body, headers={header: req.model_dump_json(),
                                                               "content-type": "application/octet-stream"},
                                  timeout=max(60.0, float(self.http.timeout.read or 60.0)) * 10)
        except httpx.HTTPError as exc:
            raise ApiError("unreachable", f"POST {self.url}{path}: {type(exc).__name__}: {exc}",
                           "is `raymarket exchange serve` running at this URL?") from None
        if resp.status_code >= 400:
            raise _api_error(resp)
        return resp.json()

    def _send(self, method: str, path: str, **kw: Any) -> Any:
        if "content" in kw:
            kw["headers"] = {"content-type": "application/json"}
        try:
            resp = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ApiError("unreachable", f"{method} {self.url}{path}: {type(exc).__name__}: {exc}",
                           "is `raymarket exchange serve` running at this URL?") from None
        if resp.status_code >= 400:
            raise _api_error(resp)
        return resp.json()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()

    def __del__(self) -> None:
        try:
            self.http.close()
        except Exception:  # interpreter shutdown
            pass


def _api_error(resp: httpx.Response) -> ApiError:
    try:
        body = resp.json()
        if isinstance(body, dict) and "error" in body:
            return ApiError(str(body["error"]), str(body.get("message", "")), str(body.get("hint", "")),
                            resp.status_code)
    except ValueError:
        pass
    return ApiError("http", f"HTTP {resp.status_code}: {resp.text[:300]}", "", resp.status_code)
