// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {EpochProof} from "./IEpochVerifier.sol";
import {EpochLinks} from "./EpochLinks.sol";

/// @title MockEpochVerifier
/// @notice For `PROVER_REAL_PROOFS=false`: the proof tree and its public
///         inputs are checked exactly as by the real verifier, the proof
///         points are not (simulation produces none). Never use it where a
///         proof must mean something.
contract MockEpochVerifier is EpochLinks {
    function verifyEpoch(uint256[7] calldata rootChecks, EpochProof[] calldata proofs) external pure {
        _checkLinks(rootChecks, proofs);
    }

    function realProofs() external pure returns (bool) {
        return false;
    }
}
