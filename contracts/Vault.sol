// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Settlement} from "./Settlement.sol";

/// @title Vault: the market's money on chain. Client deposits, provider stake with unbonding, cumulative
/// Merkle claims per epoch, and slashes.
/// @notice A sibling of `Settlement` (which stays money-free); the Vault knows it and reads its challenge
/// marks to slash a provider whose signed proof was shown bad (`slashChallenged`).
///
/// Money in: `deposit()` / `depositFor(account)` (a client's spendable balance, credited off-chain by the watcher
/// on `Deposited`), `stake()` / `stakeFor(provider)` (a provider's bond, `Staked`). Money out: `claim(cumulativeWei, proof)` against the latest epoch
/// root, which commits to the CUMULATIVE wei each address may ever have withdrawn (OpenZeppelin
/// StandardMerkleTree, leaves `(address account, uint256 cumulativeWei)`); a claim pays the difference from
/// what the address already claimed. Clients withdraw unused balance and providers their earnings that way.
/// Stake leaves by `requestUnstake(amount)` then, after `unbondingPeriod` seconds (block.timestamp),
/// `withdrawStake()`; unbonding stake stays slashable until it matures.
///
/// Solvency, enforced on chain: claims are paid from the claim pool only (deposits + the unburned part of
/// slashes), never from stake: each epoch root declares its total cumulative wei, which may not shrink and may
/// not exceed the pool funded so far, and the sum of claims may not exceed the latest declared total. So
/// `address(this).balance >= liabilities()` where
/// `liabilities() = totalDeposited + totalSlashedToPool - totalClaimed + totalStaked`.
/// @dev Custom errors; an event for every state change; checks-effects-interactions with `nonReentrant` on
/// every function that sends ETH (OpenZeppelin `Address.sendValue`; the guard lives in transient storage, EIP-1153);
/// no loops. Past epoch roots are in the `EpochRootPosted` events; storage keeps the latest. The owner's pause stops
/// deposit(For), stake(For), requestUnstake, withdrawStake and claim; slashing and epoch roots go on.
contract Vault is Ownable, Pausable, ReentrancyGuardTransient {
    struct StakeInfo {
        uint128 active; // bonded, slashable
        uint128 unbonding; // requested out, slashable until maturesAt
        uint64 maturesAt; // block.timestamp from which `unbonding` may be withdrawn (0: nothing unbonding)
    }

    // ------------------------------------------------------------------ constants
    uint64 public constant MIN_UNBONDING_PERIOD = 1;
    uint64 public constant MAX_UNBONDING_PERIOD = 365 days;
    uint16 public constant MAX_BPS = 10_000;
    uint16 public constant MAX_CHALLENGE_SLASH_MULTIPLIER = 100;

    // ------------------------------------------------------------------ configuration
    /// @notice Where burned slash amounts go (e.g. 0x...dEaD); fixed at deployment.
    address payable public immutable burnSink;
    /// @notice The Settlement whose BadProof marks `slashChallenged` acts on (address(0): none).
    Settlement public immutable settlement;
    uint64 public unbondingPeriod; // seconds
    uint16 public challengeSlashMultiplier; // slash = priceWei * multiplier (capped at the slashable stake)
    uint16 public challengeBurnBps; // share of a challenge slash that is burned, in basis points
    mapping(address => bool) public isOperator;

    // ------------------------------------------------------------------ state
    mapping(address => StakeInfo) private _stakes;
    mapping(address => uint256) public claimed; // cumulative wei paid out to each address
    mapping(bytes32 => bool) public slashRefUsed; // a slash reference is used once
    uint64 public currentEpoch; // 0 until the first root
    bytes32 public currentRoot;
    uint256 public currentTotalCumulativeWei; // the latest root's declared sum of leaves
    uint256 public totalDeposited;
    uint256 public totalSlashedToPool;
    uint256 public totalClaimed;
    uint256 public totalStaked; // active + unbonding, all providers
    uint256 public totalBurned;

    // ------------------------------------------------------------------ events
    event OperatorSet(address indexed operator, bool enabled);
    event UnbondingPeriodSet(uint64 secondsPeriod);
    event ChallengeSlashSet(uint16 multiplier, uint16 burnBps);
    event Deposited(address indexed account, uint256 amount);
    event Staked(address indexed provider, uint256 amount);
    event UnstakeRequested(address indexed provider, uint256 amount, uint256 unbondingTotal, uint64 maturesAt);
    event StakeWithdrawn(address indexed provider, uint256 amount);
    event EpochRootPosted(uint64 indexed epoch, bytes32 root, uint256 totalCumulativeWei, address operator);
    event Claimed(address indexed account, uint256 amount, uint256 cumulativeWei, uint64 epoch);
    event Slashed(
        address indexed provider,
        bytes32 indexed ref,
        uint256 amount,
        uint256 burned,
        uint256 toPool,
        uint256 fromUnbonding
    );

    // ------------------------------------------------------------------ errors
    error NotOperator(address caller);
    error ZeroAddress();
    error ZeroAmount();
    error InvalidUnbondingPeriod(uint64 secondsPeriod, uint64 minSeconds, uint64 maxSeconds);
    error InvalidChallengeSlash(uint16 multiplier, uint16 burnBps);
    error InsufficientStake(address provider, uint256 available, uint256 requested);
    error NothingUnbonding(address provider);
    error UnbondingNotMatured(address provider, uint64 maturesAt, uint256 nowTimestamp);
    error BadEpoch(uint64 expected, uint64 given);
    error EmptyRoot();
    error CumulativeDecreased(uint256 previousTotal, uint256 newTotal);
    error Undercollateralized(uint256 totalCumulativeWei, uint256 fundedWei);
    error NoEpochRoot();
    error InvalidProof(address account, uint256 cumulativeWei);
    error NothingToClaim(address account, uint256 cumulativeWei, uint256 alreadyClaimed);
    error ClaimExceedsEpochTotal(uint256 totalClaimed, uint256 epochTotal);
    error SlashRefUsed(bytes32 ref);
    error BurnExceedsAmount(uint256 burn, uint256 amount);
    error NoSettlement();
    error NotSlashableChallenge(bytes32 batchId, bytes32 leaf, uint8 reason);
    error NotSignedByProvider(bytes32 batchId, bytes32 leaf);
    error NothingToSlash(address provider);

    modifier onlyOperator() {
        if (!isOperator[msg.sender]) revert NotOperator(msg.sender);
        _;
    }

    /// @param owner_ the owner (pause, operators, parameters).
    /// @param burnSink_ receives burned slash amounts (must accept plain ETH transfers).
    /// @param settlement_ the Settlement whose challenge marks feed `slashChallenged` (address(0): none).
    /// @param unbondingPeriod_ seconds between `requestUnstake` and `withdrawStake`.
    constructor(address owner_, address payable burnSink_, Settlement settlement_, uint64 unbondingPeriod_)
        Ownable(owner_)
    {
        if (burnSink_ == address(0)) revert ZeroAddress();
        burnSink = burnSink_;
        settlement = settlement_;
        _setUnbondingPeriod(unbondingPeriod_);
        _setChallengeSlash(1, MAX_BPS / 2);
    }

    // ------------------------------------------------------------------ admin
    function setOperator(address operator, bool enabled) external onlyOwner {
        if (operator == address(0)) revert ZeroAddress();
        isOperator[operator] = enabled;
        emit OperatorSet(operator, enabled);
    }

    /// @notice Applies to unstake requests made afterwards.
    function setUnbondingPeriod(uint64 secondsPeriod) external onlyOwner {
        _setUnbondingPeriod(secondsPeriod);
    }

    function setChallengeSlash(uint16 multiplier, uint16 burnBps) external onlyOwner {
        _setChallengeSlash(multiplier, burnBps);
    }

    function pause() external onlyOwner {
        _pause();
    }

    function unpause() external onlyOwner {
        _unpause();
    }

    // ------------------------------------------------------------------ money in
    /// @notice Deposit `msg.value` wei as the caller's spendable market balance.
    function deposit() external payable whenNotPaused {
        if (msg.value == 0) revert ZeroAmount();
        totalDeposited += msg.value;
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice Bond `msg.value` wei as the caller's provider stake.
    function stake() external payable whenNotPaused {
        if (msg.value == 0) revert ZeroAmount();
        StakeInfo storage s = _stakes[msg.sender];
        s.active += SafeCast.toUint128(msg.value);
        totalStaked += msg.value;
        emit Staked(msg.sender, msg.value);
    }

    /// @notice Deposit `msg.value` wei as `account`'s spendable market balance (anyone may pay for anyone: a gift
    /// the payer cannot take back). Emits the same `Deposited(account, amount)` as `deposit()`; the development
    /// faucet of a dev exchange funds its users this way from a well-known dev key.
    function depositFor(address account) external payable whenNotPaused {
        if (account == address(0)) revert ZeroAddress();
        if (msg.value == 0) revert ZeroAmount();
        totalDeposited += msg.value;
        emit Deposited(account, msg.value);
    }

    /// @notice Bond `msg.value` wei as `provider`'s stake (paid by the caller; only `provider` can ever unstake
    /// it). Emits the same `Staked(provider, amount)` as `stake()`.
    function stakeFor(address provider) external payable whenNotPaused {
        if (provider == address(0)) revert ZeroAddress();
        if (msg.value == 0) revert ZeroAmount();
        StakeInfo storage s = _stakes[provider];
        s.active += SafeCast.toUint128(msg.value);
        totalStaked += msg.value;
        emit Staked(provider, msg.value);
    }

    // ------------------------------------------------------------------ unstaking
    /// @notice Move `amount` of active stake to unbonding; all unbonding stake matures `unbondingPeriod`
    /// seconds from now (a later request restarts the clock for the whole unbonding amount).
    function requestUnstake(uint256 amount) external whenNotPaused {
        if (amount == 0) revert ZeroAmount();
        StakeInfo storage s = _stakes[msg.sender];
        if (amount > s.active) revert InsufficientStake(msg.sender, s.active, amount);
        uint128 a = uint128(amount);
        s.active -= a;
        s.unbonding += a;
        uint64 maturesAt = uint64(block.timestamp) + unbondingPeriod;
        s.maturesAt = maturesAt;
        emit UnstakeRequested(msg.sender, amount, s.unbonding, maturesAt);
    }

    /// @notice Pay out the caller's matured unbonding stake.
    function withdrawStake() external nonReentrant whenNotPaused {
        StakeInfo storage s = _stakes[msg.sender];
        uint256 amount = s.unbonding;
        if (amount == 0) revert NothingUnbonding(msg.sender);
        if (block.timestamp < s.maturesAt) revert UnbondingNotMatured(msg.sender, s.maturesAt, block.timestamp);
        s.unbonding = 0;
        s.maturesAt = 0;
        totalStaked -= amount;
        emit StakeWithdrawn(msg.sender, amount);
        Address.sendValue(payable(msg.sender), amount);
    }

    // ------------------------------------------------------------------ epochs and claims
    /// @notice Post epoch `epoch`'s root (epochs are consecutive from 1): a StandardMerkleTree of
    /// `(address, uint256 cumulativeWei)` whose leaves sum to `totalCumulativeWei`.
    function postEpochRoot(uint64 epoch, bytes32 root, uint256 totalCumulativeWei) external onlyOperator {
        if (epoch != currentEpoch + 1) revert BadEpoch(currentEpoch + 1, epoch);
        if (root == bytes32(0)) revert EmptyRoot();
        if (totalCumulativeWei < currentTotalCumulativeWei) {
            revert CumulativeDecreased(currentTotalCumulativeWei, totalCumulativeWei);
        }
        uint256 funded = totalDeposited + totalSlashedToPool;
        if (totalCumulativeWei > funded) revert Undercollateralized(totalCumulativeWei, funded);
        currentEpoch = epoch;
        currentRoot = root;
        currentTotalCumulativeWei = totalCumulativeWei;
        emit EpochRootPosted(epoch, root, totalCumulativeWei, msg.sender);
    }

    /// @notice Claim up to `cumulativeWei` (the caller's leaf in the latest epoch root): pays
    /// `cumulativeWei - claimed[caller]`. A second claim of the same cumulative amount reverts NothingToClaim.
    function claim(uint256 cumulativeWei, bytes32[] calldata proof) external nonReentrant whenNotPaused {
        bytes32 root = currentRoot;
        if (root == bytes32(0)) revert NoEpochRoot();
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(msg.sender, cumulativeWei))));
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert InvalidProof(msg.sender, cumulativeWei);
        uint256 already = claimed[msg.sender];
        if (cumulativeWei <= already) revert NothingToClaim(msg.sender, cumulativeWei, already);
        uint256 amount = cumulativeWei - already;
        uint256 newTotal = totalClaimed + amount;
        if (newTotal > currentTotalCumulativeWei) revert ClaimExceedsEpochTotal(newTotal, currentTotalCumulativeWei);
        claimed[msg.sender] = cumulativeWei;
        totalClaimed = newTotal;
        emit Claimed(msg.sender, amount, cumulativeWei, currentEpoch);
        Address.sendValue(payable(msg.sender), amount);
    }

    // ------------------------------------------------------------------ slashing
    /// @notice Slash `amount` of `provider`'s stake (active first, then unmatured unbonding) for the off-chain
    /// decision `ref` (used once): `burn` wei go to the burn sink, the rest to the claim pool, to be assigned to
    /// the rescuer and the client in the next epoch root.
    function slash(address provider, uint256 amount, uint256 burn, bytes32 ref) external onlyOperator nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (burn > amount) revert BurnExceedsAmount(burn, amount);
        _slash(provider, amount, burn, ref);
    }

    /// @notice Anyone may slash the provider of a leaf that `settlement` marked BadProof and that the provider
    /// really signed: priceWei * challengeSlashMultiplier, capped at the slashable stake; challengeBurnBps of it
    /// burned, the rest to the claim pool. Once per (batch, leaf). BadSignature and Duplicate marks name a
    /// provider that did not sign a bad result: they are settled off-chain (the job is not paid), not slashed.
    function slashChallenged(bytes32 batchId, Settlement.Leaf calldata leaf) external nonReentrant {
        if (address(settlement) == address(0)) revert NoSettlement();
        bytes32 h = settlement.leafHash(leaf);
        Settlement.Reason reason = settlement.challenged(batchId, h);
        if (reason != Settlement.Reason.BadProof) revert NotSlashableChallenge(batchId, h, uint8(reason));
        if (!settlement.signatureValid(leaf)) revert NotSignedByProvider(batchId, h);
        address provider = leaf.att.provider;
        uint256 slashable = slashableStake(provider);
        uint256 amount = leaf.att.priceWei * challengeSlashMultiplier;
        if (amount > slashable) amount = slashable;
        if (amount == 0) revert NothingToSlash(provider);
        _slash(provider, amount, amount * challengeBurnBps / MAX_BPS, keccak256(abi.encode(batchId, h)));
    }

    // ------------------------------------------------------------------ views
    function stakeOf(address provider) external view returns (StakeInfo memory) {
        return _stakes[provider];
    }

    /// @notice Active stake plus unbonding stake that has not matured yet.
    function slashableStake(address provider) public view returns (uint256) {
        StakeInfo storage s = _stakes[provider];
        return uint256(s.active) + (block.timestamp < s.maturesAt ? uint256(s.unbonding) : 0);
    }

    /// @notice What the Vault owes: the unclaimed claim pool plus all stake. Its balance is at least this.
    function liabilities() public view returns (uint256) {
        return totalDeposited + totalSlashedToPool - totalClaimed + totalStaked;
    }

    /// @notice How much of the latest root's total is still unclaimed.
    function pendingClaimsWei() external view returns (uint256) {
        return currentTotalCumulativeWei - totalClaimed;
    }

    // ------------------------------------------------------------------ internals
    function _slash(address provider, uint256 amount, uint256 burn, bytes32 ref) private {
        if (slashRefUsed[ref]) revert SlashRefUsed(ref);
        StakeInfo storage s = _stakes[provider];
        uint256 available = slashableStake(provider);
        if (amount > available) revert InsufficientStake(provider, available, amount);
        uint256 fromActive = amount < s.active ? amount : s.active;
        uint256 fromUnbonding = amount - fromActive;
        s.active -= uint128(fromActive);
        s.unbonding -= uint128(fromUnbonding);
        slashRefUsed[ref] = true;
        totalStaked -= amount;
        totalBurned += burn;
        totalSlashedToPool += amount - burn;
        emit Slashed(provider, ref, amount, burn, amount - burn, fromUnbonding);
        if (burn > 0) Address.sendValue(burnSink, burn);
    }

    function _setUnbondingPeriod(uint64 secondsPeriod) private {
        if (secondsPeriod < MIN_UNBONDING_PERIOD || secondsPeriod > MAX_UNBONDING_PERIOD) {
            revert InvalidUnbondingPeriod(secondsPeriod, MIN_UNBONDING_PERIOD, MAX_UNBONDING_PERIOD);
        }
        unbondingPeriod = secondsPeriod;
        emit UnbondingPeriodSet(secondsPeriod);
    }

    function _setChallengeSlash(uint16 multiplier, uint16 burnBps) private {
        if (multiplier > MAX_CHALLENGE_SLASH_MULTIPLIER || burnBps > MAX_BPS) {
            revert InvalidChallengeSlash(multiplier, burnBps);
        }
        challengeSlashMultiplier = multiplier;
        challengeBurnBps = burnBps;
        emit ChallengeSlashSet(multiplier, burnBps);
    }
}
