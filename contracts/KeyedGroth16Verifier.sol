// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title KeyedGroth16Verifier: a Groth16 (BN254) verifier whose verification key is set at deployment.
/// @notice One deployment per circuit, no code generation: the key lives in storage. Same interface as a
/// snarkjs-exported verifier: `verify(uint256[8] proof, uint256[] pubSignals) returns (bool)` with proof words
/// [A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0, C.x, C.y] (G2 coordinates in EIP-197 order: imaginary, real).
/// @dev Checks e(-A, B) * e(alpha, beta) * e(L, gamma) * e(C, delta) == 1 with
/// L = IC[0] + sum_i pubSignals[i] * IC[i + 1] (Groth16, EUROCRYPT 2016; EIP-196 add/mul 0x06/0x07,
/// EIP-197 pairing 0x08). Returns false (never reverts) for a malformed proof or signal.
contract KeyedGroth16Verifier {
    uint256 private constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;
    uint256 private constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

    uint256[2] private _alpha;
    uint256[4] private _beta;
    uint256[4] private _gamma;
    uint256[4] private _delta;
    uint256[] private _ic; // 2 words per point

    error BadKey(string field);

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
        bool success;
        assembly ("memory-safe") {
            success := staticcall(gas(), 0x08, input, 768, out, 0x20)
            if iszero(eq(returndatasize(), 0x20)) { success := 0 }
        }
        return success && out[0] == 1;
    }

    function _linearCombination(uint256[] calldata pubSignals) private view returns (bool, uint256, uint256) {
        uint256[4] memory acc; // acc[0..1] running sum, acc[2..3] scratch for the product
        acc[0] = _ic[0];
        acc[1] = _ic[1];
        for (uint256 i = 0; i < pubSignals.length; i++) {
            if (pubSignals[i] >= R) return (false, 0, 0);
            uint256[3] memory mulIn = [_ic[2 * i + 2], _ic[2 * i + 3], pubSignals[i]];
            bool ok;
            assembly ("memory-safe") {
                ok := staticcall(gas(), 0x07, mulIn, 0x60, add(acc, 0x40), 0x40)
                if iszero(eq(returndatasize(), 0x40)) { ok := 0 }
                if ok {
                    ok := staticcall(gas(), 0x06, acc, 0x80, acc, 0x40)
                    if iszero(eq(returndatasize(), 0x40)) { ok := 0 }
                }
            }
            if (!ok) return (false, 0, 0);
        }
        return (true, acc[0], acc[1]);
    }
}
