"""The provider SDK: what a provider agent sends the exchange (register, heartbeat, poll, complete, fail)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

import httpx

from market.client._http import Transport
from market.client.errors import ApiError
from market.protocol import MAX_POLL_WAIT_S, Action


class ProviderClient:
    """Provider ``name``'s signed calls to the exchange at ``exchange_url``.

    Args:
        exchange_url: ``http://host:port``; account: the provider's key or ``LocalAccount`` (its address is
        the provider's identity: the first address to register a name owns it).
    All methods raise :class:`market.client.ApiError` on a refusal.
    """

    def __init__(self, exchange_url: str, account: Any, *, timeout_s: float = MAX_POLL_WAIT_S + 35.0) -> None:
        self.t = Transport(exchange_url, account, timeout_s=timeout_s)
        self.challenges: list[dict[str, Any]] = []  # speed challenges the last polls handed out (take_challenges)

    @property
    def address(self) -> str:
        """The provider's address."""
        return self.t.address

    def info(self) -> dict[str, Any]:
        """``/v1/info`` (domain, chain id, contract, lease_s)."""
        return self.t.info()

    def circuit_zkey(self, circuit_id: str) -> bytes:
        """The zkey of a registered circuit, checked against its id (sha256 hex).

        Raises:
            ApiError: ``not_found``; ``bad_result`` when the bytes do not hash to ``circuit_id``.
        """
        data = base64.b64decode(self.t.get(f"/v1/circuits/{circuit_id}/zkey")["zkey_b64"])
        if hashlib.sha256(data).hexdigest() != circuit_id:
            raise ApiError("bad_result", f"zkey of {circuit_id[:12]} does not hash to its id", "retry")
        return data

    def circuit_wasm(self, circuit_id: str, wasm_sha256: str) -> bytes:
        """The witness-calculator wasm of a registered circuit, checked against its sha256 (from the lease).

        Raises:
            ApiError: ``not_found`` (no wasm); ``bad_result`` when the bytes do not hash to ``wasm_sha256``.
        """
        try:
            resp = self.t.http.get(f"/v1/circuits/{circuit_id}/wasm")
        except httpx.HTTPError as exc:
            raise ApiError("unreachable", f"GET wasm of {circuit_id[:12]}: {type(exc).__name__}: {exc}", "") from None
        if resp.status_code >= 400:
            raise ApiError("not_found" if resp.status_code == 404 else "http",
                           f"wasm of {circuit_id[:12]}: HTTP {resp.status_code}", "", resp.status_code)
        if hashlib.sha256(resp.content).hexdigest() != wasm_sha256:
            raise ApiError("bad_result", f"wasm of {circuit_id[:12]} does not hash to {wasm_sha256[:12]}", "retry")
        return resp.content

    def register(self, name: str, *, offer: dict[str, Any], hardware: dict[str, Any] | None = None,
                 ray_address: str | None = None) -> dict[str, Any]:
        """Register (or update) the offer: ``offer`` = ``{price_per_cpu_s_wei, cpus, gpus, gpu_model,
        memory_bytes, speed}`` (wei as int or str). Returns the provider as ``/v1/providers`` lists it.

        Raises:
            ApiError: ``name_taken`` when another address registered ``name``.
        """
        offer = {k: (str(v) if k.endswith("_wei") else v) for k, v in offer.items()}
        return self.t.signed("/v1/providers/register", Action.PROVIDER_REGISTER,
                             {"name": name, "offer": offer, "hardware": hardware or {}, "ray_address": ray_address})

    def heartbeat(self, name: str, *, running: Sequence[str] = (), draining: bool = False) -> dict[str, Any]:
        """Extend the leases of the jobs in ``running``; ``{"leases_extended", "lease_expires_at"}``."""
        return self.t.signed("/v1/providers/heartbeat", Action.PROVIDER_HEARTBEAT,
                             {"name": name, "draining": bool(draining), "running": list(running)})

    def poll(self, name: str, *, max_leases: int = 1, wait_s: float = 10.0) -> list[dict[str, Any]]:
        """Long-poll for up to ``max_leases`` new leases (waits up to ``wait_s`` <= 25 s). Returns the leases:
        ``{lease_id, job_id, kind, expires_at, price_wei, attestation: {domain, job_id_bytes32, input_hash,
        kind, verification, sample_rate_ppm, policy}, ticket}`` (sign every attestation field as given:
        ``providers.jobs.sign_result``). Speed challenges that come with the answer are kept for
        :meth:`take_challenges`."""
        got = self.t.signed("/v1/leases/poll", Action.LEASE_POLL,
                            {"name": name, "max_leases": int(max_leases), "wait_s": float(wait_s)})
        self.challenges.extend(got.get("challenges") or [])
        return got["leases"]

    def take_challenges(self) -> list[dict[str, Any]]:
        """The speed challenges received since the last call: ``{challenge_id, kind, circuit, rounds, preimage,
        public, setup_seed, units, deadline_at}`` (``market.exchange.service.challenges``)."""
        out, self.challenges = self.challenges, []
        return out

    def answer_challenge(self, name: str, challenge_id: str, result: bytes) -> dict[str, Any]:
        """Answer a speed challenge with the canonical proof bytes. Returns ``{challenge_id, passed, reason,
        speed, effective_speed}``."""
        return self.t.signed(f"/v1/challenges/{challenge_id}/answer", Action.CHALLENGE_ANSWER,
                             {"name": name, "challenge_id": challenge_id,
                              "result_b64": base64.b64encode(result).decode()})

    def complete(self, lease: dict[str, Any] | str, job_id: str | None = None, *, result: bytes, result_hash: str,
                 signature: str, logs: Sequence[str] = ()) -> dict[str, Any]:
        """Upload a result: the bytes, their ``0x`` keccak-256 and the ``0x`` EIP-712 attestation signature.
        Idempotent (a retry returns the same answer). Returns ``{"job_id", "status": "paid"|"rejected", "reason"}``."""
        lease_id, job_id = _ids(lease, job_id)
        return self.t.signed(f"/v1/leases/{lease_id}/complete", Action.LEASE_COMPLETE,
                             {"lease_id": lease_id, "job_id": job_id, "result_b64": base64.b64encode(result).decode(),
                              "result_hash": result_hash, "signature": signature, "logs": list(logs)})

    def complete_many(self, uploads: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Upload several results in one signed request (``lease.complete_batch``, at most
        ``market.protocol.MAX_BATCH_UPLOADS``): each upload ``{"lease": lease dict, "result": bytes,
        "result_hash", "signature", "logs"}``. Returns one answer per upload, in order: the :meth:`complete`
        answer, or ``{"job_id", "lease_id", "status": "error", "error": code, "message"}`` for an upload the
        exchange refused (the others are not affected).

        Raises:
            ApiError: the request as a whole was refused (``not_found`` from an exchange without the route).
        """
        items = []
        for u in uploads:
            lease_id, job_id = _ids(u["lease"], None)
            items.append({"lease_id": lease_id, "job_id": job_id, "result_b64": base64.b64encode(u["result"]).decode(),
                          "result_hash": u["result_hash"], "signature": u["signature"], "logs": list(u.get("logs", ()))})
        return self.t.signed("/v1/leases/complete-batch", Action.LEASE_COMPLETE_BATCH, {"items": items})["results"]

    def fail(self, lease: dict[str, Any] | str, job_id: str | None = None, *, reason: str,
             logs: Sequence[str] = ()) -> dict[str, Any]:
        """Give the lease back (the job is re-auctioned without this provider). Returns the job's new state."""
        lease_id, job_id = _ids(lease, job_id)
        return self.t.signed(f"/v1/leases/{lease_id}/fail", Action.LEASE_FAIL,
                             {"lease_id": lease_id, "job_id": job_id, "reason": reason[:2000], "logs": list(logs)})

    def close(self) -> None:
        """Close the connection pool."""
        self.t.close()


def _ids(lease: dict[str, Any] | str, job_id: str | None) -> tuple[str, str]:
    if isinstance(lease, dict):
        return lease["lease_id"], lease["job_id"]
    if job_id is None:
        raise ValueError("pass the lease dict, or lease_id and job_id")
    return lease, job_id
