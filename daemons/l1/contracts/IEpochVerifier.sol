// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @notice One proof of an epoch's proof tree.
/// @dev `circuit` numbers: 0 base parity, 1 root parity, 2 base rollup,
///      3 merge rollup, 4 block root rollup, 5 block merge rollup, 6 root rollup.
///      `children` index earlier entries, in the order the circuit restates
///      their outputs. `proof` is A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0,
///      C.x, C.y (the precompiles' order).
struct EpochProof {
    uint8 circuit;
    uint32[] children;
    uint256[] publicInputs;
    uint256[8] proof;
}

/// @notice What the rollup asks of an epoch's proofs.
interface IEpochVerifier {
    /// @notice Reverts unless `proofs` is a well-linked proof tree whose last
    ///         entry is a root rollup proof with public inputs 8..14 equal to
    ///         `rootChecks` = [epoch, prover id, start archive, end archive,
    ///         first block, last block, total fees], and every proof verifies.
    function verifyEpoch(uint256[7] calldata rootChecks, EpochProof[] calldata proofs) external view;

    /// @notice True when proofs are checked cryptographically (false for the mock).
    function realProofs() external view returns (bool);
}
