// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC20} from "./IERC20.sol";
import {EpochProof, VerifiedOutput, IEpochVerifier} from "./IEpochVerifier.sol";
import {ProofCommitmentEscrow} from "./ProofCommitmentEscrow.sol";

/// @notice A prover's binding offer to prove an epoch (seed 004), signed with EIP-712.
struct EpochProofQuote {
    address prover;
    uint256 epochNumber;
    uint256 epochInitBlock;
    uint256 epochFinalBlock;
    uint256 totalFees;
    address rollupAddress;
    uint32 basisPointFee;
    uint256 bondAmount;
    uint256 validUntilSlot;
}

struct Signature {
    uint8 v;
    bytes32 r;
    bytes32 s;
}

struct SignedEpochProofQuote {
    EpochProofQuote quote;
    Signature signature;
}

/// @notice The accepted quote of the epoch being proven.
struct EpochProofClaim {
    uint256 epochToProve;
    uint256 basisPointFee;
    uint256 bondAmount;
    address bondProvider;
    address proposerClaimant;
}

struct BlockLog {
    bytes32 archive;
    bytes32 headerHash;
    bytes32 effectsHash;
    uint256 slot;
    uint256 fees;
    /// Fees of every block up to this one: an epoch's fees are a difference.
    uint256 cumulativeFees;
}

/// @notice What a proposer posts for a block.
struct ProposeArgs {
    /// The slot the block was built for: must be the current one, since the
    /// header (and so the archive) commits to it.
    uint256 slot;
    bytes32 archive;
    bytes32 headerHash;
    bytes32 effectsHash;
    uint256 fees;
    bytes32[] txHashes;
    bytes32[] l1ToL2Messages;
}

/// @notice What the epoch proof claims about the chain; the verifier checks
///         the root proof's public inputs against exactly these values.
struct EpochProofArgs {
    uint256 epoch;
    uint256 firstBlock;
    uint256 lastBlock;
    bytes32 startArchive;
    bytes32 endArchive;
    uint256 totalFees;
}

/// @title Rollup
/// @notice The L1 side of the rollup: L2 blocks proposed one per slot, epochs
///         of `epochDuration` slots, a pending and a proven chain, the
///         proof-right auction settled by signed quotes and bonds, and epoch
///         proofs that advance the proven chain and pay the prover.
contract Rollup {
    bytes32 public constant EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant QUOTE_TYPEHASH = keccak256(
        "EpochProofQuote(address prover,uint256 epochNumber,uint256 epochInitBlock,uint256 epochFinalBlock,uint256 totalFees,address rollupAddress,uint32 basisPointFee,uint256 bondAmount,uint256 validUntilSlot)"
    );
    string public constant EIP712_NAME = "Aztec Rollup";
    string public constant EIP712_VERSION = "1";
    uint256 private constant SECP256K1_HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    IERC20 public immutable feeToken;
    ProofCommitmentEscrow public immutable escrow;
    IEpochVerifier public immutable verifier;
    address public immutable owner;
    uint256 public immutable genesisTime;
    uint256 public immutable slotDuration;
    uint256 public immutable epochDuration;
    uint256 public immutable claimDurationSlots;
    uint256 public immutable proofWindowSlots;

    address public proposer;
    uint256 public pendingBlockNumber;
    uint256 public provenBlockNumber;
    mapping(uint256 => BlockLog) private blocks;
    EpochProofClaim private claim;

    /// @notice Largest proof tree an epoch may declare.
    uint256 public constant MAX_TREE_SIZE = 1 << 16;
    /// Counts claims: a claim's chunks are kept under its id, so the next
    /// claim (after a completion or a prune) starts with none.
    uint256 private claimId;
    /// Proofs in the claimed epoch's tree, as its first chunk declared (0: none yet).
    uint256 private chunkTreeSize;
    /// Outputs recorded by chunks and not consumed yet.
    uint256 private outstandingOutputs;
    /// Per claim and position: keccak256(abi.encode(circuit, publicInputs))
    /// of a verified proof no parent has consumed yet (deleted when consumed).
    mapping(uint256 => mapping(uint256 => bytes32)) private outputs;
    /// Per claim: a bit per verified position, 256 positions per word.
    mapping(uint256 => mapping(uint256 => uint256)) private verifiedBits;

    event L2BlockProposed(
        uint256 indexed blockNumber,
        uint256 indexed slot,
        bytes32 archive,
        bytes32 headerHash,
        bytes32 effectsHash,
        uint256 fees,
        bytes32[] txHashes,
        bytes32[] l1ToL2Messages
    );
    event EpochProofRightClaimed(
        uint256 indexed epoch,
        address indexed prover,
        address indexed proposer,
        uint256 bondAmount,
        uint256 basisPointFee,
        uint256 slot
    );
    event L2ProofVerified(uint256 indexed epoch, uint256 lastBlock, address indexed prover, uint256 proverFee);
    event EpochChunkVerified(uint256 indexed epoch, uint256 proofs, uint256 recorded, uint256 consumed);
    event PrunedPending(
        uint256 indexed epoch, uint256 provenBlockNumber, uint256 pendingBefore, address slashedProver, uint256 slashed
    );
    event ProposerChanged(address proposer);

    error NotOwner(address caller);
    error NotProposer(address caller, address proposer);
    error WrongSlot(uint256 given, uint256 current);
    error SlotAlreadyUsed(uint256 slot, uint256 lastSlot);
    error NoEpochToProve();
    error EpochNotCompleted(uint256 epoch, uint256 currentEpoch);
    error ClaimPhaseOver(uint256 epoch, uint256 slot, uint256 lastClaimSlot);
    error AlreadyClaimed(uint256 epoch, address prover);
    error QuoteWrongEpoch(uint256 quoted, uint256 toProve);
    error QuoteWrongRollup(address quoted);
    error QuoteWrongBlocks(uint256 quotedInit, uint256 quotedFinal, uint256 init, uint256 final_);
    error QuoteWrongFees(uint256 quoted, uint256 actual);
    error QuoteExpired(uint256 validUntilSlot, uint256 slot);
    error QuoteFeeTooHigh(uint32 basisPointFee);
    error InvalidSignature(address recovered, address prover);
    error NoClaim(uint256 epoch);
    error NotNextEpoch(uint256 firstBlock, uint256 expected);
    error NotWholeEpoch(uint256 epoch, uint256 firstBlock, uint256 lastBlock);
    error ArchiveMismatch(bytes32 given, bytes32 onChain);
    error FeesMismatch(uint256 given, uint256 onChain);
    error ProofWindowOver(uint256 epoch, uint256 deadlineSlot);
    error NothingToPrune();
    error TransferFailed();
    error NotClaimant(address caller, address prover);
    error TreeTooLarge(uint256 size);
    error TreeSizeMismatch(uint256 given, uint256 declared);
    error AlreadyVerified(uint256 position);
    error ChildNotVerified(uint256 position);
    error ChildOutputMismatch(uint256 position);
    error UnconsumedOutputs(uint256 count);

    constructor(
        IERC20 feeToken_,
        IEpochVerifier verifier_,
        address proposer_,
        bytes32 genesisArchive,
        uint256 slotDuration_,
        uint256 epochDuration_,
        uint256 claimDurationSlots_,
        uint256 proofWindowSlots_,
        uint256 escrowWithdrawDelay
    ) {
        require(slotDuration_ > 0 && epochDuration_ > 0, "zero slot or epoch duration");
        require(claimDurationSlots_ > 0 && claimDurationSlots_ <= proofWindowSlots_, "claim phase outside proof window");
        feeToken = feeToken_;
        verifier = verifier_;
        owner = msg.sender;
        proposer = proposer_;
        genesisTime = block.timestamp;
        slotDuration = slotDuration_;
        epochDuration = epochDuration_;
        claimDurationSlots = claimDurationSlots_;
        proofWindowSlots = proofWindowSlots_;
        escrow = new ProofCommitmentEscrow(feeToken_, address(this), escrowWithdrawDelay);
        blocks[0].archive = genesisArchive;
    }

    // ---------------------------------------------------------------- time

    function getCurrentSlot() public view returns (uint256) {
        return (block.timestamp - genesisTime) / slotDuration;
    }

    function getCurrentEpoch() public view returns (uint256) {
        return getCurrentSlot() / epochDuration;
    }

    function getEpochAtSlot(uint256 slot) public view returns (uint256) {
        return slot / epochDuration;
    }

    function getTimestampForSlot(uint256 slot) external view returns (uint256) {
        return genesisTime + slot * slotDuration;
    }

    /// @notice The last slot in which epoch `epoch` can be claimed.
    function getLastClaimSlot(uint256 epoch) public view returns (uint256) {
        return (epoch + 1) * epochDuration + claimDurationSlots - 1;
    }

    /// @notice The first slot at which epoch `epoch`, unproven, can be pruned.
    function getProofDeadlineSlot(uint256 epoch) public view returns (uint256) {
        return (epoch + 1) * epochDuration + proofWindowSlots;
    }

    // -------------------------------------------------------------- blocks

    function setProposer(address proposer_) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        proposer = proposer_;
        emit ProposerChanged(proposer_);
    }

    /// @notice Appends a block to the pending chain at the current slot. The
    ///         proposer pays the block's fees into the rollup (approve first);
    ///         an epoch past its proof window is pruned first.
    function propose(ProposeArgs calldata args) external returns (uint256 blockNumber) {
        if (msg.sender != proposer) revert NotProposer(msg.sender, proposer);
        if (canPrune()) _prune();
        uint256 slot = getCurrentSlot();
        if (args.slot != slot) revert WrongSlot(args.slot, slot);
        BlockLog storage tip = blocks[pendingBlockNumber];
        if (pendingBlockNumber > 0 && slot <= tip.slot) revert SlotAlreadyUsed(slot, tip.slot);
        if (args.fees > 0 && !feeToken.transferFrom(msg.sender, address(this), args.fees)) revert TransferFailed();
        blockNumber = pendingBlockNumber + 1;
        blocks[blockNumber] = BlockLog({
            archive: args.archive,
            headerHash: args.headerHash,
            effectsHash: args.effectsHash,
            slot: slot,
            fees: args.fees,
            cumulativeFees: tip.cumulativeFees + args.fees
        });
        pendingBlockNumber = blockNumber;
        emit L2BlockProposed(
            blockNumber, slot, args.archive, args.headerHash, args.effectsHash, args.fees, args.txHashes, args.l1ToL2Messages
        );
    }

    function getBlock(uint256 blockNumber) external view returns (BlockLog memory) {
        return blocks[blockNumber];
    }

    function getEpochForBlock(uint256 blockNumber) public view returns (uint256) {
        return getEpochAtSlot(blocks[blockNumber].slot);
    }

    /// @notice The epoch of the first unproven block and its pending block
    ///         range; `exists` is false when every block is proven.
    function getEpochToProve() public view returns (bool exists, uint256 epoch, uint256 firstBlock, uint256 lastBlock) {
        if (pendingBlockNumber == provenBlockNumber) return (false, 0, 0, 0);
        firstBlock = provenBlockNumber + 1;
        epoch = getEpochForBlock(firstBlock);
        lastBlock = firstBlock;
        while (lastBlock < pendingBlockNumber && getEpochForBlock(lastBlock + 1) == epoch) {
            lastBlock++;
        }
        exists = true;
    }

    // ---------------------------------------------------------- the claim

    function getProofClaim() external view returns (EpochProofClaim memory) {
        return claim;
    }

    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(
                EIP712_DOMAIN_TYPEHASH,
                keccak256(bytes(EIP712_NAME)),
                keccak256(bytes(EIP712_VERSION)),
                block.chainid,
                address(this)
            )
        );
    }

    /// @notice The EIP-712 digest a prover signs for `quote`.
    function quoteToDigest(EpochProofQuote calldata q) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                QUOTE_TYPEHASH,
                q.prover,
                q.epochNumber,
                q.epochInitBlock,
                q.epochFinalBlock,
                q.totalFees,
                q.rollupAddress,
                q.basisPointFee,
                q.bondAmount,
                q.validUntilSlot
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    /// @notice The proposer accepts a prover's quote for the last completed,
    ///         unproven epoch during that epoch's claim phase; the quote's bond
    ///         is staked from the prover's escrow deposit.
    function claimEpochProofRight(SignedEpochProofQuote calldata signed) external {
        if (msg.sender != proposer) revert NotProposer(msg.sender, proposer);
        if (canPrune()) _prune();
        EpochProofQuote calldata q = signed.quote;
        (bool exists, uint256 epoch, uint256 first, uint256 last) = getEpochToProve();
        if (!exists) revert NoEpochToProve();
        uint256 slot = getCurrentSlot();
        uint256 current = getEpochAtSlot(slot);
        if (epoch >= current) revert EpochNotCompleted(epoch, current);
        if (slot > getLastClaimSlot(epoch)) revert ClaimPhaseOver(epoch, slot, getLastClaimSlot(epoch));
        if (claim.bondProvider != address(0) && claim.epochToProve == epoch) {
            revert AlreadyClaimed(epoch, claim.bondProvider);
        }
        if (q.epochNumber != epoch) revert QuoteWrongEpoch(q.epochNumber, epoch);
        if (q.rollupAddress != address(this)) revert QuoteWrongRollup(q.rollupAddress);
        if (q.epochInitBlock != first || q.epochFinalBlock != last) {
            revert QuoteWrongBlocks(q.epochInitBlock, q.epochFinalBlock, first, last);
        }
        uint256 fees = blocks[last].cumulativeFees - blocks[first - 1].cumulativeFees;
        if (q.totalFees != fees) revert QuoteWrongFees(q.totalFees, fees);
        if (q.validUntilSlot < slot) revert QuoteExpired(q.validUntilSlot, slot);
        if (q.basisPointFee > 10_000) revert QuoteFeeTooHigh(q.basisPointFee);
        address signer = _recover(quoteToDigest(q), signed.signature);
        if (signer == address(0) || signer != q.prover) revert InvalidSignature(signer, q.prover);

        escrow.stakeBond(q.prover, q.bondAmount);
        claimId += 1;
        chunkTreeSize = 0;
        outstandingOutputs = 0;
        claim = EpochProofClaim({
            epochToProve: epoch,
            basisPointFee: q.basisPointFee,
            bondAmount: q.bondAmount,
            bondProvider: q.prover,
            proposerClaimant: msg.sender
        });
        emit EpochProofRightClaimed(epoch, q.prover, msg.sender, q.bondAmount, q.basisPointFee, slot);
    }

    function _recover(bytes32 digest, Signature calldata sig) private pure returns (address) {
        // Reject the malleable twin of every signature (EIP-2).
        if (uint256(sig.s) > SECP256K1_HALF_N || (sig.v != 27 && sig.v != 28)) return address(0);
        return ecrecover(digest, sig.v, sig.r, sig.s);
    }

    // ---------------------------------------------------------- the proof

    /// @notice Verifies a chunk of the claimed epoch's proof tree ahead of its
    ///         root (see IEpochVerifier.verifyChunk): its proofs must verify
    ///         and link to their children, which are proofs of this chunk or
    ///         outputs recorded by earlier chunks (restated in `consumed`, each
    ///         checked against its record and then deleted). The outputs no
    ///         proof of the chunk consumed are recorded for later chunks.
    ///         Only the claimed prover may send chunks: a verified chunk is a
    ///         fact, but positions are first come, first served, so anyone
    ///         else could block them. A position is verified once.
    function submitEpochChunk(
        uint256 epoch,
        uint256 size,
        EpochProof[] calldata proofs,
        VerifiedOutput[] calldata consumed
    ) external {
        EpochProofClaim memory c = claim;
        if (c.bondProvider == address(0) || c.epochToProve != epoch) revert NoClaim(epoch);
        if (msg.sender != c.bondProvider) revert NotClaimant(msg.sender, c.bondProvider);
        if (getCurrentSlot() >= getProofDeadlineSlot(epoch)) {
            revert ProofWindowOver(epoch, getProofDeadlineSlot(epoch));
        }
        _declareSize(size);
        _checkNew(proofs);
        _consume(consumed);
        uint256[7] memory none;
        bool[] memory usedHere = verifier.verifyChunk(size, false, none, proofs, consumed);
        uint256 id = claimId;
        uint256 recorded = 0;
        for (uint256 i = 0; i < proofs.length; i++) {
            if (usedHere[i]) continue;
            EpochProof calldata e = proofs[i];
            outputs[id][e.position] = keccak256(abi.encode(e.circuit, e.publicInputs));
            recorded++;
        }
        outstandingOutputs += recorded;
        emit EpochChunkVerified(epoch, proofs.length, recorded, consumed.length);
    }

    /// @notice The chunks of `epoch`'s claim verified so far: the tree size
    ///         the first declared, the outputs not consumed yet, and a bit
    ///         per verified position (256 per word). All zero and empty for an
    ///         epoch that is not the claimed one, or has no chunk.
    function getEpochChunks(uint256 epoch)
        external
        view
        returns (uint256 size, uint256 outstanding, uint256[] memory verified)
    {
        if (claim.bondProvider == address(0) || claim.epochToProve != epoch || chunkTreeSize == 0) {
            return (0, 0, new uint256[](0));
        }
        size = chunkTreeSize;
        outstanding = outstandingOutputs;
        verified = new uint256[]((size + 255) / 256);
        for (uint256 w = 0; w < verified.length; w++) {
            verified[w] = verifiedBits[claimId][w];
        }
    }

    /// @notice Proves the claimed epoch: the last chunk of its proof tree (or
    ///         all of it), ending in the root, whose public inputs must state
    ///         this chain's epoch, archives, blocks and fees and the claimant
    ///         as prover id; every output earlier chunks recorded must be
    ///         consumed here. Advances the proven chain, pays the prover its
    ///         share of the epoch's fees (the rest to the proposer who
    ///         claimed), returns the bond and releases the chunks' storage.
    function submitEpochRootProof(
        EpochProofArgs calldata args,
        uint256 size,
        EpochProof[] calldata proofs,
        VerifiedOutput[] calldata consumed
    ) external {
        EpochProofClaim memory c = claim;
        uint256 fees = _checkRootArgs(args, c);
        _declareSize(size);
        _checkNew(proofs);
        _consume(consumed);
        if (outstandingOutputs != 0) revert UnconsumedOutputs(outstandingOutputs);
        verifier.verifyChunk(
            size,
            true,
            [
                args.epoch,
                uint256(uint160(c.bondProvider)),
                uint256(args.startArchive),
                uint256(args.endArchive),
                args.firstBlock,
                args.lastBlock,
                fees
            ],
            proofs,
            consumed
        );
        uint256 id = claimId;
        for (uint256 w = 0; w <= (size - 1) / 256; w++) {
            delete verifiedBits[id][w];
        }
        chunkTreeSize = 0;

        provenBlockNumber = args.lastBlock;
        delete claim;
        uint256 proverFee = fees * c.basisPointFee / 10_000;
        escrow.unstakeBond(c.bondProvider, c.bondAmount);
        if (proverFee > 0 && !feeToken.transfer(c.bondProvider, proverFee)) revert TransferFailed();
        if (fees > proverFee && !feeToken.transfer(c.proposerClaimant, fees - proverFee)) revert TransferFailed();
        emit L2ProofVerified(args.epoch, args.lastBlock, c.bondProvider, proverFee);
    }

    /// @dev The root's claims about the chain against the chain; returns the epoch's fees.
    function _checkRootArgs(EpochProofArgs calldata args, EpochProofClaim memory c) private view returns (uint256) {
        if (c.bondProvider == address(0) || c.epochToProve != args.epoch) revert NoClaim(args.epoch);
        uint256 slot = getCurrentSlot();
        if (slot >= getProofDeadlineSlot(args.epoch)) revert ProofWindowOver(args.epoch, getProofDeadlineSlot(args.epoch));
        if (args.firstBlock != provenBlockNumber + 1) revert NotNextEpoch(args.firstBlock, provenBlockNumber + 1);
        if (
            args.lastBlock < args.firstBlock || args.lastBlock > pendingBlockNumber
                || getEpochForBlock(args.firstBlock) != args.epoch || getEpochForBlock(args.lastBlock) != args.epoch
                || (args.lastBlock < pendingBlockNumber && getEpochForBlock(args.lastBlock + 1) == args.epoch)
        ) revert NotWholeEpoch(args.epoch, args.firstBlock, args.lastBlock);
        if (args.startArchive != blocks[args.firstBlock - 1].archive) {
            revert ArchiveMismatch(args.startArchive, blocks[args.firstBlock - 1].archive);
        }
        if (args.endArchive != blocks[args.lastBlock].archive) {
            revert ArchiveMismatch(args.endArchive, blocks[args.lastBlock].archive);
        }
        uint256 fees = blocks[args.lastBlock].cumulativeFees - blocks[args.firstBlock - 1].cumulativeFees;
        if (args.totalFees != fees) revert FeesMismatch(args.totalFees, fees);
        return fees;
    }

    /// @dev The tree size of the claim: set by its first chunk, the same after.
    function _declareSize(uint256 size) private {
        if (size == 0 || size > MAX_TREE_SIZE) revert TreeTooLarge(size);
        uint256 declared = chunkTreeSize;
        if (declared == 0) chunkTreeSize = size;
        else if (size != declared) revert TreeSizeMismatch(size, declared);
    }

    /// @dev Marks the chunk's positions verified; refuses one verified before.
    function _checkNew(EpochProof[] calldata proofs) private {
        uint256 id = claimId;
        for (uint256 i = 0; i < proofs.length; i++) {
            uint256 pos = proofs[i].position;
            uint256 bit = 1 << (pos % 256);
            uint256 word = verifiedBits[id][pos / 256];
            if (word & bit != 0) revert AlreadyVerified(pos);
            verifiedBits[id][pos / 256] = word | bit;
        }
    }

    /// @dev Checks each consumed output against its record and deletes it.
    function _consume(VerifiedOutput[] calldata consumed) private {
        uint256 id = claimId;
        for (uint256 j = 0; j < consumed.length; j++) {
            VerifiedOutput calldata v = consumed[j];
            bytes32 stored = outputs[id][v.position];
            if (stored == bytes32(0)) revert ChildNotVerified(v.position);
            if (stored != keccak256(abi.encode(v.circuit, v.publicInputs))) revert ChildOutputMismatch(v.position);
            delete outputs[id][v.position];
        }
        outstandingOutputs -= consumed.length;
    }

    // ---------------------------------------------------------- pruning

    /// @notice True when the first unproven epoch is past its proof window.
    function canPrune() public view returns (bool) {
        (bool exists, uint256 epoch,,) = getEpochToProve();
        return exists && getCurrentSlot() >= getProofDeadlineSlot(epoch);
    }

    /// @notice Drops the pending chain back to the proven tip and slashes the
    ///         bond of whoever claimed the expired epoch. Anyone may call it.
    function prune() external {
        if (!canPrune()) revert NothingToPrune();
        _prune();
    }

    function _prune() private {
        (, uint256 epoch,,) = getEpochToProve();
        uint256 pending = pendingBlockNumber;
        pendingBlockNumber = provenBlockNumber;
        address slashed;
        uint256 amount;
        if (claim.bondProvider != address(0) && claim.epochToProve == epoch) {
            slashed = claim.bondProvider;
            amount = claim.bondAmount;
            delete claim;
            escrow.slashBond(slashed, amount);
        }
        emit PrunedPending(epoch, provenBlockNumber, pending, slashed, amount);
    }
}
