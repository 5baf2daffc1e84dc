// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @notice A Groth16 verifier for one circuit (BN254, EIP-196/197 precompiles).
/// Proof words: [A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0, C.x, C.y] (G2 in precompile order).
interface IGroth16Verifier {
    function verify(uint256[8] calldata proof, uint256[] calldata pubSignals) external view returns (bool);
}

/// @notice The verifier's number of public inputs (KeyedGroth16Verifier.nPublic); the verify gas floor derives from it.
interface IPublicInputCount {
    function nPublic() external view returns (uint256);
}

/// @title Settlement: batched EIP-712 attestations of compute jobs, one Merkle root per batch.
/// @notice Operators submit a Merkle root over attestation leaves per batch; anyone verifies a
/// leaf's inclusion with a view; during a challenge window (in blocks) anyone may challenge a leaf:
/// (a) its provider signature does not recover to the named provider (or the provider is address 0),
/// (b) the Groth16 proof it commits to fails the on-chain pairing check, (c) its job id was already
/// settled, in an earlier batch or earlier in the same batch. (b) applies only to leaves of the `proof` verification
/// policy; (a) and (c) to every policy, attest-only included (its signature is all it has). After the window anyone may finalise the batch.
/// Money lives in the sibling `Vault`, which reads this contract's challenge marks (`Vault.slashChallenged`).
/// @dev Leaves are OpenZeppelin StandardMerkleTree leaves of the values
/// (bytes32 structHash, bytes32 keccak256(signature), bytes32 proofCommitment):
/// leaf = keccak256(bytes.concat(keccak256(abi.encode(values)))); the tree is a StandardMerkleTree
/// (sorted leaves, complete binary tree, sorted-pair keccak256), verified with OpenZeppelin `MerkleProof`.
/// EIP-712 domain (OpenZeppelin `EIP712`): name "raymarket", version "1", chainId, verifyingContract = this.
contract Settlement is Ownable, Pausable, EIP712 {
    // ------------------------------------------------------------------ types
    struct Attestation {
        bytes32 jobId;
        bytes32 inputHash;
        bytes32 resultHash;
        address provider;
        uint256 priceWei;
        uint8 kind; // 0 = inference, 1 = proof
        uint8 verification; // the job's policy: 0 = proof, 1 = spot-check, 2 = attest-only
        uint32 sampleRatePpm; // spot-check rate in parts per million (1..1_000_000), 0 for the other policies
    }

    /// @notice A leaf's preimage: the attestation, its provider signature (65 bytes r||s||v) and,
    /// for proof jobs, keccak256(abi.encode(circuitId, uint256[8] proof, uint256[] pubSignals)).
    struct Leaf {
        Attestation att;
        bytes signature;
        bytes32 proofCommitment;
    }

    struct Batch {
        bytes32 root;
        uint256 totalPaidWei;
        uint64 leafCount;
        uint64 seq; // 1-based submission order
        uint64 deadlineBlock; // last block in which a challenge is accepted
        uint32 challengedCount;
        bool finalized;
    }

    enum Reason {
        None,
        BadSignature,
        BadProof,
        Duplicate
    }

    // ------------------------------------------------------------------ constants
    bytes32 public constant ATTESTATION_TYPEHASH = keccak256(
        "Attestation(bytes32 jobId,bytes32 inputHash,bytes32 resultHash,address provider,uint256 priceWei,uint8 kind,"
        "uint8 verification,uint32 sampleRatePpm)"
    );
    uint8 public constant KIND_INFERENCE = 0;
    uint8 public constant KIND_PROOF = 1;
    uint8 public constant VERIFICATION_PROOF = 0;
    uint8 public constant VERIFICATION_SPOT_CHECK = 1;
    uint8 public constant VERIFICATION_ATTEST_ONLY = 2;
    /// @notice Largest batch: 2^32 leaves (inclusion proofs of at most 33 hashes).
    uint64 public constant MAX_LEAF_COUNT = 2 ** 32;
    /// @notice Longest inclusion proof accepted, so proof loops stay bounded.
    uint256 public constant MAX_PROOF_DEPTH = 64;
    /// @notice Challenge window bounds, in blocks: 0 would make batches unchallengeable, a huge one overflows.
    uint64 public constant MIN_CHALLENGE_WINDOW_BLOCKS = 1;
    uint64 public constant MAX_CHALLENGE_WINDOW_BLOCKS = 1_000_000;
    /// @notice Verifier gas floor: VERIFY_GAS_BASE + VERIFY_GAS_PER_INPUT * nPublic (4-pairing check 181k,
    /// key reads, and per public input one ecMul 6k + ecAdd 150 + two key reads), with margin.
    uint64 public constant VERIFY_GAS_BASE = 260_000;
    uint64 public constant VERIFY_GAS_PER_INPUT = 14_000;
    uint64 public constant MAX_PUBLIC_INPUTS = 1_000;
    /// @notice Bounds of the global verify gas limit (a challenge must fit in a block).
    uint64 public constant MIN_VERIFY_GAS_LIMIT = 100_000;
    uint64 public constant MAX_VERIFY_GAS_LIMIT = 15_000_000;

    // ------------------------------------------------------------------ state
    uint64 public challengeWindowBlocks;
    uint64 public verifyGasLimit;
    uint64 public batchCount;
    mapping(address => bool) public isOperator;
    mapping(bytes32 => address) public verifiers; // circuitId => verifier
    mapping(bytes32 => uint64) public verifierPublicInputs; // circuitId => nPublic at registration
    mapping(bytes32 => Batch) private _batches;
    mapping(bytes32 => mapping(bytes32 => Reason)) public challenged; // batchId => leaf => reason

    // ------------------------------------------------------------------ events
    event OperatorSet(address indexed operator, bool enabled);
    event ChallengeWindowSet(uint64 blocks);
    event VerifyGasLimitSet(uint64 gas);
    event VerifierRegistered(bytes32 indexed circuitId, address verifier, uint64 nPublic, uint64 gasLimit);
    event BatchSubmitted(
        bytes32 indexed batchId,
        bytes32 root,
        uint64 leafCount,
        uint256 totalPaidWei,
        uint64 seq,
        uint64 deadlineBlock,
        address operator
    );
    event LeafChallenged(
        bytes32 indexed batchId,
        bytes32 indexed leaf,
        bytes32 indexed jobId,
        address provider,
        uint8 reason,
        address challenger
    );
    event BatchFinalized(bytes32 indexed batchId, uint32 challengedCount);

    // ------------------------------------------------------------------ errors
    error NotOperator(address caller);
    error ZeroAddress();
    error InvalidChallengeWindow(uint64 blocks, uint64 minBlocks, uint64 maxBlocks);
    error InvalidVerifyGasLimit(uint64 gasLimit, uint64 minGas, uint64 maxGas);
    error TooManyPublicInputs(address verifier, uint256 nPublic);
    error EmptyBatch(bytes32 batchId);
    error TooManyLeaves(uint64 leafCount, uint64 maxLeafCount);
    error BatchAlreadySubmitted(bytes32 batchId, bytes32 root);
    error BatchIdConflict(bytes32 batchId, bytes32 existingRoot);
    error UnknownBatch(bytes32 batchId);
    error NotIncluded(bytes32 batchId, bytes32 leaf);
    error ChallengeWindowClosed(bytes32 batchId, uint64 deadlineBlock);
    error ChallengeWindowOpen(bytes32 batchId, uint64 deadlineBlock);
    error AlreadyFinalized(bytes32 batchId);
    error LeafAlreadyChallenged(bytes32 batchId, bytes32 leaf, uint8 reason);
    error SignatureValid(bytes32 jobId, address provider);
    error NotAProofJob(bytes32 jobId, uint8 kind);
    error NotProofPolicy(bytes32 jobId, uint8 verification);
    error ProofCommitmentMismatch(bytes32 jobId);
    error UnknownCircuit(bytes32 circuitId);
    error PublicInputCountMismatch(address verifier, uint256 reported, uint256 given);
    error InsufficientVerifyGas(uint256 available, uint256 required);
    error VerifierReverted(bytes32 circuitId);
    error ProofValid(bytes32 jobId);
    error JobIdMismatch(bytes32 firstJobId, bytes32 duplicateJobId);
    error NotLaterBatch(bytes32 firstBatchId, bytes32 duplicateBatchId);
    error NotLaterLeaf(bytes32 firstLeaf, bytes32 duplicateLeaf);
    error FirstLeafInvalid(bytes32 firstBatchId, bytes32 firstLeaf, uint8 reason);
    error ProofTooLong(uint256 length, uint256 maxLength);

    // ------------------------------------------------------------------ admin
    modifier onlyOperator() {
        if (!isOperator[msg.sender]) revert NotOperator(msg.sender);
        _;
    }

    /// @param challengeWindowBlocks_ blocks after the submission block during which challenges are accepted,
    /// in [MIN_CHALLENGE_WINDOW_BLOCKS, MAX_CHALLENGE_WINDOW_BLOCKS].
    /// @param verifyGasLimit_ gas forwarded to a Groth16 verifier, at least 100k (raised per circuit to its floor).
    constructor(uint64 challengeWindowBlocks_, uint64 verifyGasLimit_)
        Ownable(msg.sender)
        EIP712("raymarket", "1")
    {
        _setChallengeWindow(challengeWindowBlocks_);
        _setVerifyGasLimit(verifyGasLimit_);
    }

    function setOperator(address operator, bool enabled) external onlyOwner {
        if (operator == address(0)) revert ZeroAddress();
        isOperator[operator] = enabled;
        emit OperatorSet(operator, enabled);
    }

    /// @notice Applies to batches submitted afterwards (each batch stores its own deadline).
    function setChallengeWindow(uint64 blocks) external onlyOwner {
        _setChallengeWindow(blocks);
    }

    function setVerifyGasLimit(uint64 gasLimit) external onlyOwner {
        _setVerifyGasLimit(gasLimit);
    }

    /// @notice Register the verifier of `circuitId` with its number of public inputs `nPublic`, from which the
    /// gas it gets in a challenge is floored (`verifyGasFor`). A verifier that reports its own count
    /// (`nPublic()`, as KeyedGroth16Verifier does) must agree; one that does not (a snarkjs-style export) is
    /// taken at the owner's word.
    function registerVerifier(bytes32 circuitId, address verifier, uint64 nPublic) external onlyOwner {
        if (verifier == address(0)) revert ZeroAddress();
        if (nPublic > MAX_PUBLIC_INPUTS) revert TooManyPublicInputs(verifier, nPublic);
        try IPublicInputCount(verifier).nPublic() returns (uint256 reported) {
            if (reported != nPublic) revert PublicInputCountMismatch(verifier, reported, nPublic);
        } catch {}
        verifiers[circuitId] = verifier;
        verifierPublicInputs[circuitId] = nPublic;
        emit VerifierRegistered(circuitId, verifier, nPublic, verifyGasFor(circuitId));
    }

    /// @notice Stop new batches (challenges and finalisation go on).
    function pause() external onlyOwner {
        _pause();
    }

    function unpause() external onlyOwner {
        _unpause();
    }

    // ------------------------------------------------------------------ batches
    /// @notice Record one batch: the Merkle root of `leafCount` attestation leaves paying `totalPaidWei` in all.
    /// @dev A retry with the same id and root reverts BatchAlreadySubmitted (callers treat it as done);
    /// the same id with another root reverts BatchIdConflict. `leafCount` fixes the tree shape: an inclusion
    /// proof whose length does not fit a StandardMerkleTree of `leafCount` leaves is refused, so a batch
    /// that misstates it has unverifiable leaves. `totalPaidWei` is the operator's declaration, audited
    /// off-chain against the ledger; `verifyAttestation` refuses a leaf priced above it.
    function submitBatch(bytes32 batchId, bytes32 root, uint64 leafCount, uint256 totalPaidWei)
        external
        onlyOperator
        whenNotPaused
    {
        if (root == bytes32(0) || leafCount == 0) revert EmptyBatch(batchId);
        if (leafCount > MAX_LEAF_COUNT) revert TooManyLeaves(leafCount, MAX_LEAF_COUNT);
        Batch storage b = _batches[batchId];
        if (b.root != bytes32(0)) {
            if (b.root == root) revert BatchAlreadySubmitted(batchId, root);
            revert BatchIdConflict(batchId, b.root);
        }
        uint64 seq = ++batchCount;
        uint64 deadline = uint64(block.number) + challengeWindowBlocks;
        b.root = root;
        b.totalPaidWei = totalPaidWei;
        b.leafCount = leafCount;
        b.seq = seq;
        b.deadlineBlock = deadline;
        emit BatchSubmitted(batchId, root, leafCount, totalPaidWei, seq, deadline, msg.sender);
    }

    /// @notice Close a batch after its challenge window (anyone may call).
    function finalizeBatch(bytes32 batchId) external {
        Batch storage b = _existing(batchId);
        if (b.finalized) revert AlreadyFinalized(batchId);
        if (block.number <= b.deadlineBlock) revert ChallengeWindowOpen(batchId, b.deadlineBlock);
        b.finalized = true;
        emit BatchFinalized(batchId, b.challengedCount);
    }

    function getBatch(bytes32 batchId) external view returns (Batch memory) {
        return _batches[batchId];
    }

    // ------------------------------------------------------------------ views
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice Gas given to the verifier of `circuitId`: max(verifyGasLimit, the floor for its public inputs).
    function verifyGasFor(bytes32 circuitId) public view returns (uint64) {
        uint64 floor = VERIFY_GAS_BASE + VERIFY_GAS_PER_INPUT * verifierPublicInputs[circuitId];
        return floor > verifyGasLimit ? floor : verifyGasLimit;
    }

    /// @notice EIP-712 hashStruct(Attestation).
    function attestationStructHash(Attestation calldata a) public pure returns (bytes32) {
        return keccak256(
            abi.encode(
                ATTESTATION_TYPEHASH,
                a.jobId,
                a.inputHash,
                a.resultHash,
                a.provider,
                a.priceWei,
                a.kind,
                a.verification,
                a.sampleRatePpm
            )
        );
    }

    /// @notice The EIP-712 digest a provider signs.
    function attestationDigest(Attestation calldata a) public view returns (bytes32) {
        return _hashTypedDataV4(attestationStructHash(a));
    }

    /// @notice The signer of `signature` over `a` (OpenZeppelin ECDSA), or address(0) when the signature is
    /// malformed (length != 65, v not 27/28, s > secp256k1n/2, no point).
    function recoverSigner(Attestation calldata a, bytes calldata signature) public view returns (address) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(attestationDigest(a), signature);
        return err == ECDSA.RecoverError.NoError ? signer : address(0);
    }

    /// @notice Whether the leaf's signature is good: provider != 0 and the signature recovers to it.
    function signatureValid(Leaf calldata leaf) public view returns (bool) {
        address provider = leaf.att.provider;
        return provider != address(0) && recoverSigner(leaf.att, leaf.signature) == provider;
    }

    /// @notice keccak256(abi.encode(structHash, keccak256(signature), proofCommitment)): the leaf before its
    /// second hash (what `verifyInclusion` takes).
    function leafInnerHash(Leaf calldata leaf) public pure returns (bytes32) {
        return keccak256(abi.encode(attestationStructHash(leaf.att), keccak256(leaf.signature), leaf.proofCommitment));
    }

    /// @notice The tree leaf: keccak256(bytes.concat(leafInnerHash(leaf))).
    function leafHash(Leaf calldata leaf) public pure returns (bytes32) {
        return keccak256(bytes.concat(leafInnerHash(leaf)));
    }

    /// @notice Whether the leaf whose inner hash is `innerHash` (see `leafInnerHash`) is in batch `batchId`
    /// (false for an unknown batch, or a proof whose length no leaf of the batch's tree has).
    /// @dev The contract hashes `innerHash` once more itself, so an internal node of the tree passed here is
    /// not taken for a leaf (its hash is not in the tree).
    function verifyInclusion(bytes32 batchId, bytes32 innerHash, bytes32[] calldata proof) public view returns (bool) {
        return _included(batchId, keccak256(bytes.concat(innerHash)), proof);
    }

    /// @notice Whether the attestation leaf is in batch `batchId`, not successfully challenged, and priced
    /// within the batch's declared total.
    function verifyAttestation(bytes32 batchId, Leaf calldata leaf, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        bytes32 h = leafHash(leaf);
        return _included(batchId, h, proof) && challenged[batchId][h] == Reason.None
            && leaf.att.priceWei <= _batches[batchId].totalPaidWei;
    }

    // ------------------------------------------------------------------ challenges
    /// @notice Challenge (a): the leaf names provider address(0), or its signature does not recover to its
    /// provider (a malformed signature recovers to address(0)).
    function challengeSignature(bytes32 batchId, Leaf calldata leaf, bytes32[] calldata proof) external {
        bytes32 h = _challengeable(batchId, leaf, proof);
        if (signatureValid(leaf)) revert SignatureValid(leaf.att.jobId, leaf.att.provider);
        _mark(batchId, h, leaf.att, Reason.BadSignature);
    }

    /// @notice Challenge (b): the Groth16 proof committed in a proof job's leaf fails the circuit's verifier.
    /// Only a leaf whose provider signed the `proof` policy (verification 0) and kind proof: a spot-check or
    /// attest-only leaf was never promised the pairing check (NotProofPolicy). Challenges (a) and (c) take
    /// leaves of every policy.
    /// @dev The verifier gets exactly `verifyGasFor(circuitId)` gas, so a challenger cannot starve it; a
    /// verifier that reverts (KeyedGroth16Verifier reverts when it lacks gas for a precompile) proves nothing
    /// (VerifierReverted).
    function challengeProof(
        bytes32 batchId,
        Leaf calldata leaf,
        bytes32[] calldata proof,
        bytes32 circuitId,
        uint256[8] calldata grothProof,
        uint256[] calldata pubSignals
    ) external {
        bytes32 h = _challengeable(batchId, leaf, proof);
        if (leaf.att.kind != KIND_PROOF) revert NotAProofJob(leaf.att.jobId, leaf.att.kind);
        if (leaf.att.verification != VERIFICATION_PROOF) revert NotProofPolicy(leaf.att.jobId, leaf.att.verification);
        if (keccak256(abi.encode(circuitId, grothProof, pubSignals)) != leaf.proofCommitment) {
            revert ProofCommitmentMismatch(leaf.att.jobId);
        }
        address verifier = verifiers[circuitId];
        if (verifier == address(0)) revert UnknownCircuit(circuitId);
        if (_verifies(verifier, circuitId, grothProof, pubSignals)) revert ProofValid(leaf.att.jobId);
        _mark(batchId, h, leaf.att, Reason.BadProof);
    }

    /// @notice Challenge (c): `dup`'s job id was already settled by `first`, a validly signed, unchallenged
    /// leaf of an earlier batch, or of the same batch with a smaller leaf hash (so of two copies in one batch
    /// exactly one can be marked); marks `dup`.
    function challengeDuplicate(
        bytes32 firstBatchId,
        Leaf calldata first,
        bytes32[] calldata firstProof,
        bytes32 batchId,
        Leaf calldata dup,
        bytes32[] calldata dupProof
    ) external {
        bytes32 h = _challengeable(batchId, dup, dupProof);
        bytes32 firstLeaf = leafHash(first);
        if (!_included(firstBatchId, firstLeaf, firstProof)) revert NotIncluded(firstBatchId, firstLeaf);
        if (first.att.jobId != dup.att.jobId) revert JobIdMismatch(first.att.jobId, dup.att.jobId);
        Reason firstReason = challenged[firstBatchId][firstLeaf];
        if (firstReason != Reason.None) revert FirstLeafInvalid(firstBatchId, firstLeaf, uint8(firstReason));
        if (!signatureValid(first)) revert FirstLeafInvalid(firstBatchId, firstLeaf, uint8(Reason.BadSignature));
        if (firstBatchId == batchId) {
            if (firstLeaf >= h) revert NotLaterLeaf(firstLeaf, h);
        } else if (_batches[firstBatchId].seq >= _batches[batchId].seq) {
            revert NotLaterBatch(firstBatchId, batchId);
        }
        _mark(batchId, h, dup.att, Reason.Duplicate);
    }

    // ------------------------------------------------------------------ internals
    function _setChallengeWindow(uint64 blocks) private {
        if (blocks < MIN_CHALLENGE_WINDOW_BLOCKS || blocks > MAX_CHALLENGE_WINDOW_BLOCKS) {
            revert InvalidChallengeWindow(blocks, MIN_CHALLENGE_WINDOW_BLOCKS, MAX_CHALLENGE_WINDOW_BLOCKS);
        }
        challengeWindowBlocks = blocks;
        emit ChallengeWindowSet(blocks);
    }

    function _setVerifyGasLimit(uint64 gasLimit) private {
        if (gasLimit < MIN_VERIFY_GAS_LIMIT || gasLimit > MAX_VERIFY_GAS_LIMIT) {
            revert InvalidVerifyGasLimit(gasLimit, MIN_VERIFY_GAS_LIMIT, MAX_VERIFY_GAS_LIMIT);
        }
        verifyGasLimit = gasLimit;
        emit VerifyGasLimitSet(gasLimit);
    }

    function _existing(bytes32 batchId) private view returns (Batch storage b) {
        b = _batches[batchId];
        if (b.root == bytes32(0)) revert UnknownBatch(batchId);
    }

    /// @dev Leaf hash `leaf` is in batch `batchId` by `proof`, and the proof's length is a leaf depth of a
    /// StandardMerkleTree of the batch's leafCount n: floor(log2 n) or floor(log2 (2n - 1)).
    function _included(bytes32 batchId, bytes32 leaf, bytes32[] calldata proof) private view returns (bool) {
        if (proof.length > MAX_PROOF_DEPTH) revert ProofTooLong(proof.length, MAX_PROOF_DEPTH);
        Batch storage b = _batches[batchId];
        bytes32 root = b.root;
        if (root == bytes32(0)) return false;
        uint256 n = b.leafCount;
        if (proof.length != Math.log2(n) && proof.length != Math.log2(2 * n - 1)) return false;
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @dev Checks shared by every challenge; returns the leaf hash.
    function _challengeable(bytes32 batchId, Leaf calldata leaf, bytes32[] calldata proof)
        private
        view
        returns (bytes32 h)
    {
        Batch storage b = _existing(batchId);
        if (b.finalized) revert AlreadyFinalized(batchId);
        if (block.number > b.deadlineBlock) revert ChallengeWindowClosed(batchId, b.deadlineBlock);
        h = leafHash(leaf);
        if (!_included(batchId, h, proof)) revert NotIncluded(batchId, h);
        Reason prior = challenged[batchId][h];
        if (prior != Reason.None) revert LeafAlreadyChallenged(batchId, h, uint8(prior));
    }

    function _mark(bytes32 batchId, bytes32 h, Attestation calldata att, Reason reason) private {
        challenged[batchId][h] = reason;
        _batches[batchId].challengedCount += 1;
        emit LeafChallenged(batchId, h, att.jobId, att.provider, uint8(reason), msg.sender);
    }

    function _verifies(
        address verifier,
        bytes32 circuitId,
        uint256[8] calldata grothProof,
        uint256[] calldata pubSignals
    ) private view returns (bool) {
        uint256 limit = verifyGasFor(circuitId);
        // EIP-150: a call gets at most 63/64 of the gas left; require enough that `limit` is really forwarded.
        uint256 required = limit + limit / 63 + 5_000;
        if (gasleft() < required) revert InsufficientVerifyGas(gasleft(), required);
        try IGroth16Verifier(verifier).verify{gas: limit}(grothProof, pubSignals) returns (bool ok) {
            return ok;
        } catch {
            revert VerifierReverted(circuitId);
        }
    }
}
