"""EIP-712 attestations of completed jobs: the typed data a provider signs, and its settlement leaf.

Typed data (EIP-712, https://eips.ethereum.org/EIPS/eip-712)::

    EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)
        name = "raymarket", version = "1", verifyingContract = the Settlement contract
    Attestation(bytes32 jobId,bytes32 inputHash,bytes32 resultHash,address provider,uint256 priceWei,uint8 kind,
                uint8 verification,uint32 sampleRatePpm)

``verification`` is the job's verification policy (issue 13, ``market.core.policy``): 0 ``proof`` (the Groth16
pairing check), 1 ``spot-check:RATE`` (re-execution of a secret sample on another provider), 2 ``attest-only``
(signature and collateral only). ``sampleRatePpm`` is the spot-check RATE in parts per million (1..1_000_000;
policies have at most 6 decimals, so it is exact) and 0 for the other two. The provider signs the policy it was
leased under, so the exchange cannot settle the job under another one, and ``Settlement.challengeProof`` takes
only ``proof``-policy leaves.

A provider signs ``keccak256(0x1901 || domainSeparator || hashStruct(attestation))`` with its secp256k1 key
(65-byte ``r || s || v`` signature, low ``s`` per EIP-2). The settlement leaf commits to the attestation, the
signature and, for proof jobs, the Groth16 proof and public signals (``proof_commitment``); its hash is
``keccak256(keccak256(abi.encode(structHash, keccak256(signature), proofCommitment)))``, exactly as
``Settlement.leafHash`` computes it: the OpenZeppelin StandardMerkleTree leaf of the values
``(bytes32, bytes32, bytes32)`` (see :mod:`contracts.merkle`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Sequence

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import is_address, to_checksum_address

from contracts.merkle import hash_leaf

ZERO32 = bytes(32)
ATTESTATION_TYPE = (
    "Attestation(bytes32 jobId,bytes32 inputHash,bytes32 resultHash,address provider,uint256 priceWei,uint8 kind,"
    "uint8 verification,uint32 sampleRatePpm)"
)
ATTESTATION_TYPEHASH = keccak(ATTESTATION_TYPE.encode())
#: The struct before the policy fields (until session 19): only to tell an outdated agent's signature apart
#: (:func:`legacy_digest`); nothing is signed or settled under it any more.
LEGACY_ATTESTATION_TYPE = (
    "Attestation(bytes32 jobId,bytes32 inputHash,bytes32 resultHash,address provider,uint256 priceWei,uint8 kind)"
)
#: ``sampleRatePpm`` of a rate of 1 (every row re-executed).
PPM = 1_000_000
DOMAIN_TYPEHASH = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
DOMAIN_NAME = "raymarket"
DOMAIN_VERSION = "1"
#: secp256k1 group order n (SEC 2); signatures with s > n/2 are rejected (EIP-2).
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
UINT256_MAX = 2**256 - 1


class AttestationError(ValueError):
    """Root of attestation errors: a field of an attestation or signature is malformed."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field_name = field_name


class JobKind(enum.IntEnum):
    """The ``kind`` field of an attestation (uint8 on chain)."""

    INFERENCE = 0
    PROOF = 1


class Verification(enum.IntEnum):
    """The ``verification`` field of an attestation (uint8 on chain): the job's verification policy."""

    PROOF = 0
    SPOT_CHECK = 1
    ATTEST_ONLY = 2


def _bytes32(value: bytes, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise AttestationError(name, f"must be 32 bytes, got {value!r:.80}")
    return bytes(value)


#: Domain separator of on-chain job ids: ``jobId = keccak256(JOB_ID_DOMAIN || utf-8(job id))``.
JOB_ID_DOMAIN = b"raymarket.attestation.jobId.v1\x00"


def job_id_bytes32(job_id: bytes | str) -> bytes:
    """Map an exchange job id (a string) to the 32-byte ``jobId`` of an attestation.

    ``keccak256(JOB_ID_DOMAIN || utf-8(job_id))`` for every string: no string is ever taken as the bytes32
    itself (issue 14 finding 4: a client-chosen ``"0x" + keccak(victim)`` or another spelling of a victim's
    UUID mapped to the victim's jobId), so distinct ids never share a jobId. 32 raw bytes are taken as an
    already-derived jobId and pass through.

    Raises:
        AttestationError: not a str or 32 bytes.
    """
    if isinstance(job_id, (bytes, bytearray)):
        return _bytes32(job_id, "job_id")
    if not isinstance(job_id, str):
        raise AttestationError("job_id", f"must be a str, got {type(job_id).__name__}")
    return keccak(JOB_ID_DOMAIN + job_id.encode("utf-8"))


@dataclass(frozen=True)
class Eip712Domain:
    """The EIP-712 domain of a Settlement deployment (chain id + contract address)."""

    chain_id: int
    verifying_contract: str
    name: str = DOMAIN_NAME
    version: str = DOMAIN_VERSION

    def __post_init__(self) -> None:
        if not is_address(self.verifying_contract):
            raise AttestationError("verifying_contract", f"not an address: {self.verifying_contract!r}")
        object.__setattr__(self, "verifying_contract", to_checksum_address(self.verifying_contract))

    @property
    def separator(self) -> bytes:
        """``hashStruct(EIP712Domain)``, 32 bytes."""
        return keccak(
            abi_encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [DOMAIN_TYPEHASH, keccak(self.name.encode()), keccak(self.version.encode()), self.chain_id,
                 self.verifying_contract],
            )
        )


@dataclass(frozen=True)
class Attestation:
    """What a provider attests for one job.

    Attributes:
        job_id, input_hash, result_hash: 32 bytes each (see :func:`job_id_bytes32`).
        provider: the provider's address (checksummed on construction).
        price_wei: the cleared price paid for the job, in wei (uint256).
        kind: :class:`JobKind`.
        verification: :class:`Verification`, the job's policy (no default: the signer must name it).
        sample_rate_ppm: spot-check rate in parts per million, 1..1_000_000 for ``SPOT_CHECK``, else 0 (uint32).
    Raises:
        AttestationError: naming the malformed field (also a rate given with another policy than spot-check,
            or a spot-check without one).
    """

    job_id: bytes
    input_hash: bytes
    result_hash: bytes
    provider: str
    price_wei: int
    kind: JobKind
    verification: Verification
    sample_rate_ppm: int = 0

    def __post_init__(self) -> None:
        for name in ("job_id", "input_hash", "result_hash"):
            object.__setattr__(self, name, _bytes32(getattr(self, name), name))
        if not is_address(self.provider):
            raise AttestationError("provider", f"not an address: {self.provider!r}")
        object.__setattr__(self, "provider", to_checksum_address(self.provider))
        if isinstance(self.price_wei, bool) or not isinstance(self.price_wei, int) or not 0 <= self.price_wei <= UINT256_MAX:
            raise AttestationError("price_wei", f"must be an int wei amount in [0, 2**256), got {self.price_wei!r}")
        try:
            object.__setattr__(self, "kind", JobKind(self.kind))
        except ValueError:
            raise AttestationError("kind", f"must be 0 (inference) or 1 (proof), got {self.kind!r}") from None
        try:
            if isinstance(self.verification, bool):
                raise ValueError
            object.__setattr__(self, "verification", Verification(self.verification))
        except ValueError:
            raise AttestationError("verification", "must be 0 (proof), 1 (spot-check) or 2 (attest-only), got "
                                                   f"{self.verification!r}") from None
        ppm = self.sample_rate_ppm
        if isinstance(ppm, bool) or not isinstance(ppm, int):
            raise AttestationError("sample_rate_ppm", f"must be an int, got {ppm!r}")
        if self.verification == Verification.SPOT_CHECK and not 1 <= ppm <= PPM:
            raise AttestationError("sample_rate_ppm", f"a spot-check rate is 1..{PPM} ppm, got {ppm}")
        if self.verification != Verification.SPOT_CHECK and ppm != 0:
            raise AttestationError("sample_rate_ppm", f"must be 0 for {self.verification.name.lower()}, got {ppm}")

    def abi_tuple(self) -> tuple:
        """The ``Attestation`` struct as an ABI tuple."""
        return (self.job_id, self.input_hash, self.result_hash, self.provider, self.price_wei, int(self.kind),
                int(self.verification), self.sample_rate_ppm)


def struct_hash(att: Attestation) -> bytes:
    """EIP-712 ``hashStruct(Attestation)``."""
    return keccak(
        abi_encode(["bytes32", "bytes32", "bytes32", "bytes32", "address", "uint256", "uint8", "uint8", "uint32"],
                   [ATTESTATION_TYPEHASH, *att.abi_tuple()])
    )


def legacy_digest(att: Attestation, domain: Eip712Domain) -> bytes:
    """The digest ``att`` had under :data:`LEGACY_ATTESTATION_TYPE` (its policy fields left out): what an agent
    from before the policy fields signs. Used only to name that case in a refusal."""
    legacy = keccak(abi_encode(["bytes32", "bytes32", "bytes32", "bytes32", "address", "uint256", "uint8"],
                               [keccak(LEGACY_ATTESTATION_TYPE.encode()), *att.abi_tuple()[:6]]))
    return keccak(b"\x19\x01" + domain.separator + legacy)


def attestation_digest(att: Attestation, domain: Eip712Domain) -> bytes:
    """The 32-byte EIP-712 digest ``keccak256(0x1901 || domainSeparator || hashStruct(att))``."""
    return keccak(b"\x19\x01" + domain.separator + struct_hash(att))


@dataclass(frozen=True)
class SignedAttestation:
    """An attestation with its provider's 65-byte ``r || s || v`` signature under ``domain``."""

    attestation: Attestation
    signature: bytes
    domain: Eip712Domain


def sign_attestation(att: Attestation, private_key: bytes | str, domain: Eip712Domain) -> SignedAttestation:
    """Sign ``att`` under ``domain`` with a secp256k1 key (32 bytes or 0x-hex).

    Raises:
        AttestationError: when the key does not belong to ``att.provider``.
    """
    account = Account.from_key(private_key)
    if account.address != att.provider:
        raise AttestationError("private_key", f"belongs to {account.address}, not to provider {att.provider}")
    signed = Account.unsafe_sign_hash(attestation_digest(att, domain), private_key)
    return SignedAttestation(att, bytes(signed.signature), domain)


def recover_signer(att: Attestation, signature: bytes, domain: Eip712Domain) -> str | None:
    """The checksummed address that signed ``att`` under ``domain``; ``None`` for a malformed signature.

    Same rules as ``Settlement.recoverSigner``: 65 bytes, ``v`` in {27, 28}, ``s <= n/2``.
    """
    return recover_digest_signer(attestation_digest(att, domain), signature)


def recover_digest_signer(digest: bytes, signature: bytes) -> str | None:
    """The checksummed signer of a 32-byte ``digest`` (rules of :func:`recover_signer`), or ``None``."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        return None
    if int.from_bytes(signature[32:64], "big") > SECP256K1_N // 2:
        return None
    try:
        return Account._recover_hash(digest, signature=bytes(signature))
    except Exception:  # eth-keys raises BadSignature for r/s out of range or no point
        return None


def proof_commitment(circuit_id: bytes, proof: Sequence[int], pub_signals: Sequence[int]) -> bytes:
    """``keccak256(abi.encode(bytes32 circuitId, uint256[8] proof, uint256[] pubSignals))``.

    ``proof`` words: ``[A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0, C.x, C.y]`` (EIP-197 G2 order).
    """
    if len(proof) != 8:
        raise AttestationError("proof", f"needs 8 uint256 words, got {len(proof)}")
    return keccak(abi_encode(["bytes32", "uint256[8]", "uint256[]"],
                             [_bytes32(circuit_id, "circuit_id"), list(proof), list(pub_signals)]))


@dataclass(frozen=True)
class AttestationLeaf:
    """One settlement leaf: a signed attestation and its proof commitment (zero for inference jobs)."""

    signed: SignedAttestation
    proof_commitment: bytes = field(default=ZERO32)

    def __post_init__(self) -> None:
        _bytes32(self.proof_commitment, "proof_commitment")

    @property
    def preimage(self) -> bytes:
        """``abi.encode(structHash, keccak256(signature), proofCommitment)``."""
        return abi_encode(["bytes32", "bytes32", "bytes32"],
                          [struct_hash(self.signed.attestation), keccak(self.signed.signature), self.proof_commitment])

    @property
    def inner_hash(self) -> bytes:
        """``keccak256(preimage)`` (``Settlement.leafInnerHash``): what ``Settlement.verifyInclusion`` takes."""
        return keccak(self.preimage)

    @property
    def hash(self) -> bytes:
        """The leaf hash ``keccak256(inner_hash)`` (``Settlement.leafHash``; a StandardMerkleTree leaf)."""
        return hash_leaf(self.preimage)

    def abi_tuple(self) -> tuple:
        """The ``Leaf`` struct as an ABI tuple ``(attestation, signature, proofCommitment)``."""
        return (self.signed.attestation.abi_tuple(), self.signed.signature, self.proof_commitment)
