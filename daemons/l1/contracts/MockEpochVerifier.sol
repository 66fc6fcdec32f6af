// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {EpochProof, VerifiedOutput} from "./IEpochVerifier.sol";
import {EpochLinks} from "./EpochLinks.sol";

/// @title MockEpochVerifier
/// @notice For `PROVER_REAL_PROOFS=false`: the proof tree and its public
///         inputs are checked exactly as by the real verifier, the proof
///         points are not (simulation produces none). Never use it where a
///         proof must mean something.
contract MockEpochVerifier is EpochLinks {
    function verifyChunk(
        uint256 size,
        bool isFinal,
        uint256[7] calldata rootChecks,
        EpochProof[] calldata proofs,
        VerifiedOutput[] calldata consumed
    ) external pure returns (bool[] memory) {
        return _checkChunk(size, isFinal, rootChecks, proofs, consumed);
    }

    function realProofs() external pure returns (bool) {
        return false;
    }
}
