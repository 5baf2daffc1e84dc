// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice A Groth16 verifier for one circuit (BN254, EIP-196/197 precompiles).
/// Proof words: [A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0, C.x, C.y] (G2 in precompile order).
interface IGroth16Verifier {
    function verify(uint256[8] calldata proof, uint256[] calldata pubSignals) external view returns (bool);
}

/// @title Settlement: batched EIP-712 attestations of compute jobs, one Merkle root per batch.
/// @notice Operators submit a Merkle root over attestation leaves per batch; anyone verifies a
/// leaf's inclusion with a view; during a challenge window (in blocks) anyone may challenge a leaf:
/// (a) its provider signature does not recover to the named provider, (b) the Groth16 proof it
/// commits to fails the on-chain pairing check, (c) its job id was already settled in an earlier
/// batch. After the window anyone may finalise the batch.
/// @dev Leaf = keccak256(bytes.concat(keccak256(abi.encode(structHash, keccak256(signature),
/// proofCommitment)))) (double-hashed leaves as in OpenZeppelin StandardMerkleTree); the tree uses
/// sorted-pair keccak256 (OpenZeppelin MerkleProof / Hashes.commutativeKeccak256).
/// EIP-712 domain: name "raymarket", version "1", chainId, verifyingContract = this contract.
contract Settlement {
    // ------------------------------------------------------------------ types
    struct Attestation {
        bytes32 jobId;
        bytes32 inputHash;
        bytes32 resultHash;
        address provider;
        uint256 priceWei;
        uint8 kind; // 0 = inference, 1 = proof
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
        "Attestation(bytes32 jobId,bytes32 inputHash,bytes32 resultHash,address provider,uint256 priceWei,uint8 kind)"
    );
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    uint8 public constant KIND_INFERENCE = 0;
    uint8 public constant KIND_PROOF = 1;
    /// @dev secp256k1n / 2 (EIP-2: signatures with a higher s are malleable and rejected).
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    /// @notice Longest inclusion proof accepted (a tree of 2^64 leaves), so proof loops stay bounded.
    uint256 public constant MAX_PROOF_DEPTH = 64;

    // ------------------------------------------------------------------ state
    address public owner;
    uint64 public challengeWindowBlocks;
    uint64 public verifyGasLimit;
    uint64 public batchCount;
    mapping(address => bool) public isOperator;
    mapping(bytes32 => address) public verifiers; // circuitId => verifier
    mapping(bytes32 => Batch) private _batches;
    mapping(bytes32 => mapping(bytes32 => Reason)) public challenged; // batchId => leaf => reason

    // ------------------------------------------------------------------ events
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event OperatorSet(address indexed operator, bool enabled);
    event ChallengeWindowSet(uint64 blocks);
    event VerifyGasLimitSet(uint64 gas);
    event VerifierRegistered(bytes32 indexed circuitId, address verifier);
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
    error NotOwner(address caller);
    error NotOperator(address caller);
    error ZeroAddress();
    error InvalidParameter(string name);
    error EmptyBatch(bytes32 batchId);
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
    error ProofCommitmentMismatch(bytes32 jobId);
    error UnknownCircuit(bytes32 circuitId);
    error InsufficientVerifyGas(uint256 available, uint256 required);
    error VerifierReverted(bytes32 circuitId);
    error ProofValid(bytes32 jobId);
    error SameBatch(bytes32 batchId);
    error JobIdMismatch(bytes32 firstJobId, bytes32 duplicateJobId);
    error NotLaterBatch(bytes32 firstBatchId, bytes32 duplicateBatchId);
    error ProofTooLong(uint256 length, uint256 maxLength);

    // ------------------------------------------------------------------ admin
    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    modifier onlyOperator() {
        if (!isOperator[msg.sender]) revert NotOperator(msg.sender);
        _;
    }

    /// @param challengeWindowBlocks_ blocks after the submission block during which challenges are accepted.
    /// @param verifyGasLimit_ gas forwarded to a Groth16 verifier (a challenge needs at least this much left).
    constructor(uint64 challengeWindowBlocks_, uint64 verifyGasLimit_) {
        if (verifyGasLimit_ < 100_000) revert InvalidParameter("verifyGasLimit");
        owner = msg.sender;
        challengeWindowBlocks = challengeWindowBlocks_;
        verifyGasLimit = verifyGasLimit_;
        emit OwnershipTransferred(address(0), msg.sender);
        emit ChallengeWindowSet(challengeWindowBlocks_);
        emit VerifyGasLimitSet(verifyGasLimit_);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    function setOperator(address operator, bool enabled) external onlyOwner {
        if (operator == address(0)) revert ZeroAddress();
        isOperator[operator] = enabled;
        emit OperatorSet(operator, enabled);
    }

    /// @notice Applies to batches submitted afterwards (each batch stores its own deadline).
    function setChallengeWindow(uint64 blocks) external onlyOwner {
        challengeWindowBlocks = blocks;
        emit ChallengeWindowSet(blocks);
    }

    function setVerifyGasLimit(uint64 gasLimit) external onlyOwner {
        if (gasLimit < 100_000) revert InvalidParameter("verifyGasLimit");
        verifyGasLimit = gasLimit;
        emit VerifyGasLimitSet(gasLimit);
    }

    function registerVerifier(bytes32 circuitId, address verifier) external onlyOwner {
        if (verifier == address(0)) revert ZeroAddress();
        verifiers[circuitId] = verifier;
        emit VerifierRegistered(circuitId, verifier);
    }

    // ------------------------------------------------------------------ batches
    /// @notice Record one batch: the Merkle root of `leafCount` attestation leaves paying `totalPaidWei` in all.
    /// @dev A retry with the same id and root reverts BatchAlreadySubmitted (callers treat it as done);
    /// the same id with another root reverts BatchIdConflict.
    function submitBatch(bytes32 batchId, bytes32 root, uint64 leafCount, uint256 totalPaidWei)
        external
        onlyOperator
    {
        if (root == bytes32(0) || leafCount == 0) revert EmptyBatch(batchId);
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
    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("raymarket"), keccak256("1"), block.chainid, address(this))
        );
    }

    /// @notice EIP-712 hashStruct(Attestation).
    function attestationStructHash(Attestation calldata a) public pure returns (bytes32) {
        return keccak256(
            abi.encode(ATTESTATION_TYPEHASH, a.jobId, a.inputHash, a.resultHash, a.provider, a.priceWei, a.kind)
        );
    }

    /// @notice The EIP-712 digest a provider signs.
    function attestationDigest(Attestation calldata a) public view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), attestationStructHash(a)));
    }

    /// @notice The signer of `signature` over `a`, or address(0) when the signature is malformed
    /// (length != 65, v not 27/28, s > secp256k1n/2).
    function recoverSigner(Attestation calldata a, bytes calldata signature) public view returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > HALF_N || (v != 27 && v != 28)) return address(0);
        return ecrecover(attestationDigest(a), v, r, s);
    }

    function leafHash(Leaf calldata leaf) public pure returns (bytes32) {
        bytes32 inner = keccak256(
            abi.encode(attestationStructHash(leaf.att), keccak256(leaf.signature), leaf.proofCommitment)
        );
        return keccak256(bytes.concat(inner));
    }

    /// @notice Whether `leaf` (a leaf hash) is in batch `batchId` (false for an unknown batch).
    function verifyInclusion(bytes32 batchId, bytes32 leaf, bytes32[] calldata proof) public view returns (bool) {
        bytes32 root = _batches[batchId].root;
        return root != bytes32(0) && _processProof(proof, leaf) == root;
    }

    /// @notice Whether the attestation leaf is in batch `batchId` and was not successfully challenged.
    function verifyAttestation(bytes32 batchId, Leaf calldata leaf, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        bytes32 h = leafHash(leaf);
        return verifyInclusion(batchId, h, proof) && challenged[batchId][h] == Reason.None;
    }

    // ------------------------------------------------------------------ challenges
    /// @notice Challenge (a): the leaf's signature does not recover to its provider.
    function challengeSignature(bytes32 batchId, Leaf calldata leaf, bytes32[] calldata proof) external {
        bytes32 h = _challengeable(batchId, leaf, proof);
        if (recoverSigner(leaf.att, leaf.signature) == leaf.att.provider) {
            revert SignatureValid(leaf.att.jobId, leaf.att.provider);
        }
        _mark(batchId, h, leaf.att, Reason.BadSignature);
    }

    /// @notice Challenge (b): the Groth16 proof committed in a proof job's leaf fails the circuit's verifier.
    /// @dev The verifier gets exactly `verifyGasLimit` gas, so a challenger cannot starve the pairing
    /// precompile to fake a failure; a verifier that reverts proves nothing (VerifierReverted).
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
        if (keccak256(abi.encode(circuitId, grothProof, pubSignals)) != leaf.proofCommitment) {
            revert ProofCommitmentMismatch(leaf.att.jobId);
        }
        address verifier = verifiers[circuitId];
        if (verifier == address(0)) revert UnknownCircuit(circuitId);
        if (_verifies(verifier, circuitId, grothProof, pubSignals)) revert ProofValid(leaf.att.jobId);
        _mark(batchId, h, leaf.att, Reason.BadProof);
    }

    /// @notice Challenge (c): `dup`'s job id was already in an earlier batch (`first`); marks `dup`.
    function challengeDuplicate(
        bytes32 firstBatchId,
        Leaf calldata first,
        bytes32[] calldata firstProof,
        bytes32 batchId,
        Leaf calldata dup,
        bytes32[] calldata dupProof
    ) external {
        if (firstBatchId == batchId) revert SameBatch(batchId);
        bytes32 h = _challengeable(batchId, dup, dupProof);
        bytes32 firstLeaf = leafHash(first);
        if (!verifyInclusion(firstBatchId, firstLeaf, firstProof)) revert NotIncluded(firstBatchId, firstLeaf);
        if (first.att.jobId != dup.att.jobId) revert JobIdMismatch(first.att.jobId, dup.att.jobId);
        if (_batches[firstBatchId].seq >= _batches[batchId].seq) revert NotLaterBatch(firstBatchId, batchId);
        _mark(batchId, h, dup.att, Reason.Duplicate);
    }

    // ------------------------------------------------------------------ internals
    function _existing(bytes32 batchId) private view returns (Batch storage b) {
        b = _batches[batchId];
        if (b.root == bytes32(0)) revert UnknownBatch(batchId);
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
        if (_processProof(proof, h) != b.root) revert NotIncluded(batchId, h);
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
        uint256 limit = verifyGasLimit;
        // EIP-150: a call gets at most 63/64 of the gas left; require enough that `limit` is really forwarded.
        uint256 required = limit + limit / 63 + 5_000;
        if (gasleft() < required) revert InsufficientVerifyGas(gasleft(), required);
        try IGroth16Verifier(verifier).verify{gas: limit}(grothProof, pubSignals) returns (bool ok) {
            return ok;
        } catch {
            revert VerifierReverted(circuitId);
        }
    }

    /// @dev OpenZeppelin MerkleProof.processProofCalldata with commutative (sorted-pair) keccak256.
    function _processProof(bytes32[] calldata proof, bytes32 leaf) private pure returns (bytes32 computed) {
        if (proof.length > MAX_PROOF_DEPTH) revert ProofTooLong(proof.length, MAX_PROOF_DEPTH);
        computed = leaf;
        for (uint256 i = 0; i < proof.length; i++) {
            bytes32 p = proof[i];
            computed = computed < p ? _efficientHash(computed, p) : _efficientHash(p, computed);
        }
    }

    function _efficientHash(bytes32 a, bytes32 b) private pure returns (bytes32 value) {
        assembly ("memory-safe") {
            mstore(0x00, a)
            mstore(0x20, b)
            value := keccak256(0x00, 0x40)
        }
    }
}
