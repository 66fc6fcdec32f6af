// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {EpochProof, VerifiedOutput} from "./IEpochVerifier.sol";
import {EpochLinks} from "./EpochLinks.sol";

/// @title Groth16EpochVerifier
/// @notice Verifies every Groth16 proof of an epoch in one pairing check with
///         the BN254 precompiles (0x06 add, 0x07 mul, 0x08 pairing), after the
///         tree checks of EpochLinks.
/// @dev For proofs i with weights r_i (128-bit, from keccak of the call data):
///      prod_i e(r_i A_i, B_i) = prod_c e(R_c alpha_c, beta_c) e(X_c, gamma_c) e(Y_c, delta_c)
///      where per circuit c: R_c = sum r_i, X_c = sum r_i vk_x_i (computed as one
///      multi-scalar sum over the key's IC points with scalars folded mod r),
///      Y_c = sum r_i C_i. One pairing of n + 3 * circuits pairs; ecMul count
///      2n + sum over used circuits of (inputs + 2). Gas grows with the number
///      of proofs (Aztec's recursion keeps it constant): a known limit.
contract Groth16EpochVerifier is EpochLinks {
    /// @notice The field of the curve's coordinates.
    uint256 internal constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;

    struct Key {
        uint256[2] alpha;
        uint256[4] beta;
        uint256[4] gamma;
        uint256[4] delta;
        uint256[] ic;
    }

    address public immutable owner;
    bool public keysSealed;
    mapping(uint8 => Key) private keys;
    mapping(uint8 => bool) public hasKey;

    error NotOwner(address caller);
    error Sealed();
    error KeysNotSealed();
    error MissingKey(uint8 circuit);
    error BadKey(uint8 circuit);
    error WrongInputCount(uint256 position, uint256 got, uint256 expected);
    error BadProofPoint(uint256 position);
    error PrecompileFailed(uint256 precompile);
    error PairingCheckFailed();

    event KeySet(uint8 indexed circuit, uint256 publicInputs);
    event KeysSealed();

    constructor() {
        owner = msg.sender;
    }

    /// @notice Sets circuit `circuit`'s verifying key (G2 coordinates in the
    ///         precompile's order, `ic` as x, y pairs), until `seal`.
    function setKey(
        uint8 circuit,
        uint256[2] calldata alpha,
        uint256[4] calldata beta,
        uint256[4] calldata gamma,
        uint256[4] calldata delta,
        uint256[] calldata ic
    ) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        if (keysSealed) revert Sealed();
        if (circuit >= CIRCUITS || ic.length < 2 || ic.length % 2 != 0) revert BadKey(circuit);
        Key storage k = keys[circuit];
        k.alpha = alpha;
        k.beta = beta;
        k.gamma = gamma;
        k.delta = delta;
        k.ic = ic;
        hasKey[circuit] = true;
        emit KeySet(circuit, ic.length / 2 - 1);
    }

    /// @notice Freezes the keys: after this no one can change them.
    function seal() external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        for (uint8 c = 0; c < CIRCUITS; c++) {
            if (!hasKey[c]) revert MissingKey(c);
        }
        keysSealed = true;
        emit KeysSealed();
    }

    function realProofs() external pure returns (bool) {
        return true;
    }

    function verifyChunk(
        uint256 size,
        bool isFinal,
        uint256[7] calldata rootChecks,
        EpochProof[] calldata proofs,
        VerifiedOutput[] calldata consumed
    ) external view returns (bool[] memory usedHere) {
        if (!keysSealed) revert KeysNotSealed();
        usedHere = _checkChunk(size, isFinal, rootChecks, proofs, consumed);
        _verifyProofs(proofs);
    }

    /// @dev Every proof of `proofs` in one pairing check.
    function _verifyProofs(EpochProof[] calldata proofs) private view {
        uint256 n = proofs.length;
        uint256 seed = uint256(keccak256(msg.data));

        // Per circuit: folded scalars over IC (index 0 carries R_c) and Y_c.
        uint256[][] memory scalars = new uint256[][](CIRCUITS);
        uint256[2][] memory ys = new uint256[2][](CIRCUITS);
        // Pairs: n proofs then 3 per used circuit, 6 words each.
        uint256[] memory pairs = new uint256[](6 * (n + 3 * CIRCUITS));
        uint256 pos = 0;
        for (uint256 i = 0; i < n; i++) {
            EpochProof calldata e = proofs[i];
            uint8 c = e.circuit;
            uint256 inputs = keys[c].ic.length / 2 - 1;
            if (e.publicInputs.length != inputs) revert WrongInputCount(e.position, e.publicInputs.length, inputs);
            uint256 r = uint256(keccak256(abi.encode(seed, i))) >> 128;
            if (r == 0) r = 1;
            if (scalars[c].length == 0) scalars[c] = new uint256[](inputs + 1);
            uint256[] memory s = scalars[c];
            s[0] = addmod(s[0], r, R);
            for (uint256 j = 0; j < inputs; j++) {
                s[j + 1] = addmod(s[j + 1], mulmod(r, e.publicInputs[j], R), R);
            }
            for (uint256 w = 0; w < 8; w++) {
                if (e.proof[w] >= Q) revert BadProofPoint(e.position);
            }
            (uint256 ax, uint256 ay) = _mul(e.proof[0], e.proof[1], r);
            (uint256 cx, uint256 cy) = _mul(e.proof[6], e.proof[7], r);
            (ys[c][0], ys[c][1]) = _add(ys[c][0], ys[c][1], cx, cy);
            pairs[pos] = ax;
            pairs[pos + 1] = ay;
            for (uint256 w = 0; w < 4; w++) {
                pairs[pos + 2 + w] = e.proof[2 + w];
            }
            pos += 6;
        }
        for (uint8 c = 0; c < CIRCUITS; c++) {
            uint256[] memory s = scalars[c];
            if (s.length == 0) continue;
            Key storage k = keys[c];
            // -R_c alpha, beta
            (uint256 x, uint256 y) = _mul(k.alpha[0], k.alpha[1], s[0]);
            pos = _pushPair(pairs, pos, x, _neg(y), k.beta);
            // -X_c, gamma
            (x, y) = (0, 0);
            for (uint256 j = 0; j < s.length; j++) {
                if (s[j] == 0) continue;
                (uint256 px, uint256 py) = _mul(k.ic[2 * j], k.ic[2 * j + 1], s[j]);
                (x, y) = _add(x, y, px, py);
            }
            pos = _pushPair(pairs, pos, x, _neg(y), k.gamma);
            // -Y_c, delta
            pos = _pushPair(pairs, pos, ys[c][0], _neg(ys[c][1]), k.delta);
        }
        assembly ("memory-safe") {
            mstore(pairs, pos) // shrink to the pairs actually written
        }
        (bool ok, bytes memory out) = address(8).staticcall(abi.encodePacked(pairs));
        if (!ok || out.length != 32) revert PrecompileFailed(8);
        if (abi.decode(out, (uint256)) != 1) revert PairingCheckFailed();
    }

    function _pushPair(uint256[] memory pairs, uint256 pos, uint256 x, uint256 y, uint256[4] storage g2)
        private
        view
        returns (uint256)
    {
        pairs[pos] = x;
        pairs[pos + 1] = y;
        pairs[pos + 2] = g2[0];
        pairs[pos + 3] = g2[1];
        pairs[pos + 4] = g2[2];
        pairs[pos + 5] = g2[3];
        return pos + 6;
    }

    function _neg(uint256 y) private pure returns (uint256) {
        return y == 0 ? 0 : Q - y;
    }

    function _add(uint256 ax, uint256 ay, uint256 bx, uint256 by) private view returns (uint256, uint256) {
        (bool ok, bytes memory out) = address(6).staticcall(abi.encode(ax, ay, bx, by));
        if (!ok || out.length != 64) revert PrecompileFailed(6);
        return abi.decode(out, (uint256, uint256));
    }

    function _mul(uint256 x, uint256 y, uint256 s) private view returns (uint256, uint256) {
        (bool ok, bytes memory out) = address(7).staticcall(abi.encode(x, y, s));
        if (!ok || out.length != 64) revert PrecompileFailed(7);
        return abi.decode(out, (uint256, uint256));
    }
}
