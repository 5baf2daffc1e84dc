// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title KeyedGroth16Verifier: a Groth16 (BN254) verifier whose verification key is set at deployment.
/// @notice One deployment per circuit, no code generation: the key lives in storage. Same interface as a
/// snarkjs-exported verifier: `verify(uint256[8] proof, uint256[] pubSignals) returns (bool)` with proof words
/// [A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0, C.x, C.y] (G2 coordinates in EIP-197 order: imaginary, real).
/// @dev Checks e(-A, B) * e(alpha, beta) * e(L, gamma) * e(C, delta) == 1 with
/// L = IC[0] + sum_i pubSignals[i] * IC[i + 1] (Groth16, EUROCRYPT 2016; EIP-196 add/mul 0x06/0x07,
/// EIP-197 pairing 0x08). Returns false for a malformed proof or signal (a coordinate out of range, a
/// point off the curve or outside the subgroup: the precompile fails although it was given all the gas it
/// costs); reverts `InsufficientGas` when the gas left cannot pay a precompile call (so starving the verifier
/// never turns a valid proof into `false`) and `PrecompileMissing` when the chain lacks the precompile.
contract KeyedGroth16Verifier {
    uint256 private constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;
    uint256 private constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @dev EIP-1108 (Istanbul) precompile prices: ecAdd 150, ecMul 6000, pairing 45000 + 34000 per pair.
    uint256 private constant EC_ADD_GAS = 150;
    uint256 private constant EC_MUL_GAS = 6_000;
    uint256 private constant PAIRING_4_GAS = 45_000 + 4 * 34_000;

    uint256[2] private _alpha;
    uint256[4] private _beta;
    uint256[4] private _gamma;
    uint256[4] private _delta;
    uint256[] private _ic; // 2 words per point

    error BadKey(string field);
    /// @notice Less than `required` gas was left for a precompile call (the call would have failed for gas).
    error InsufficientGas(uint256 available, uint256 required);
    error PrecompileMissing(uint8 precompile);

    /// @param alpha G1 (x, y); beta, gamma, delta G2 (x.c1, x.c0, y.c1, y.c0); ic flattened G1 points (x0, y0, x1, y1, ...).
    constructor(uint256[2] memory alpha, uint256[4] memory beta, uint256[4] memory gamma, uint256[4] memory delta, uint256[] memory ic) {
        if (ic.length < 2 || ic.length % 2 != 0) revert BadKey("ic");
        _alpha = alpha;
        _beta = beta;
        _gamma = gamma;
        _delta = delta;
        _ic = ic;
    }

    function nPublic() external view returns (uint256) {
        return _ic.length / 2 - 1;
    }

    function verify(uint256[8] calldata proof, uint256[] calldata pubSignals) external view returns (bool) {
        if (pubSignals.length != _ic.length / 2 - 1) return false;
        for (uint256 i = 0; i < 8; i++) {
            if (proof[i] >= Q) return false;
        }
        (bool ok, uint256 lx, uint256 ly) = _linearCombination(pubSignals);
        if (!ok) return false;
        uint256[24] memory input;
        input[0] = proof[0];
        input[1] = proof[1] == 0 ? 0 : Q - proof[1]; // -A
        input[2] = proof[2];
        input[3] = proof[3];
        input[4] = proof[4];
        input[5] = proof[5];
        input[6] = _alpha[0];
        input[7] = _alpha[1];
        input[8] = _beta[0];
        input[9] = _beta[1];
        input[10] = _beta[2];
        input[11] = _beta[3];
        input[12] = lx;
        input[13] = ly;
        input[14] = _gamma[0];
        input[15] = _gamma[1];
        input[16] = _gamma[2];
        input[17] = _gamma[3];
        input[18] = proof[6];
        input[19] = proof[7];
        input[20] = _delta[0];
        input[21] = _delta[1];
        input[22] = _delta[2];
        input[23] = _delta[3];
        uint256[1] memory out;
        _requireGas(PAIRING_4_GAS);
        bool success;
        uint256 size;
        assembly ("memory-safe") {
            success := staticcall(PAIRING_4_GAS, 0x08, input, 768, out, 0x20)
            size := returndatasize()
        }
        if (!success) return false; // given its full price: the input is invalid
        if (size != 0x20) revert PrecompileMissing(0x08);
        return out[0] == 1;
    }

    /// @dev Revert unless a staticcall forwarding exactly `cost` gas can be paid (EIP-150 keeps 1/64 back).
    function _requireGas(uint256 cost) private view {
        uint256 required = cost + cost / 63 + 1_000;
        if (gasleft() < required) revert InsufficientGas(gasleft(), required);
    }

    function _linearCombination(uint256[] calldata pubSignals) private view returns (bool, uint256, uint256) {
        uint256[4] memory acc; // acc[0..1] running sum, acc[2..3] scratch for the product
        acc[0] = _ic[0];
        acc[1] = _ic[1];
        for (uint256 i = 0; i < pubSignals.length; i++) {
            if (pubSignals[i] >= R) return (false, 0, 0);
            uint256[3] memory mulIn = [_ic[2 * i + 2], _ic[2 * i + 3], pubSignals[i]];
            _requireGas(EC_MUL_GAS + EC_ADD_GAS + 2_000);
            bool ok;
            uint256 size;
            assembly ("memory-safe") {
                ok := staticcall(EC_MUL_GAS, 0x07, mulIn, 0x60, add(acc, 0x40), 0x40)
                size := returndatasize()
            }
            if (!ok) return (false, 0, 0); // the key's IC point is invalid
            if (size != 0x40) revert PrecompileMissing(0x07);
            assembly ("memory-safe") {
                ok := staticcall(EC_ADD_GAS, 0x06, acc, 0x80, acc, 0x40)
                size := returndatasize()
            }
            if (!ok) return (false, 0, 0);
            if (size != 0x40) revert PrecompileMissing(0x06);
        }
        return (true, acc[0], acc[1]);
    }
}
