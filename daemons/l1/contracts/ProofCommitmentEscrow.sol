// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC20} from "./IERC20.sol";

/// @title ProofCommitmentEscrow
/// @notice Holds provers' bonds. A prover deposits fee-asset tokens; when a
///         proposer claims the prover's quote the rollup stakes the quote's
///         bond; proving the epoch unstakes it, missing the proof window
///         slashes it. Withdrawals wait `withdrawDelay` seconds so that a
///         prover cannot pull its deposit from under a quote it just sent.
contract ProofCommitmentEscrow {
    IERC20 public immutable token;
    /// @notice The rollup: the only caller of stake, unstake and slash.
    address public immutable rollup;
    uint256 public immutable withdrawDelay;

    struct Withdrawal {
        uint256 amount;
        uint256 executableAt;
    }

    /// @notice Free deposits, available as bonds.
    mapping(address => uint256) public deposits;
    /// @notice Bonds staked on claimed epochs.
    mapping(address => uint256) public staked;
    /// @notice Withdrawals waiting for their delay.
    mapping(address => Withdrawal) public pendingWithdrawals;

    event Deposited(address indexed prover, uint256 amount);
    event WithdrawStarted(address indexed prover, uint256 amount, uint256 executableAt);
    event WithdrawExecuted(address indexed prover, uint256 amount);
    event BondStaked(address indexed prover, uint256 amount);
    event BondUnstaked(address indexed prover, uint256 amount);
    event BondSlashed(address indexed prover, uint256 amount);

    error NotRollup(address caller);
    error InsufficientDeposit(address prover, uint256 available, uint256 needed);
    error InsufficientStake(address prover, uint256 staked, uint256 needed);
    error NoPendingWithdrawal(address prover);
    error WithdrawalNotReady(address prover, uint256 executableAt, uint256 now_);
    error TransferFailed();

    modifier onlyRollup() {
        if (msg.sender != rollup) revert NotRollup(msg.sender);
        _;
    }

    constructor(IERC20 token_, address rollup_, uint256 withdrawDelay_) {
        token = token_;
        rollup = rollup_;
        withdrawDelay = withdrawDelay_;
    }

    /// @notice Moves `amount` tokens from the caller into its deposit (approve first).
    function deposit(uint256 amount) external {
        if (!token.transferFrom(msg.sender, address(this), amount)) revert TransferFailed();
        deposits[msg.sender] += amount;
        emit Deposited(msg.sender, amount);
    }

    /// @notice Takes `amount` out of the caller's free deposit now and lets it
    ///         be withdrawn after the delay. A second call adds to the pending
    ///         amount and restarts the delay.
    function startWithdraw(uint256 amount) external {
        uint256 available = deposits[msg.sender];
        if (available < amount) revert InsufficientDeposit(msg.sender, available, amount);
        deposits[msg.sender] = available - amount;
        Withdrawal storage w = pendingWithdrawals[msg.sender];
        w.amount += amount;
        w.executableAt = block.timestamp + withdrawDelay;
        emit WithdrawStarted(msg.sender, w.amount, w.executableAt);
    }

    /// @notice Pays out the caller's pending withdrawal once its delay is over.
    function executeWithdraw() external {
        Withdrawal memory w = pendingWithdrawals[msg.sender];
        if (w.amount == 0) revert NoPendingWithdrawal(msg.sender);
        if (block.timestamp < w.executableAt) {
            revert WithdrawalNotReady(msg.sender, w.executableAt, block.timestamp);
        }
        delete pendingWithdrawals[msg.sender];
        if (!token.transfer(msg.sender, w.amount)) revert TransferFailed();
        emit WithdrawExecuted(msg.sender, w.amount);
    }

    function stakeBond(address prover, uint256 amount) external onlyRollup {
        uint256 available = deposits[prover];
        if (available < amount) revert InsufficientDeposit(prover, available, amount);
        deposits[prover] = available - amount;
        staked[prover] += amount;
        emit BondStaked(prover, amount);
    }

    function unstakeBond(address prover, uint256 amount) external onlyRollup {
        _unstake(prover, amount);
        deposits[prover] += amount;
        emit BondUnstaked(prover, amount);
    }

    /// @notice Takes a staked bond away from `prover`; the tokens go to the rollup.
    function slashBond(address prover, uint256 amount) external onlyRollup {
        _unstake(prover, amount);
        if (!token.transfer(rollup, amount)) revert TransferFailed();
        emit BondSlashed(prover, amount);
    }

    function _unstake(address prover, uint256 amount) private {
        uint256 s = staked[prover];
        if (s < amount) revert InsufficientStake(prover, s, amount);
        staked[prover] = s - amount;
    }
}
