"""The exchange's wire protocol: EIP-712 signed request envelopes, payload models and error codes.

Every state-changing or private request to the exchange is a :class:`SignedRequest`: an action name,
a JSON payload, and an EIP-712 signature (https://eips.ethereum.org/EIPS/eip-712) over::

    EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)
        name = "raymarket-exchange", version = "1", verifyingContract = the Settlement contract
    Request(string action,bytes32 payloadHash,uint64 nonce,uint64 expiry)
        payloadHash = keccak256(canonical_json(payload))

``canonical_json`` is ``json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
in UTF-8, so a changed payload changes the digest and the recovered signer. The server hashes the payload
exactly as received (before validating it into a model).

This module depends on eth-account, eth-abi and pydantic only (no database, Ray or web3): the SDK, the
provider agent and the service all import it.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Annotated, Any, Literal

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import is_checksum_address, to_checksum_address
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from proving.errors import RaymarketError

DOMAIN_NAME = "raymarket-exchange"
DOMAIN_VERSION = "1"
DOMAIN_TYPEHASH = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
REQUEST_TYPE = "Request(string action,bytes32 payloadHash,uint64 nonce,uint64 expiry)"
REQUEST_TYPEHASH = keccak(REQUEST_TYPE.encode())
#: A request's expiry must lie in ``(now, now + MAX_EXPIRY_WINDOW_S]`` (seconds).
MAX_EXPIRY_WINDOW_S = 600
DEFAULT_TTL_S = 120
#: Nonces are in ``[1, 2**64)``.
MAX_NONCE = 2**64 - 1
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: Pattern every id (job id, provider name, lease id) must match.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_ID_RE = re.compile(ID_PATTERN)
#: Longest wait a long-poll may ask for, seconds.
MAX_POLL_WAIT_S = 25.0
#: Most log lines per upload, and the most characters per line.
MAX_LOG_LINES = 1000
MAX_LOG_LINE_CHARS = 2000
#: Most results in one ``lease.complete_batch`` request.
MAX_BATCH_UPLOADS = 64
#: Most job specs in one ``job.submit_batch`` request.
MAX_BATCH_SUBMITS = 256


class Action:
    """The actions a signed request may carry (``SignedRequest.action``)."""

    PROVIDER_REGISTER = "provider.register"
    PROVIDER_HEARTBEAT = "provider.heartbeat"
    LEASE_POLL = "lease.poll"
    LEASE_COMPLETE = "lease.complete"
    LEASE_COMPLETE_BATCH = "lease.complete_batch"
    LEASE_FAIL = "lease.fail"
    JOB_SUBMIT = "job.submit"
    JOB_SUBMIT_BATCH = "job.submit_batch"
    JOB_CANCEL = "job.cancel"
    JOB_RESULT = "job.result"
    JOB_LOGS = "job.logs"
    ACCOUNT_BALANCE = "account.balance"
    DEV_FAUCET = "dev.faucet"
    CIRCUIT_ADD = "circuit.add"
    CIRCUIT_UPLOAD = "circuit.upload"
    CHALLENGE_ANSWER = "challenge.answer"
    ACCOUNT_WITHDRAW = "account.withdraw"
    ACCOUNT_CLAIM = "account.claim"
    ALL = frozenset({PROVIDER_REGISTER, PROVIDER_HEARTBEAT, LEASE_POLL, LEASE_COMPLETE, LEASE_COMPLETE_BATCH,
                     LEASE_FAIL, JOB_SUBMIT, JOB_SUBMIT_BATCH,
                     JOB_CANCEL, JOB_RESULT, JOB_LOGS, ACCOUNT_BALANCE, DEV_FAUCET, ACCOUNT_WITHDRAW, ACCOUNT_CLAIM,
                     CIRCUIT_ADD, CIRCUIT_UPLOAD, CHALLENGE_ANSWER})


class ErrorCode:
    """The ``error`` field of a refusal body ``{"error", "message", "hint"}``."""

    BAD_SIGNATURE = "bad_signature"
    WRONG_ACTION = "wrong_action"
    EXPIRED = "expired"
    REPLAYED_NONCE = "replayed_nonce"
    NOT_OWNER = "not_owner"
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    NAME_TAKEN = "name_taken"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    NOT_DEV = "not_dev"


#: HTTP status of each error code.
ERROR_STATUS = {
    ErrorCode.BAD_SIGNATURE: 401, ErrorCode.WRONG_ACTION: 400, ErrorCode.EXPIRED: 401,
    ErrorCode.REPLAYED_NONCE: 409, ErrorCode.NOT_OWNER: 403, ErrorCode.NOT_FOUND: 404, ErrorCode.INVALID: 422,
    ErrorCode.INSUFFICIENT_FUNDS: 402, ErrorCode.NAME_TAKEN: 409, ErrorCode.CONFLICT: 409,
    ErrorCode.TOO_LARGE: 413, ErrorCode.NOT_DEV: 403,
}


class ProtocolError(RaymarketError):
    """Root of the protocol's errors."""


class BadRequestSignature(ProtocolError):
    """The signature is malformed or does not recover to the claimed signer.

    Attributes:
        recovered: the address the signature recovers to (None when malformed).
    """

    def __init__(self, message: str, recovered: str | None = None) -> None:
        super().__init__(message)
        self.recovered = recovered


def valid_id(value: str) -> bool:
    """True when ``value`` matches :data:`ID_PATTERN` (1-64 of ``A-Za-z0-9_-``)."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None  # fullmatch: "$" passes a trailing "\n"


def canonical_json(payload: Any) -> bytes:
    """Canonical UTF-8 JSON of ``payload`` (sorted keys, no spaces, non-ASCII kept)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def payload_hash(payload: Any) -> bytes:
    """``keccak256(canonical_json(payload))``, 32 bytes."""
    return keccak(canonical_json(payload))


# --------------------------------------------------------------------------- domain and envelope


class ExchangeDomain(BaseModel):
    """The EIP-712 domain of an exchange (served by ``GET /v1/info`` as ``domain``).

    Attributes:
        chain_id: the settlement chain's id; verifying_contract: the Settlement contract (checksummed).
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    name: str = DOMAIN_NAME
    version: str = DOMAIN_VERSION
    chain_id: int = Field(alias="chainId")
    verifying_contract: str = Field(alias="verifyingContract")

    @field_validator("verifying_contract")
    @classmethod
    def _checksum(cls, v: str) -> str:
        return to_checksum_address(v)

    @property
    def separator(self) -> bytes:
        """``hashStruct(EIP712Domain)``, 32 bytes."""
        return keccak(abi_encode(["bytes32", "bytes32", "bytes32", "uint256", "address"],
                                 [DOMAIN_TYPEHASH, keccak(self.name.encode()), keccak(self.version.encode()),
                                  self.chain_id, self.verifying_contract]))

    def to_json(self) -> dict[str, Any]:
        """``{"name", "version", "chainId", "verifyingContract"}`` (the EIP-712 field names)."""
        return self.model_dump(by_alias=True)


class SignedRequest(BaseModel):
    """The POST body of every signed request (see the module docstring).

    Attributes:
        action: one of :class:`Action`; payload: the action's JSON object; signer: checksummed address;
        nonce: in ``[1, 2**64)``, never reused by a signer; expiry: Unix seconds; signature: ``0x`` + 65 bytes.
    """

    model_config = ConfigDict(extra="forbid")

    action: str = Field(max_length=32)
    payload: dict[str, Any]
    signer: str = Field(max_length=42)
    nonce: int = Field(ge=1, le=MAX_NONCE)
    expiry: int = Field(ge=0, le=2**63)
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")

    @field_validator("signer")
    @classmethod
    def _signer(cls, v: str) -> str:
        if not is_checksum_address(v):
            raise ValueError("signer must be a checksummed 0x address")
        return v


def request_digest(action: str, payload: Any, nonce: int, expiry: int, domain: ExchangeDomain) -> bytes:
    """The 32-byte EIP-712 digest ``keccak256(0x1901 || domainSeparator || hashStruct(Request))``."""
    struct = keccak(abi_encode(["bytes32", "bytes32", "bytes32", "uint64", "uint64"],
                               [REQUEST_TYPEHASH, keccak(action.encode()), payload_hash(payload), nonce, expiry]))
    return keccak(b"\x19\x01" + domain.separator + struct)


def new_nonce() -> int:
    """A random nonce in ``[1, 2**63)`` (collisions are negligible; the server refuses a reuse)."""
    return secrets.randbelow(2**63 - 1) + 1


def sign_request(private_key_or_account: Any, action: str, payload: dict[str, Any], domain: ExchangeDomain, *,
                 ttl_s: int = DEFAULT_TTL_S, nonce: int | None = None, now_s: float | None = None) -> SignedRequest:
    """Sign ``payload`` for ``action`` under ``domain``.

    Args:
        private_key_or_account: 0x-hex / 32-byte key, or an eth-account ``LocalAccount``.
        ttl_s: seconds until the request expires (<= :data:`MAX_EXPIRY_WINDOW_S`).
        nonce: default: :func:`new_nonce`.
    """
    acct = private_key_or_account if hasattr(private_key_or_account, "key") else Account.from_key(private_key_or_account)
    nonce = new_nonce() if nonce is None else nonce
    expiry = int((time.time() if now_s is None else now_s) + ttl_s)
    sig = Account.unsafe_sign_hash(request_digest(action, payload, nonce, expiry, domain), acct.key)
    return SignedRequest(action=action, payload=payload, signer=acct.address, nonce=nonce, expiry=expiry,
                         signature="0x" + bytes(sig.signature).hex())


def recover_request(req: SignedRequest, domain: ExchangeDomain) -> str:
    """The checksummed address that signed ``req``; it must equal ``req.signer``.

    Raises:
        BadRequestSignature: malformed signature (length, ``v``, high ``s``) or another signer.
    """
    sig = bytes.fromhex(req.signature[2:])
    if len(sig) != 65 or sig[64] not in (27, 28) or int.from_bytes(sig[32:64], "big") > SECP256K1_N // 2:
        raise BadRequestSignature("malformed signature (want 65 bytes r||s||v, v in {27, 28}, low s)")
    try:
        signer = Account._recover_hash(request_digest(req.action, req.payload, req.nonce, req.expiry, domain),
                                       signature=sig)
    except Exception:  # eth-keys: r/s out of range, no curve point
        raise BadRequestSignature("signature does not recover to any address") from None
    if signer != req.signer:
        raise BadRequestSignature(f"signature recovers to {signer}, not to signer {req.signer}", signer)
    return signer


# --------------------------------------------------------------------------- payload models


def _wei(v: Any) -> int:
    """Accept an int or a decimal string (JSON clients that cannot hold 256-bit ints) as wei."""
    if isinstance(v, bool):
        raise ValueError("wei amounts are integers, not booleans")
    if isinstance(v, str) and re.fullmatch(r"[0-9]{1,78}", v):
        return int(v)
    if isinstance(v, int):
        return v
    raise ValueError("wei amounts are integers (or decimal strings)")


#: A wei amount: JSON int or decimal string, Python ``int``.
WeiIn = Annotated[int, BeforeValidator(_wei)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Offer(_Payload):
    """A provider's standing offer: prices in wei per resource-second, resources offered."""

    price_per_cpu_s_wei: WeiIn = Field(ge=0)
    price_per_gpu_s_wei: WeiIn = Field(default=0, ge=0)
    cpus: int = Field(ge=0, le=1_000_000)
    gpus: int = Field(default=0, ge=0, le=100_000)
    gpu_model: str | None = Field(default=None, max_length=64)
    memory_bytes: int = Field(ge=0, le=2**60)
    speed: float = Field(default=1.0, gt=0, le=1000)
    price_per_constraint_wei: WeiIn = Field(default=0, ge=0, lt=2**62)
    price_per_sentence_wei: WeiIn = Field(default=0, ge=0, lt=2**62)


class RegisterPayload(_Payload):
    """``provider.register``: name (bound to its first address), offer, hardware description, Ray address."""

    name: str = Field(pattern=ID_PATTERN)
    offer: Offer
    hardware: dict[str, Any] = Field(default_factory=dict)
    ray_address: str | None = Field(default=None, max_length=256)

    @field_validator("hardware")
    @classmethod
    def _small(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(canonical_json(v)) > 16_384:
            raise ValueError("hardware description over 16 KiB")
        return v


class HeartbeatPayload(_Payload):
    """``provider.heartbeat``: the provider's name, whether it drains, the jobs it is running."""

    name: str = Field(pattern=ID_PATTERN)
    draining: bool = False
    running: list[str] = Field(default_factory=list, max_length=10_000)


class PollPayload(_Payload):
    """``lease.poll``: up to ``max_leases`` new leases, waiting up to ``wait_s`` seconds for one."""

    name: str = Field(pattern=ID_PATTERN)
    max_leases: int = Field(default=1, ge=1, le=100)
    wait_s: float = Field(default=0.0, ge=0.0, le=MAX_POLL_WAIT_S)


class CompletePayload(_Payload):
    """``lease.complete``: the result bytes (base64), their keccak-256, the EIP-712 attestation signature."""

    lease_id: str = Field(pattern=ID_PATTERN)
    job_id: str = Field(pattern=ID_PATTERN)
    result_b64: str
    result_hash: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")
    logs: list[str] = Field(default_factory=list, max_length=MAX_LOG_LINES)


class CompleteBatchPayload(_Payload):
    """``lease.complete_batch``: several ``lease.complete`` items in one signed request (at most
    :data:`MAX_BATCH_UPLOADS`)."""

    items: list[CompletePayload] = Field(min_length=1, max_length=MAX_BATCH_UPLOADS)


class ChallengeAnswerPayload(_Payload):
    """``challenge.answer``: the provider's answer to a speed challenge (canonical proof bytes, base64)."""

    name: str = Field(pattern=ID_PATTERN)
    challenge_id: str = Field(pattern=ID_PATTERN)
    result_b64: str = Field(max_length=65_536)


class FailPayload(_Payload):
    """``lease.fail``: the provider gives a lease back (the job is re-auctioned without it)."""

    lease_id: str = Field(pattern=ID_PATTERN)
    job_id: str = Field(pattern=ID_PATTERN)
    reason: str = Field(default="", max_length=2000)
    logs: list[str] = Field(default_factory=list, max_length=MAX_LOG_LINES)


class JobSpecIn(_Payload):
    """A job as a client submits it (``job.submit``'s ``spec``; ``POST /v1/quote``'s ``spec``).

    ``inference``: ``input_b64`` (UTF-8 text, one sentence per line). ``proof``: ``circuit`` (``mimc7``),
    ``rounds``, ``preimage`` (decimal string; the witness, given to the provider that proves it); or
    ``circuit`` = a registered circuit id (sha256 hex of its zkey, ``raymarket circuit add``) with
    ``witness_b64`` (a snarkjs ``.wtns``; the client's secret, given only to the provider that proves it) and
    optionally ``public`` (the public signals the client expects; refused at intake when the witness's differ);
    or, instead of ``witness_b64``, ``input_json`` (the circuit's input JSON, ``market.core.circuit_input``) for
    a circuit registered with its wasm: the provider computes the witness.
    """

    kind: Literal["inference", "proof"]
    input_b64: str | None = None
    circuit: str | None = Field(default=None, pattern=r"^(mimc7|[0-9a-f]{64})$")
    witness_b64: str | None = None
    input_json: str | None = Field(default=None, max_length=1024 * 1024)
    public: list[str] | None = Field(default=None, max_length=10_000)
    rounds: int | None = Field(default=None, ge=1, le=10_000)
    preimage: str | None = Field(default=None, pattern=r"^[0-9]{1,78}$")
    max_price_wei: WeiIn = Field(gt=0)
    deadline_s: float = Field(default=3600.0, gt=0, le=30 * 86400)
    cpus: int = Field(default=1, ge=0, le=10_000)
    gpus: int = Field(default=0, ge=0, le=1000)
    gpu_model: str | None = Field(default=None, max_length=64)
    memory_bytes: int = Field(default=0, ge=0, le=2**50)
    collateral_wei: WeiIn = Field(default=0, ge=0)
    #: ``proof`` | ``spot-check:RATE`` | ``attest-only`` (``market.core.policy``); None: the kind's default.
    verification: str | None = Field(default=None, max_length=64)
    job_id: str | None = Field(default=None, pattern=ID_PATTERN)

    @model_validator(mode="after")
    def _kind_fields(self) -> "JobSpecIn":
        if self.kind == "inference" and not self.input_b64:
            raise ValueError("an inference job needs input_b64")
        if self.kind == "proof" and self.circuit not in (None, "mimc7"):
            if bool(self.witness_b64) == bool(self.input_json):
                raise ValueError("a proof job on a registered circuit needs witness_b64 (a .wtns) or input_json "
                                 "(the circuit's input), not both")
        elif self.kind == "proof" and (self.circuit is None or self.rounds is None or self.preimage is None):
            raise ValueError("a proof job needs circuit, rounds and preimage")
        if self.cpus == 0 and self.gpus == 0:
            raise ValueError("a job needs at least one CPU or one GPU")
        return self


class SubmitPayload(_Payload):
    """``job.submit``: ``{"spec": JobSpecIn}``."""

    spec: JobSpecIn


class SubmitBatchPayload(_Payload):
    """``job.submit_batch``: ``{"specs": [JobSpecIn, ...]}`` (at most :data:`MAX_BATCH_SUBMITS`)."""

    specs: list[JobSpecIn] = Field(min_length=1, max_length=MAX_BATCH_SUBMITS)


class JobRefPayload(_Payload):
    """``job.cancel`` / ``job.result`` / ``job.logs``: the job (must equal the one in the path)."""

    job_id: str = Field(pattern=ID_PATTERN)


class BalancePayload(_Payload):
    """``account.balance``: no fields (the signer's own balance)."""


class ClaimPayload(_Payload):
    """``account.claim``: no fields (the signer's own claim against the Vault's current epoch root)."""


class FaucetPayload(_Payload):
    """``dev.faucet`` (development only): credit ``amount_wei`` to the signer; ``bond_wei`` to its provider."""

    amount_wei: WeiIn = Field(default=0, ge=0)
    bond_wei: WeiIn = Field(default=0, ge=0)
    provider_name: str | None = Field(default=None, pattern=ID_PATTERN)


class WithdrawPayload(_Payload):
    """``account.withdraw``: make ``amount_wei`` of the signer's free balance claimable from the Vault (from the
    next epoch root on; then ``Vault.claim`` with the proof of ``POST /v1/claims``, signed ``account.claim``)."""

    amount_wei: WeiIn = Field(gt=0)


class CircuitAddPayload(_Payload):
    """``circuit.add``: a snarkjs Groth16 ``.zkey`` (base64), optionally its circom witness-calculator wasm
    (base64) and a display name."""

    zkey_b64: str
    wasm_b64: str | None = None
    name: str | None = Field(default=None, pattern=ID_PATTERN)


class CircuitUploadPayload(_Payload):
    """``circuit.upload`` (``POST /v1/circuits/upload``, streamed): the signed request travels in the header
    ``X-Raymarket-Request`` (compact JSON of :class:`SignedRequest`); the body is the zkey bytes followed by the
    wasm bytes (``application/octet-stream``), ``zkey_size + wasm_size`` bytes in all, each checked against its
    sha256 here."""

    zkey_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    zkey_size: int = Field(ge=1, le=2**40)
    wasm_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    wasm_size: int = Field(default=0, ge=0, le=2**40)
    name: str | None = Field(default=None, pattern=ID_PATTERN)

    @model_validator(mode="after")
    def _wasm(self) -> "CircuitUploadPayload":
        if (self.wasm_sha256 is None) != (self.wasm_size == 0):
            raise ValueError("wasm_sha256 and wasm_size go together")
        return self


#: Header of a streamed upload's signed request (``circuit.upload``).
UPLOAD_REQUEST_HEADER = "x-raymarket-request"


#: The payload model of each action.
PAYLOADS: dict[str, type[BaseModel]] = {
    Action.PROVIDER_REGISTER: RegisterPayload, Action.PROVIDER_HEARTBEAT: HeartbeatPayload,
    Action.LEASE_POLL: PollPayload, Action.LEASE_COMPLETE: CompletePayload,
    Action.LEASE_COMPLETE_BATCH: CompleteBatchPayload, Action.LEASE_FAIL: FailPayload,
    Action.JOB_SUBMIT: SubmitPayload, Action.JOB_SUBMIT_BATCH: SubmitBatchPayload,
    Action.JOB_CANCEL: JobRefPayload, Action.JOB_RESULT: JobRefPayload,
    Action.JOB_LOGS: JobRefPayload, Action.ACCOUNT_BALANCE: BalancePayload, Action.DEV_FAUCET: FaucetPayload,
    Action.ACCOUNT_WITHDRAW: WithdrawPayload, Action.ACCOUNT_CLAIM: ClaimPayload, Action.CIRCUIT_ADD: CircuitAddPayload,
    Action.CIRCUIT_UPLOAD: CircuitUploadPayload, Action.CHALLENGE_ANSWER: ChallengeAnswerPayload,
}
