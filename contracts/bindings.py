"""Thin typed bindings over the compiled artifacts: load, deploy, call, transact, decode reverts and events.

Transactions are built from the ABI locally, signed locally and sent raw (:class:`contracts.chain.Chain`);
a revert (at gas estimation, at send, or in a mined transaction, replayed with ``eth_call``) becomes
:class:`contracts.errors.ContractReverted` carrying the Solidity custom error's name and decoded arguments.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from eth_abi import decode as abi_decode
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from web3.logs import DISCARD

from contracts.attestation import Eip712Domain
from contracts.chain import Chain
from contracts.errors import ArtifactMissing, ContractReverted, ContractsError

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: ABI and creation bytecode (0x-hex)."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str


@lru_cache(maxsize=None)
def load_artifact(name: str) -> Artifact:
    """Load ``contracts/artifacts/<name>.json``.

    Raises:
        ArtifactMissing: when the file is absent.
    """
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.exists():
        raise ArtifactMissing(name)
    data = json.loads(path.read_text())
    return Artifact(name, data["abi"], data["bytecode"])


def _abi_type(entry: dict[str, Any]) -> str:
    if entry["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in entry["components"]) + ")" + entry["type"][5:]
    return entry["type"]


def _error_table(abi: list[dict[str, Any]]) -> dict[bytes, tuple[str, list[str]]]:
    table = {}
    for e in abi:
        if e["type"] == "error":
            types = [_abi_type(i) for i in e["inputs"]]
            table[keccak(f"{e['name']}({','.join(types)})".encode())[:4]] = (e["name"], types)
    return table


def _normalise(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        return to_checksum_address(value)
    if isinstance(value, (list, tuple)):
        return tuple(_normalise(v) for v in value)
    return value


def decode_revert(abi: list[dict[str, Any]], data: bytes) -> tuple[str, tuple]:
    """Decode revert data with the ABI's custom errors, ``Error(string)`` and ``Panic(uint256)``.

    Returns:
        ``(error name, args)``; ``("", ())`` for empty or unknown data.
    """
    if len(data) < 4:
        return "", ()
    selector, body = data[:4], data[4:]
    if selector == _ERROR_STRING:
        return "Error", tuple(abi_decode(["string"], body))
    if selector == _PANIC:
        return "Panic", tuple(abi_decode(["uint256"], body))
    known = _error_table(abi).get(selector)
    if known is None:
        return "", ()
    name, types = known
    return name, _normalise(tuple(abi_decode(types, body)))


def revert_data(exc: BaseException) -> bytes | None:
    """Dig the revert data out of a web3 / eth-tester exception (``None`` when it has none)."""
    candidates: list[Any] = [getattr(exc, "data", None), *getattr(exc, "args", ())]
    for c in candidates:
        if isinstance(c, dict):
            c = c.get("data")
        if isinstance(c, (bytes, bytearray)) and len(c) >= 4:
            return bytes(c)
        if isinstance(c, str) and re.fullmatch(r"0x(?:[0-9a-fA-F]{2}){4,}", c):  # web3: the raw revert data
            return bytes.fromhex(c[2:])
        if isinstance(c, str) and "revert" in c.lower():  # not e.g. "insufficient funds ... address 0x..."
            lit = re.search(r"""execution reverted: (b'.*'|b".*")$""", c, re.S)
            if lit:  # eth-tester: the raw revert bytes as a Python literal
                value = ast.literal_eval(lit.group(1))
                if len(value) >= 4:
                    return value
            m = re.search(r"0x[0-9a-fA-F]{8,}", c)
            if m:
                return bytes.fromhex(m.group(0)[2:])
    return None


class ContractHandle:
    """A deployed contract: ``call`` views, ``transact`` state changes, decode events.

    Attributes:
        chain: the :class:`Chain`; address: checksummed; contract: the web3 contract object.
    """

    def __init__(self, chain: Chain, artifact: Artifact, address: str) -> None:
        self.chain = chain
        self.artifact = artifact
        self.address = to_checksum_address(address)
        self.contract = chain.w3.eth.contract(address=self.address, abi=artifact.abi)

    def _reverted(self, exc: BaseException, tx_hash: str | None = None) -> ContractsError:
        data = revert_data(exc)
        if data is None:
            return ContractReverted("", (), tx_hash) if "revert" in str(exc).lower() else ContractsError(str(exc))
        name, args = decode_revert(self.artifact.abi, data)
        return ContractReverted(name, args, tx_hash, data)

    def call(self, fn: str, *args: Any, block: Any = "latest") -> Any:
        """Call a view function.

        Raises:
            ContractReverted: with the decoded custom error.
        """
        try:
            return getattr(self.contract.functions, fn)(*args).call(block_identifier=block)
        except Exception as exc:
            raise self._reverted(exc) from None

    def encode(self, fn: str, *args: Any) -> str:
        """ABI-encoded calldata (0x-hex) of ``fn(*args)``."""
        return self.contract.encode_abi(fn, args=list(args))

    def transact(self, private_key: str | bytes, fn: str, *args: Any, gas: int | None = None,
                 value: int = 0) -> Any:
        """Send ``fn(*args)`` from ``private_key``'s account, with ``value`` wei attached; wait for and return
        the receipt.

        With ``gas`` given: 2 RPC calls (send, receipt). Without: one ``eth_estimateGas`` first
        (which also surfaces a revert before anything is sent), gas limit = 1.2 x estimate + 10k.
        Raises:
            ContractReverted: the call reverted (``tx_hash`` set when the revert was mined).
        """
        account = self.chain.account(private_key)
        tx = {"to": self.address, "data": self.encode(fn, *args), "value": int(value)}
        if gas is None:
            try:
                gas = int(self.chain.w3.eth.estimate_gas({"from": account.address, **tx}) * 1.2) + 10_000
            except Exception as exc:
                raise self._reverted(exc) from None
        return send_transaction(self.chain, account, {**tx, "gas": gas}, on_revert=self._reverted)

    def events(self, receipt: Any, event: str) -> list[Any]:
        """Decoded logs of ``event`` in ``receipt`` (web3 ``process_receipt``)."""
        return list(getattr(self.contract.events, event)().process_receipt(receipt, errors=DISCARD))


def send_transaction(chain: Chain, account: Any, tx: dict[str, Any], on_revert: Any = None) -> Any:
    """Sign ``tx`` locally, send it raw, wait for the receipt; a mined revert is replayed to get its reason."""
    for attempt in (0, 1):
        raw, tx_hash = chain.sign_tx(account, tx)
        try:
            chain.send_raw(raw)
            break
        except Exception as exc:
            chain.forget_nonce(account.address)
            if attempt == 0 and "nonce" in str(exc).lower():
                continue  # another sender used this key: re-read the nonce once
            if on_revert is None:
                raise
            raise on_revert(exc) from None
    receipt = chain.wait(tx_hash)
    if receipt["status"] == 1:
        return receipt
    replay = {"from": account.address, **{k: tx[k] for k in ("to", "data", "gas", "value") if k in tx}}
    try:
        chain.w3.eth.call(replay, block_identifier=receipt["blockNumber"])  # alone in its automined block: same pre-state
    except Exception as exc:
        err = on_revert(exc, tx_hash) if on_revert else exc
        raise err from None
    raise ContractReverted("", (), tx_hash)


def deploy(chain: Chain, name: str | Artifact, private_key: str | bytes, *args: Any,
           gas: int | None = None) -> ContractHandle:
    """Deploy artifact ``name`` (or an :class:`Artifact`, e.g. a generated verifier) with constructor ``args``
    from ``private_key``; returns its handle.

    Raises:
        ArtifactMissing, ContractReverted.
    """
    artifact = name if isinstance(name, Artifact) else load_artifact(name)
    factory = chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    data = factory.constructor(*args).data_in_transaction
    account = chain.account(private_key)
    decode = lambda exc, tx_hash=None: ContractReverted(*decode_revert(artifact.abi, revert_data(exc) or b""), tx_hash)  # noqa: E731
    if gas is None:
        try:
            gas = int(chain.w3.eth.estimate_gas({"from": account.address, "data": data}) * 1.2) + 50_000
        except Exception as exc:  # a constructor revert (e.g. a parameter out of bounds)
            if revert_data(exc) is None and "revert" not in str(exc).lower():
                raise
            raise decode(exc) from None
    receipt = send_transaction(chain, account, {"data": data, "gas": gas}, on_revert=decode)
    return ContractHandle(chain, artifact, receipt["contractAddress"])


def at(chain: Chain, name: str, address: str) -> ContractHandle:
    """Handle on an already deployed contract ``name`` at ``address``."""
    return ContractHandle(chain, load_artifact(name), address)


def g1_words(point: Sequence[int] | None) -> list[int]:
    """A G1 affine point as 2 uint256 words (infinity = (0, 0))."""
    return [0, 0] if point is None else [int(point[0]), int(point[1])]


def g2_words(point: Any) -> list[int]:
    """A G2 affine point in py_ecc order ``((x.c0, x.c1), (y.c0, y.c1))`` as EIP-197 words ``[x.c1, x.c0, y.c1, y.c0]``."""
    if point is None:
        return [0, 0, 0, 0]
    (x0, x1), (y0, y1) = point
    return [int(x1), int(x0), int(y1), int(y0)]


# ---------------------------------------------------------------------- Settlement
#: Gas limit for ``submitBatch`` (measured ~100k for a new batch; constant in the batch size).
SUBMIT_BATCH_GAS = 200_000
DEFAULT_CHALLENGE_WINDOW_BLOCKS = 20
DEFAULT_VERIFY_GAS_LIMIT = 600_000


@dataclass(frozen=True)
class OnchainBatch:
    """``Settlement.getBatch``: ``root`` is 32 zero bytes when the batch is unknown."""

    root: bytes
    total_paid_wei: int
    leaf_count: int
    seq: int
    deadline_block: int
    challenged_count: int
    finalized: bool

    @property
    def exists(self) -> bool:
        return self.root != bytes(32)


class SettlementContract(ContractHandle):
    """Typed calls of ``contracts/Settlement.sol``.

    Owner-only calls by another account revert ``OwnableUnauthorizedAccount`` (OpenZeppelin ``Ownable``);
    ``submitBatch`` while paused reverts ``EnforcedPause``. Leaves are :class:`contracts.attestation.AttestationLeaf` (anything with ``abi_tuple()``); ids, roots and
    hashes are 32-byte ``bytes``; amounts are wei ``int``; every state change returns the receipt and raises
    :class:`ContractReverted` (``error_name`` = the contract's custom error) on revert.
    """

    def __init__(self, chain: Chain, address: str) -> None:
        super().__init__(chain, load_artifact("Settlement"), address)

    @classmethod
    def deploy(cls, chain: Chain, owner_key: str | bytes,
               challenge_window_blocks: int = DEFAULT_CHALLENGE_WINDOW_BLOCKS,
               verify_gas_limit: int = DEFAULT_VERIFY_GAS_LIMIT) -> "SettlementContract":
        """Deploy a Settlement owned by ``owner_key``'s account."""
        handle = deploy(chain, "Settlement", owner_key, challenge_window_blocks, verify_gas_limit)
        return cls(chain, handle.address)

    @property
    def domain(self) -> Any:
        """The :class:`contracts.attestation.Eip712Domain` providers sign under for this deployment."""
        return Eip712Domain(self.chain.chain_id, self.address)

    # admin
    def set_operator(self, owner_key: str | bytes, operator: str, enabled: bool = True) -> Any:
        return self.transact(owner_key, "setOperator", to_checksum_address(operator), enabled)

    def register_verifier(self, owner_key: str | bytes, circuit_id: bytes, verifier: str,
                          n_public: int | None = None) -> Any:
        """Register ``verifier`` for ``circuit_id`` with its public-input count ``n_public`` (the challenge gas
        floor derives from it). ``None``: read it from the verifier's ``nPublic()`` (KeyedGroth16Verifier).

        Raises:
            ContractsError: ``n_public`` is None and the verifier does not report it (a snarkjs-style export).
            ContractReverted: ``PublicInputCountMismatch`` (the verifier reports another count), ``ZeroAddress``.
        """
        verifier = to_checksum_address(verifier)
        if n_public is None:
            try:
                n_public = ContractHandle(self.chain, load_artifact("KeyedGroth16Verifier"), verifier).call("nPublic")
            except ContractsError:
                raise ContractsError(f"verifier {verifier} does not report nPublic(); pass n_public") from None
        return self.transact(owner_key, "registerVerifier", circuit_id, verifier, n_public)

    def set_challenge_window(self, owner_key: str | bytes, blocks: int) -> Any:
        """Blocks in [1, 1_000_000], else ``InvalidChallengeWindow(blocks, 1, 1_000_000)``."""
        return self.transact(owner_key, "setChallengeWindow", blocks)

    # batches
    def submit_batch(self, operator_key: str | bytes, batch_id: bytes, root: bytes, leaf_count: int,
                     total_paid_wei: int, gas: int | None = SUBMIT_BATCH_GAS) -> Any:
        """Record a batch root (2 RPC calls with the default fixed gas limit)."""
        return self.transact(operator_key, "submitBatch", batch_id, root, leaf_count, total_paid_wei, gas=gas)

    def finalize_batch(self, key: str | bytes, batch_id: bytes) -> Any:
        return self.transact(key, "finalizeBatch", batch_id)

    def get_batch(self, batch_id: bytes, block: Any = "latest") -> OnchainBatch:
        r = self.call("getBatch", batch_id, block=block)
        return OnchainBatch(bytes(r[0]), r[1], r[2], r[3], r[4], r[5], r[6])

    # views
    def verify_inclusion(self, batch_id: bytes, leaf: Any, proof: Sequence[bytes]) -> bool:
        """Whether ``leaf`` is in batch ``batch_id`` by ``proof`` (``Settlement.verifyInclusion``).

        ``leaf``: an :class:`contracts.attestation.AttestationLeaf` (anything with ``inner_hash``) or its
        32-byte inner hash ``keccak256(abi.encode(values))``; the contract hashes it once more, so a leaf *hash*
        (or an internal node) passed as ``leaf`` is not found.
        """
        inner = leaf if isinstance(leaf, (bytes, bytearray)) else leaf.inner_hash
        return self.call("verifyInclusion", batch_id, bytes(inner), list(proof))

    def verify_attestation(self, batch_id: bytes, leaf: Any, proof: Sequence[bytes]) -> bool:
        return self.call("verifyAttestation", batch_id, leaf.abi_tuple(), list(proof))

    def leaf_hash(self, leaf: Any) -> bytes:
        return bytes(self.call("leafHash", leaf.abi_tuple()))

    def recover_signer(self, attestation: Any, signature: bytes) -> str:
        """The signer (OpenZeppelin ECDSA), the zero address for a malformed signature."""
        return self.call("recoverSigner", attestation.abi_tuple(), signature)

    def signature_valid(self, leaf: Any) -> bool:
        """Provider != 0 and the signature recovers to it (what ``challengeSignature`` refutes)."""
        return self.call("signatureValid", leaf.abi_tuple())

    def verify_gas_for(self, circuit_id: bytes) -> int:
        """Gas the circuit's verifier gets in ``challengeProof``: max(global limit, floor from its public inputs)."""
        return self.call("verifyGasFor", circuit_id)

    def pause(self, owner_key: str | bytes) -> Any:
        """Stop new batches (challenges and finalisation go on)."""
        return self.transact(owner_key, "pause")

    def unpause(self, owner_key: str | bytes) -> Any:
        return self.transact(owner_key, "unpause")

    def attestation_digest(self, attestation: Any) -> bytes:
        return bytes(self.call("attestationDigest", attestation.abi_tuple()))

    def challenge_reason(self, batch_id: bytes, leaf_hash: bytes) -> int:
        """0 = not challenged, 1 = bad signature, 2 = bad proof, 3 = duplicate."""
        return self.call("challenged", batch_id, leaf_hash)

    # challenges
    def challenge_signature(self, key: str | bytes, batch_id: bytes, leaf: Any, proof: Sequence[bytes]) -> Any:
        return self.transact(key, "challengeSignature", batch_id, leaf.abi_tuple(), list(proof))

    def challenge_proof(self, key: str | bytes, batch_id: bytes, leaf: Any, proof: Sequence[bytes],
                        circuit_id: bytes, groth_proof: Sequence[int], pub_signals: Sequence[int],
                        gas: int | None = None) -> Any:
        """Challenge (b). ``gas`` skips the estimate (which runs the pairing once more); it must leave the
        contract's ``verifyGasLimit`` (+1/63) for the verifier or the call reverts ``InsufficientVerifyGas``."""
        return self.transact(key, "challengeProof", batch_id, leaf.abi_tuple(), list(proof), circuit_id,
                             list(groth_proof), list(pub_signals), gas=gas)

    def challenge_duplicate(self, key: str | bytes, first_batch_id: bytes, first_leaf: Any,
                            first_proof: Sequence[bytes], batch_id: bytes, leaf: Any, proof: Sequence[bytes]) -> Any:
        return self.transact(key, "challengeDuplicate", first_batch_id, first_leaf.abi_tuple(), list(first_proof),
                             batch_id, leaf.abi_tuple(), list(proof))
