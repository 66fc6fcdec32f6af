// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @notice One proof of an epoch's proof tree, at its position in the tree.
/// @dev Positions number the tree's proofs 0..size-1, children before
///      parents, the root rollup last (the node's plan order). `circuit`
///      numbers: 0 base parity, 1 root parity, 2 base rollup, 3 merge rollup,
///      4 block root rollup, 5 block merge rollup, 6 root rollup. `children`
///      are positions, in the order the circuit restates their outputs.
///      `proof` is A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0, C.x, C.y (the
///      precompiles' order).
struct EpochProof {
    uint32 position;
    uint8 circuit;
    uint32[] children;
    uint256[] publicInputs;
    uint256[8] proof;
}

/// @notice The outputs of a proof verified in an earlier chunk, restated so
///         that its parent in this chunk can consume it (the rollup checks
///         them against the commitment it recorded).
struct VerifiedOutput {
    uint32 position;
    uint8 circuit;
    uint256[] publicInputs;
}

/// @notice What the rollup asks of an epoch's proofs, given in one or more
///         chunks.
interface IEpochVerifier {
    /// @notice Reverts unless every proof of `proofs` verifies and restates
    ///         exactly the outputs of its children, each child being an
    ///         earlier proof of `proofs` or an entry of `consumed`, used
    ///         once. `proofs` and `consumed` are in increasing position order,
    ///         below `size`, and every entry of `consumed` is used. With
    ///         `isFinal`, the last proof is the root rollup at position
    ///         `size - 1` with public inputs 8..14 equal to `rootChecks` =
    ///         [epoch, prover id, start archive, end archive, first block,
    ///         last block, total fees], and every other proof is used.
    /// @return usedHere Per proof, whether a parent in `proofs` consumed it.
    function verifyChunk(
        uint256 size,
        bool isFinal,
        uint256[7] calldata rootChecks,
        EpochProof[] calldata proofs,
        VerifiedOutput[] calldata consumed
    ) external view returns (bool[] memory usedHere);

    /// @notice True when proofs are checked cryptographically (false for the mock).
    function realProofs() external view returns (bool);
}
