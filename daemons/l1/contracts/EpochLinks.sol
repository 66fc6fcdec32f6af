// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {EpochProof, VerifiedOutput, IEpochVerifier} from "./IEpochVerifier.sol";

/// @title EpochLinks
/// @notice The structure every epoch verifier checks, chunk by chunk: every
///         parent restates exactly the outputs of its children (public
///         inputs, same layout as backends/zk/src/circuits/links.rs), every
///         child of the right kind is used once, the tree ends in the root
///         rollup, and the root's public inputs match the chain.
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
    error OutsideTree(uint256 position, uint256 size);
    error PositionsNotIncreasing(uint256 index);
    error UnknownCircuit(uint256 position, uint8 circuit);
    error TooFewPublicInputs(uint256 position, uint256 got, uint256 needed);
    error PublicInputNotInField(uint256 position, uint256 input);
    error LastProofIsNotTheRoot(uint8 circuit);
    error RootNotLast(uint256 position, uint256 size);
    error WrongChildCount(uint256 position, uint256 got, uint256 expected);
    error ChildNotBeforeParent(uint256 parent, uint256 child);
    error ChildNotGiven(uint256 parent, uint256 child);
    error ChildUsedTwice(uint256 child);
    error WrongChildKind(uint256 parent, uint256 index, uint8 childCircuit);
    error LinkMismatch(uint256 parent, uint256 index, uint256 child);
    error UnusedProof(uint256 position);
    error RootMismatch(uint256 publicInput, uint256 got, uint256 expected);

    /// @dev Checks everything but the proofs themselves (see
    ///      IEpochVerifier.verifyChunk); returns which proofs a parent in the
    ///      chunk consumed.
    function _checkChunk(
        uint256 size,
        bool isFinal,
        uint256[7] calldata rootChecks,
        EpochProof[] calldata proofs,
        VerifiedOutput[] calldata consumed
    ) internal pure returns (bool[] memory usedHere) {
        uint256 n = proofs.length;
        if (n == 0) revert NoProofs();
        usedHere = new bool[](n);
        bool[] memory usedGiven = new bool[](consumed.length);
        for (uint256 j = 0; j < consumed.length; j++) {
            VerifiedOutput calldata v = consumed[j];
            if (v.position >= size) revert OutsideTree(v.position, size);
            if (j > 0 && v.position <= consumed[j - 1].position) revert PositionsNotIncreasing(j);
            _checkInputs(v.position, v.circuit, v.publicInputs);
        }
        for (uint256 i = 0; i < n; i++) {
            EpochProof calldata e = proofs[i];
            uint256 pos = e.position;
            if (pos >= size) revert OutsideTree(pos, size);
            if (i > 0 && pos <= proofs[i - 1].position) revert PositionsNotIncreasing(i);
            uint256[] calldata p = e.publicInputs;
            _checkInputs(pos, e.circuit, p);
            uint256 expected = _childCount(e.circuit, p);
            if (e.children.length != expected) revert WrongChildCount(pos, e.children.length, expected);
            for (uint256 k = 0; k < expected; k++) {
                uint256 c = e.children[k];
                if (c >= pos) revert ChildNotBeforeParent(pos, c);
                uint8 childCircuit;
                uint256[] calldata q;
                (bool here, uint256 idx) = _findProof(proofs, i, c);
                if (here) {
                    if (usedHere[idx]) revert ChildUsedTwice(c);
                    usedHere[idx] = true;
                    (childCircuit, q) = (proofs[idx].circuit, proofs[idx].publicInputs);
                } else {
                    bool given;
                    (given, idx) = _findGiven(consumed, c);
                    if (!given) revert ChildNotGiven(pos, c);
                    if (usedGiven[idx]) revert ChildUsedTwice(c);
                    usedGiven[idx] = true;
                    (childCircuit, q) = (consumed[idx].circuit, consumed[idx].publicInputs);
                }
                if (!_kindFits(e.circuit, k, childCircuit)) revert WrongChildKind(pos, k, childCircuit);
                if (!_linked(e.circuit, p, k, childCircuit, q)) revert LinkMismatch(pos, k, c);
            }
        }
        for (uint256 j = 0; j < consumed.length; j++) {
            if (!usedGiven[j]) revert UnusedProof(consumed[j].position);
        }
        if (!isFinal) return usedHere;
        EpochProof calldata root = proofs[n - 1];
        if (root.circuit != ROOT_ROLLUP) revert LastProofIsNotTheRoot(root.circuit);
        if (root.position != size - 1) revert RootNotLast(root.position, size);
        for (uint256 i = 0; i + 1 < n; i++) {
            if (!usedHere[i]) revert UnusedProof(proofs[i].position);
        }
        for (uint256 j = 0; j < 7; j++) {
            if (root.publicInputs[8 + j] != rootChecks[j]) {
                revert RootMismatch(8 + j, root.publicInputs[8 + j], rootChecks[j]);
            }
        }
    }

    function _checkInputs(uint256 pos, uint8 circuit, uint256[] calldata p) private pure {
        if (circuit >= CIRCUITS) revert UnknownCircuit(pos, circuit);
        uint256 need = _minInputs(circuit);
        if (p.length < need) revert TooFewPublicInputs(pos, p.length, need);
        for (uint256 j = 0; j < p.length; j++) {
            if (p[j] >= R) revert PublicInputNotInField(pos, p[j]);
        }
    }

    /// @dev The index of the proof at `position` among `proofs[0..before)`.
    function _findProof(EpochProof[] calldata proofs, uint256 before, uint256 position)
        private
        pure
        returns (bool, uint256)
    {
        (uint256 lo, uint256 hi) = (0, before);
        while (lo < hi) {
            uint256 mid = (lo + hi) / 2;
            uint256 here = proofs[mid].position;
            if (here == position) return (true, mid);
            if (here < position) lo = mid + 1;
            else hi = mid;
        }
        return (false, 0);
    }

    /// @dev The index of the output at `position` in `given`.
    function _findGiven(VerifiedOutput[] calldata given, uint256 position) private pure returns (bool, uint256) {
        (uint256 lo, uint256 hi) = (0, given.length);
        while (lo < hi) {
            uint256 mid = (lo + hi) / 2;
            uint256 here = given[mid].position;
            if (here == position) return (true, mid);
            if (here < position) lo = mid + 1;
            else hi = mid;
        }
        return (false, 0);
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
