// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Baseline for benchmarks/settlement.py: one transaction per attestation, each stored and logged.
/// Not deployed by the market; compiled by the benchmark at run time.
contract NaiveAttestations {
    struct Attestation {
        bytes32 jobId;
        bytes32 inputHash;
        bytes32 resultHash;
        address provider;
        uint256 priceWei;
        uint8 kind;
        uint8 verification;
        uint32 sampleRatePpm;
    }

    mapping(bytes32 => bytes32) public attested; // jobId => keccak256(attestation, signature)

    event Attested(bytes32 indexed jobId, address indexed provider, uint256 priceWei);

    error AlreadyAttested(bytes32 jobId);

    function attest(Attestation calldata a, bytes calldata signature) external {
        if (attested[a.jobId] != bytes32(0)) revert AlreadyAttested(a.jobId);
        attested[a.jobId] = keccak256(abi.encode(a, signature));
        emit Attested(a.jobId, a.provider, a.priceWei);
    }
}
