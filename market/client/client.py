"""The client SDK: submit jobs, follow them, fetch verified results, cancel, quote, balance."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

from eth_hash.auto import keccak

from market.client._http import Transport
from market.client.errors import ApiError
from market.protocol import MAX_BATCH_SUBMITS, UPLOAD_REQUEST_HEADER, Action

#: Chunk size of streamed uploads, bytes.
UPLOAD_CHUNK_BYTES = 1024 * 1024


def _sha256_size(src: str | Path | bytes) -> tuple[str, int]:
    """``(sha256 hex, size in bytes)`` of bytes or a file (read in chunks)."""
    if isinstance(src, bytes):
        return hashlib.sha256(src).hexdigest(), len(src)
    h, n = hashlib.sha256(), 0
    with open(src, "rb") as f:
        while chunk := f.read(UPLOAD_CHUNK_BYTES):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def _chunks(parts: list[str | Path | bytes]) -> Iterator[bytes]:
    """The bytes of ``parts`` one after the other, in chunks of at most :data:`UPLOAD_CHUNK_BYTES`."""
    for src in parts:
        if isinstance(src, bytes):
            for i in range(0, len(src), UPLOAD_CHUNK_BYTES):
                yield src[i:i + UPLOAD_CHUNK_BYTES]
            continue
        with open(src, "rb") as f:
            while chunk := f.read(UPLOAD_CHUNK_BYTES):
                yield chunk

#: Job states after which :meth:`Client.wait` returns (``paid``: verified and paid; settled on-chain later).
DONE_STATUSES = frozenset({"paid", "settled", "failed", "cancelled"})


class Client:
    """A client of the exchange at ``exchange_url``, signing as ``account``.

    Args:
        exchange_url: ``http://host:port``.
        account: private key (0x-hex) or eth-account ``LocalAccount``; None for public reads only.
        timeout_s: HTTP timeout per request, seconds.
    All methods raise :class:`market.client.ApiError` on a refusal (``code`` from ``market.protocol.ErrorCode``).
    Wei amounts in answers are decimal strings.
    """

    def __init__(self, exchange_url: str, account: Any = None, *, timeout_s: float = 60.0) -> None:
        self.t = Transport(exchange_url, account, timeout_s=timeout_s)

    @property
    def address(self) -> str:
        """The client's address."""
        return self.t.address

    def info(self) -> dict[str, Any]:
        """``/v1/info``: name, version, chain_id, contract, fee_bps, dev, lease_s, domain."""
        return self.t.info()

    def providers(self) -> list[dict[str, Any]]:
        """The market's providers (name, address, hardware, offer, online, reputation, draining)."""
        return self.t.get("/v1/providers")

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Submit a raw job spec (``market.protocol.JobSpecIn`` fields); escrows ``max_price_wei``. Returns the job."""
        return self.t.signed("/v1/jobs", Action.JOB_SUBMIT, {"spec": spec})

    def submit_many(self, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Submit several raw job specs in one signed request (``job.submit_batch``, at most
        ``market.protocol.MAX_BATCH_SUBMITS``); each escrows its ``max_price_wei``. Returns one entry per spec, in
        order: ``{"job_id", "status", "max_price_wei"}``, or ``{"job_id", "status": "error", "error", "message",
        "hint"}`` for a spec the exchange refused (the others still go in).

        Raises:
            ApiError: the request as a whole was refused (``not_found`` from an exchange without the route).
        """
        return self.t.signed("/v1/jobs/batch", Action.JOB_SUBMIT_BATCH, {"specs": list(specs)})["jobs"]

    def submit_inference(self, text_path_or_bytes: str | Path | bytes, *, max_price_wei: int,
                         deadline_s: float = 3600.0, cpus: int = 1, gpus: int = 0, gpu_model: str | None = None,
                         memory_bytes: int = 0, job_id: str | None = None, collateral_wei: int = 0,
                         verification: str | None = None) -> dict[str, Any]:
        """Submit an embedding job over a UTF-8 text (one sentence per line): a path or the bytes. Returns the job.
        ``verification``: ``spot-check:RATE`` or ``attest-only`` (None: the exchange's default, a spot-check, which
        pays only after another provider re-executes a sample)."""
        data = text_path_or_bytes if isinstance(text_path_or_bytes, bytes) else Path(text_path_or_bytes).read_bytes()
        spec = {"kind": "inference", "input_b64": base64.b64encode(data).decode(), **_common(
            max_price_wei, deadline_s, cpus, gpus, gpu_model, memory_bytes, job_id, collateral_wei)}
        if verification is not None:
            spec["verification"] = verification
        return self.submit(spec)

    def submit_inference_split(self, text_path_or_bytes: str | Path | bytes, parts: int, *, max_price_wei: int,
                               deadline_s: float = 3600.0, verification: str | None = None,
                               **resources: Any) -> list[dict[str, Any]]:
        """Submit one embedding input as ``parts`` jobs of consecutive lines (as equal as the line count allows),
        in one signed ``job.submit_batch`` request, so that several providers (or several CPUs of one) embed it
        at once. ``max_price_wei`` is each part's cap. ``resources``: ``cpus``, ``gpus``, ``gpu_model``,
        ``memory_bytes``, ``collateral_wei`` as for :meth:`submit_inference`. Returns one job per part, in line
        order; :meth:`result_rows` joins their results back into one array.

        Raises:
            ApiError: ``invalid`` when ``parts`` is not between 1 and the number of lines (or
                ``market.protocol.MAX_BATCH_SUBMITS``); the request as a whole was refused.
        """
        data = text_path_or_bytes if isinstance(text_path_or_bytes, bytes) else Path(text_path_or_bytes).read_bytes()
        lines = [ln for ln in data.decode("utf-8").splitlines() if ln.strip()]
        if not 1 <= parts <= min(len(lines), MAX_BATCH_SUBMITS):
            raise ApiError("invalid", f"parts={parts}: must be between 1 and the number of non-empty lines "
                           f"({len(lines)}, at most {MAX_BATCH_SUBMITS})", "pass fewer parts")
        bounds = [len(lines) * i // parts for i in range(parts + 1)]
        specs = []
        for lo, hi in zip(bounds, bounds[1:]):
            spec = {"kind": "inference", "input_b64": base64.b64encode(("\n".join(lines[lo:hi]) + "\n").encode()).decode(),
                    **_common(max_price_wei, deadline_s, resources.get("cpus", 1), resources.get("gpus", 0),
                              resources.get("gpu_model"), resources.get("memory_bytes", 0), None,
                              resources.get("collateral_wei", 0))}
            if verification is not None:
                spec["verification"] = verification
            specs.append(spec)
        return self.submit_many(specs)

    def result_rows(self, job_ids: list[str]) -> Any:
        """The embedding rows of several inference jobs (e.g. the parts of :meth:`submit_inference_split`), each
        checked against its attested hash, stacked in the order given: ``float32 (total sentences, 384)``."""
        import numpy as np  # noqa: PLC0415 (heavy: only callers that join embedding results need it)

        return np.concatenate([np.load(io.BytesIO(self.result(j)), allow_pickle=False) for j in job_ids])

    def submit_proof(self, preimage: int | None = None, *, rounds: int | None = None, max_price_wei: int,
                     circuit: str = "mimc7", circuit_id: str | None = None,
                     witness: str | Path | bytes | None = None, public: list[str] | None = None,
                     input: str | Path | dict[str, Any] | None = None,  # noqa: A002 -- the CLI's --input
                     deadline_s: float = 3600.0, cpus: int = 1, gpus: int = 0, gpu_model: str | None = None,
                     memory_bytes: int = 0, job_id: str | None = None, collateral_wei: int = 0) -> dict[str, Any]:
        """Submit a Groth16 proof job. Returns the job.

        Either the MiMC-7 example (``preimage``, ``rounds``: knowledge of a preimage of the public hash), or a
        registered circuit (``circuit_id`` from :meth:`add_circuit`, ``witness``: a snarkjs ``.wtns`` path or
        bytes; ``public``: the public signals expected, refused at intake when the witness's differ). The
        witness goes only to the provider that proves it; the exchange deletes it once the job is paid. Instead
        of ``witness``, ``input`` (the circuit's input JSON: a path, JSON text or a dict) for a circuit added with
        its wasm: the provider computes the witness (the input is as secret as the witness: same handling).
        """
        common = _common(max_price_wei, deadline_s, cpus, gpus, gpu_model, memory_bytes, job_id, collateral_wei)
        if circuit_id is not None:
            if (witness is None) == (input is None):
                raise ApiError("invalid", "a proof on a registered circuit needs witness= or input=",
                               "pass the .wtns, or the input JSON of a circuit added with --wasm")
            spec: dict[str, Any] = {"kind": "proof", "circuit": circuit_id, **common}
            if input is not None:
                spec["input_json"] = (json.dumps(input) if isinstance(input, dict)
                                      else input if isinstance(input, str) and input.lstrip().startswith("{")
                                      else Path(input).read_text())
            else:
                data = witness if isinstance(witness, bytes) else Path(witness).read_bytes()  # type: ignore[arg-type]
                spec["witness_b64"] = base64.b64encode(data).decode()
            if public is not None:
                spec["public"] = [str(int(x)) for x in public]
            return self.submit(spec)
        if preimage is None or rounds is None:
            raise ApiError("invalid", "a MiMC-7 proof needs preimage and rounds", "or pass circuit_id= and witness=")
        spec = {"kind": "proof", "circuit": circuit, "rounds": int(rounds), "preimage": str(int(preimage)), **common}
        return self.submit(spec)

    def add_circuit(self, zkey: str | Path | bytes, *, wasm: str | Path | bytes | None = None,
                    name: str | None = None) -> dict[str, Any]:
        """Register a snarkjs Groth16 ``.zkey`` (path or bytes), with its circom witness-calculator ``wasm``
        (``CIRCUIT_js/CIRCUIT.wasm``; needed for proof jobs given an input instead of a witness); returns the
        circuit ``{"circuit_id" (sha256 hex of the zkey), "n_constraints", "n_public", "vk_sha256", "wasm_sha256",
        "verifier_address", "verifier_tx", ...}``. Idempotent (stored once by hash). Files are streamed in 1 MiB
        chunks (``POST /v1/circuits/upload``), never read whole.

        Raises:
            ApiError: ``invalid`` (not a Groth16 zkey / not a wasm), ``too_large``.
        """
        parts = [p for p in (zkey, wasm) if p is not None]
        digests = [_sha256_size(p) for p in parts]
        payload: dict[str, Any] = {"zkey_sha256": digests[0][0], "zkey_size": digests[0][1]}
        if wasm is not None:
            payload.update(wasm_sha256=digests[1][0], wasm_size=digests[1][1])
        if name is not None:
            payload["name"] = name
        return self.t.signed_stream("/v1/circuits/upload", Action.CIRCUIT_UPLOAD, payload, _chunks(parts),
                                    header=UPLOAD_REQUEST_HEADER)

    def circuit_verifier(self, circuit_id: str) -> str:
        """Solidity source of a standalone Groth16 verifier for the circuit (``verifyProof`` as snarkjs's export,
        and ``verify(uint256[8], uint256[])``). Raises ApiError ``not_found``."""
        resp = self.t.http.get(f"/v1/circuits/{circuit_id}/verifier.sol")
        if resp.status_code >= 400:
            raise ApiError("not_found" if resp.status_code == 404 else "http",
                           f"verifier of circuit {circuit_id[:12]}: HTTP {resp.status_code}", "", resp.status_code)
        return resp.text

    def circuits(self) -> list[dict[str, Any]]:
        """Every registered circuit (public)."""
        return self.t.get("/v1/circuits")

    def circuit(self, circuit_id: str) -> dict[str, Any]:
        """One circuit with ``"vk"`` (snarkjs ``verification_key.json``). Raises ApiError ``not_found``."""
        return self.t.get(f"/v1/circuits/{circuit_id}")

    def status(self, job_id: str) -> dict[str, Any]:
        """The job (public): status, history, explanation while unmatched, price, provider, batch, tx."""
        return self.t.get(f"/v1/jobs/{job_id}")

    def wait(self, job_id: str, *, timeout_s: float = 600.0, poll_s: float = 0.25,
             on_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Poll until the job is paid, settled, failed or cancelled; ``on_progress(job)`` on each status change.

        Raises:
            ApiError: code ``timeout`` after ``timeout_s`` seconds (the job keeps going).
        """
        deadline, last = time.monotonic() + timeout_s, None
        while True:
            job = self.status(job_id)
            if on_progress is not None and job["status"] != last:
                on_progress(job)
            last = job["status"]
            if last in DONE_STATUSES:
                return job
            if time.monotonic() >= deadline:
                raise ApiError("timeout", f"job {job_id} is still {last} after {timeout_s} s",
                               "wait longer, or `raymarket status JOB`")
            time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
            poll_s = min(poll_s * 1.5, 2.0)

    def result_info(self, job_id: str) -> dict[str, Any]:
        """The signed result read (owner only): ``job_id, kind, result_b64, result_hash, attestation``."""
        return self.t.signed(f"/v1/jobs/{job_id}/result", Action.JOB_RESULT, {"job_id": job_id})

    def result(self, job_id: str) -> bytes:
        """The result bytes (``.npy`` for inference, canonical proof JSON for proof), checked against the
        attested ``result_hash`` (keccak-256).

        Raises:
            ApiError: ``bad_result`` when the bytes do not match; ``not_found`` when no result yet.
        """
        info = self.result_info(job_id)
        data = base64.b64decode(info["result_b64"])
        if "0x" + keccak(data).hex() != info["result_hash"].lower():
            raise ApiError("bad_result", f"job {job_id}: downloaded bytes do not match the attested result hash",
                           "retry; report the exchange if it persists")
        return data

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel the job (see the service's cancel rule); returns the job."""
        return self.t.signed(f"/v1/jobs/{job_id}/cancel", Action.JOB_CANCEL, {"job_id": job_id})

    def logs(self, job_id: str) -> list[str]:
        """The job's log lines uploaded by its provider(s) (owner only)."""
        return self.t.signed(f"/v1/jobs/{job_id}/logs", Action.JOB_LOGS, {"job_id": job_id})["lines"]

    def quote(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Would ``spec`` match now: ``feasible, explanation, p50_wei, p90_wei`` (unsigned)."""
        return self.t.post("/v1/quote", {"spec": spec})

    def balance(self) -> dict[str, Any]:
        """The signer's ``{"address", "balance_wei", "escrowed_wei"}``."""
        return self.t.signed("/v1/balance", Action.ACCOUNT_BALANCE, {})

    def faucet(self, amount_wei: int, *, bond_wei: int = 0, provider_name: str | None = None) -> dict[str, Any]:
        """DEVELOPMENT faucet (service run with ``--dev``): the exchange's well-known dev key sends real
        ``Vault.depositFor`` (``amount_wei``) and ``Vault.stakeFor`` (``bond_wei``, for your registered provider
        ``provider_name``) transactions for you, credited before it answers; returns the balance view with
        ``faucet_txs`` (and ``bond_wei``, the provider's free bond)."""
        payload: dict[str, Any] = {"amount_wei": str(int(amount_wei))}
        if bond_wei:
            payload |= {"bond_wei": str(int(bond_wei)), "provider_name": provider_name}
        return self.t.signed("/v1/dev/faucet", Action.DEV_FAUCET, payload)

    def close(self) -> None:
        """Close the connection pool."""
        self.t.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _common(max_price_wei: int, deadline_s: float, cpus: int, gpus: int, gpu_model: str | None, memory_bytes: int,
            job_id: str | None, collateral_wei: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"max_price_wei": str(int(max_price_wei)), "deadline_s": float(deadline_s),
                            "cpus": int(cpus), "gpus": int(gpus), "gpu_model": gpu_model,
                            "memory_bytes": int(memory_bytes), "collateral_wei": str(int(collateral_wei))}
    if job_id is not None:
        spec["job_id"] = job_id
    return spec
