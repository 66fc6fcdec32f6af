// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {EpochProof, IEpochVerifier} from "./IEpochVerifier.sol";

/// @title EpochLinks
/// @notice The structure every epoch verifier checks: the proofs form one tree
///         ending in the root rollup, every parent restates exactly the
///         outputs of its children (public inputs, same layout as
///         backends/zk/src/circuits/links.rs), every child of the right kind
///         is used once, and the root's public inputs match the chain.
abstract contract EpochLinks is IEpochVerifier {
    uint8 internal constant BASE_PARITY = 0;
    uint8 internal constant ROOT_PARITY = 1;
    uint8 internal constant BASE_ROLLUP = 2;
    uint8 internal constant MERGE_ROLLUP = 3;
    uint8 internal constant BLOCK_ROOT = 4;
    uint8 internal constant BLOCK_MERGE = 5;
    uint8 internal constant ROOT_ROLLUP = 6;
    uint8 internal constant CIRCUITS = 7;

    /// @notice The BN254 scalar field: every public input is below it.
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

    error NoProofs();
    error UnknownCircuit(uint256 index, uint8 circuit);
    error TooFewPublicInputs(uint256 index, uint256 got, uint256 needed);
    error PublicInputNotInField(uint256 index, uint256 input);
    error LastProofIsNotTheRoot(uint8 circuit);
    error WrongChildCount(uint256 index, uint256 got, uint256 expected);
    error ChildNotBeforeParent(uint256 parent, uint256 child);
    error ChildUsedTwice(uint256 child);
    error WrongChildKind(uint256 parent, uint256 position, uint8 childCircuit);
    error LinkMismatch(uint256 parent, uint256 position, uint256 child);
    error UnusedProof(uint256 index);
    error RootMismatch(uint256 publicInput, uint256 got, uint256 expected);

    /// @dev Checks everything but the proofs themselves.
    function _checkLinks(uint256[7] calldata rootChecks, EpochProof[] calldata proofs) internal pure {
        uint256 n = proofs.length;
        if (n == 0) revert NoProofs();
        bool[] memory used = new bool[](n);
        for (uint256 i = 0; i < n; i++) {
            EpochProof calldata e = proofs[i];
            if (e.circuit >= CIRCUITS) revert UnknownCircuit(i, e.circuit);
            uint256[] calldata p = e.publicInputs;
            uint256 need = _minInputs(e.circuit);
            if (p.length < need) revert TooFewPublicInputs(i, p.length, need);
            for (uint256 j = 0; j < p.length; j++) {
                if (p[j] >= R) revert PublicInputNotInField(i, p[j]);
            }
            uint256 expected = _childCount(e.circuit, p);
            if (e.children.length != expected) revert WrongChildCount(i, e.children.length, expected);
            for (uint256 k = 0; k < expected; k++) {
                uint256 c = e.children[k];
                if (c >= i) revert ChildNotBeforeParent(i, c);
                if (used[c]) revert ChildUsedTwice(c);
                used[c] = true;
                EpochProof calldata child = proofs[c];
                if (!_kindFits(e.circuit, k, child.circuit)) revert WrongChildKind(i, k, child.circuit);
                if (!_linked(e.circuit, p, k, child.circuit, child.publicInputs)) revert LinkMismatch(i, k, c);
            }
        }
        EpochProof calldata root = proofs[n - 1];
        if (root.circuit != ROOT_ROLLUP) revert LastProofIsNotTheRoot(root.circuit);
        for (uint256 i = 0; i + 1 < n; i++) {
            if (!used[i]) revert UnusedProof(i);
        }
        for (uint256 j = 0; j < 7; j++) {
            if (root.publicInputs[8 + j] != rootChecks[j]) {
                revert RootMismatch(8 + j, root.publicInputs[8 + j], rootChecks[j]);
            }
        }
    }

    function _minInputs(uint8 circuit) private pure returns (uint256) {
        if (circuit == BASE_PARITY) return 1;
        if (circuit == ROOT_PARITY) return 2;
        if (circuit == BASE_ROLLUP) return 4;
        if (circuit == MERGE_ROLLUP || circuit == BLOCK_MERGE) return 9;
        return 16; // block root, root
    }

    function _childCount(uint8 circuit, uint256[] calldata p) private pure returns (uint256) {
        if (circuit == BASE_PARITY || circuit == BASE_ROLLUP) return 0;
        if (circuit == ROOT_PARITY) return p.length - 1;
        if (circuit == BLOCK_ROOT) return 3;
        if (circuit == ROOT_ROLLUP) return p[7] == 1 ? 1 : 2;
        return 2; // merge, block merge
    }

    function _kindFits(uint8 parent, uint256 k, uint8 child) private pure returns (bool) {
        if (parent == ROOT_PARITY) return child == BASE_PARITY;
        if (parent == MERGE_ROLLUP) return child == BASE_ROLLUP || child == MERGE_ROLLUP;
        if (parent == BLOCK_ROOT) {
            if (k == 0) return child == ROOT_PARITY;
            return child == BASE_ROLLUP || child == MERGE_ROLLUP;
        }
        // block merge, root
        return child == BLOCK_ROOT || child == BLOCK_MERGE;
    }

    /// @dev Does child `c` (public inputs `q`) output what parent `parent`
    ///      (public inputs `p`) restates at position `k`?
    function _linked(uint8 parent, uint256[] calldata p, uint256 k, uint8 c, uint256[] calldata q)
        private
        pure
        returns (bool)
    {
        if (c == BASE_PARITY || c == ROOT_PARITY) {
            uint256 restated = parent == BLOCK_ROOT ? p[9] : p[k];
            return q[q.length - 1] == restated;
        }
        // A range: start, end, effects, fee.
        uint256[4] memory got;
        if (c == BASE_ROLLUP) {
            got = [q[0], q[1], q[2], q[3]];
        } else if (c == BLOCK_ROOT) {
            got = [q[0], q[1], q[10], q[11]];
        } else {
            got = [q[0], q[2], q[7], q[8]];
        }
        uint256[4] memory want;
        // A block root restates its two ranges from public input 2 on.
        uint256 o = parent == BLOCK_ROOT ? 2 : 0;
        uint256 left = parent == BLOCK_ROOT ? 1 : 0;
        if (k == left) {
            want = [p[o], p[o + 1], p[o + 3], p[o + 4]];
        } else {
            want = [p[o + 1], p[o + 2], p[o + 5], p[o + 6]];
        }
        return got[0] == want[0] && got[1] == want[1] && got[2] == want[2] && got[3] == want[3];
    }
}
