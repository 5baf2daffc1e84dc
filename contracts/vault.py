"""Typed bindings of ``contracts/Vault.sol`` and the off-chain claim tree of its epoch roots.

The Vault holds the market's money: client deposits, provider stake (with unbonding), and pays withdrawals as
claims against a per-epoch Merkle root of CUMULATIVE claimable wei per address (an OpenZeppelin
StandardMerkleTree of ``(address account, uint256 cumulativeWei)`` leaves; :class:`ClaimTree` builds it, equal to
the npm ``@openzeppelin/merkle-tree``). All amounts are wei ``int``; every state change returns the receipt and
raises :class:`contracts.errors.ContractReverted` (``error_name`` = the contract's custom error, e.g.
``NothingToClaim``, ``UnbondingNotMatured``, ``EnforcedPause``, ``OwnableUnauthorizedAccount``) on revert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from eth_utils import to_checksum_address

from contracts.bindings import ContractHandle, deploy, load_artifact
from contracts.chain import Chain
from contracts.merkle import MerkleError, MerkleTree, build_tree, leaf_of

#: Burned slash amounts go here by default (no known key; a plain ETH transfer to it succeeds).
DEFAULT_BURN_SINK = "0x000000000000000000000000000000000000dEaD"
DEFAULT_UNBONDING_PERIOD_S = 7 * 24 * 3600
ZERO_ADDRESS = "0x" + "00" * 20
#: Solidity types of a claim leaf.
CLAIM_LEAF_TYPES = ("address", "uint256")
#: The Vault's events (``VaultContract.logs``).
EVENTS = ("Deposited", "Staked", "UnstakeRequested", "StakeWithdrawn", "EpochRootPosted", "Claimed", "Slashed",
          "OperatorSet", "UnbondingPeriodSet", "ChallengeSlashSet", "Paused", "Unpaused", "OwnershipTransferred")


class ClaimTree:
    """The epoch tree of cumulative claimable wei: ``{address: cumulative wei}`` -> root and proofs.

    Attributes:
        amounts: checksummed address -> cumulative wei (what the root commits to).
        tree: the :class:`contracts.merkle.MerkleTree` (StandardMerkleTree layout).
        total_wei: the sum of all leaves (``postEpochRoot``'s ``totalCumulativeWei``).
    Raises:
        MerkleError: empty mapping, or an amount not in ``[0, 2**256)``.
    """

    def __init__(self, amounts: Mapping[str, int]) -> None:
        if not amounts:
            raise MerkleError("a claim tree needs at least one address")
        self.amounts: dict[str, int] = {}
        for address, wei in amounts.items():
            if isinstance(wei, bool) or not isinstance(wei, int) or not 0 <= wei < 2**256:
                raise MerkleError(f"cumulative wei of {address} must be an int in [0, 2**256), got {wei!r}")
            self.amounts[to_checksum_address(address)] = wei
        self._order = sorted(self.amounts)
        self.tree: MerkleTree = build_tree([leaf_of(CLAIM_LEAF_TYPES, [a, self.amounts[a]]) for a in self._order])
        self.total_wei = sum(self.amounts.values())

    @property
    def root(self) -> bytes:
        return self.tree.root

    def proof(self, address: str) -> list[bytes]:
        """The inclusion proof of ``address``'s leaf.

        Raises:
            KeyError: the address has no leaf.
        """
        address = to_checksum_address(address)
        if address not in self.amounts:
            raise KeyError(f"{address} has no leaf in this claim tree")
        return self.tree.proof(self._order.index(address))


@dataclass(frozen=True)
class StakeInfo:
    """``Vault.stakeOf``: active and unbonding wei, and when the unbonding matures (unix seconds, 0: none)."""

    active: int
    unbonding: int
    matures_at: int


@dataclass(frozen=True)
class VaultTotals:
    """The Vault's books, in wei: ``liabilities = deposited + slashed_to_pool - claimed + staked``."""

    deposited: int
    slashed_to_pool: int
    claimed: int
    staked: int
    burned: int
    epoch: int
    epoch_total_cumulative: int
    liabilities: int
    balance: int

    @property
    def pending_claims(self) -> int:
        """What the latest root's total still owes: ``epoch_total_cumulative - claimed``."""
        return self.epoch_total_cumulative - self.claimed


class VaultContract(ContractHandle):
    """Typed calls of ``contracts/Vault.sol`` (see its NatSpec for the rules)."""

    def __init__(self, chain: Chain, address: str) -> None:
        super().__init__(chain, load_artifact("Vault"), address)

    @classmethod
    def deploy(cls, chain: Chain, owner_key: str | bytes, settlement: str | None = None,
               burn_sink: str = DEFAULT_BURN_SINK,
               unbonding_period_s: int = DEFAULT_UNBONDING_PERIOD_S) -> "VaultContract":
        """Deploy a Vault owned by ``owner_key``'s account, knowing the Settlement at ``settlement`` (or none).

        Raises:
            ContractReverted: ``InvalidUnbondingPeriod`` outside [1 s, 365 days], ``ZeroAddress``.
        """
        owner = chain.account(owner_key).address
        handle = deploy(chain, "Vault", owner_key, owner, to_checksum_address(burn_sink),
                        to_checksum_address(settlement or ZERO_ADDRESS), unbonding_period_s)
        return cls(chain, handle.address)

    # ---------------------------------------------------------------- admin
    def set_operator(self, owner_key: str | bytes, operator: str, enabled: bool = True) -> Any:
        return self.transact(owner_key, "setOperator", to_checksum_address(operator), enabled)

    def set_unbonding_period(self, owner_key: str | bytes, seconds: int) -> Any:
        return self.transact(owner_key, "setUnbondingPeriod", seconds)

    def set_challenge_slash(self, owner_key: str | bytes, multiplier: int, burn_bps: int) -> Any:
        """``slashChallenged`` slashes ``priceWei * multiplier`` (<= 100) and burns ``burn_bps`` (<= 10000) of it."""
        return self.transact(owner_key, "setChallengeSlash", multiplier, burn_bps)

    def pause(self, owner_key: str | bytes) -> Any:
        """Stop deposit, stake, requestUnstake, withdrawStake and claim."""
        return self.transact(owner_key, "pause")

    def unpause(self, owner_key: str | bytes) -> Any:
        return self.transact(owner_key, "unpause")

    # ---------------------------------------------------------------- money in
    def deposit(self, key: str | bytes, amount_wei: int) -> Any:
        """Deposit ``amount_wei`` as ``key``'s market balance (event ``Deposited(account, amount)``)."""
        return self.transact(key, "deposit", value=amount_wei)

    def stake(self, key: str | bytes, amount_wei: int) -> Any:
        """Bond ``amount_wei`` as ``key``'s provider stake (event ``Staked(provider, amount)``)."""
        return self.transact(key, "stake", value=amount_wei)

    def deposit_for(self, key: str | bytes, account: str, amount_wei: int) -> Any:
        """``key`` pays ``amount_wei`` as ``account``'s market balance (``Deposited(account, amount)``)."""
        return self.transact(key, "depositFor", to_checksum_address(account), value=amount_wei)

    def stake_for(self, key: str | bytes, provider: str, amount_wei: int) -> Any:
        """``key`` pays ``amount_wei`` as ``provider``'s stake (``Staked(provider, amount)``)."""
        return self.transact(key, "stakeFor", to_checksum_address(provider), value=amount_wei)

    # ---------------------------------------------------------------- unstaking
    def request_unstake(self, key: str | bytes, amount_wei: int) -> Any:
        """Move active stake to unbonding; it matures ``unbondingPeriod`` seconds later (``UnstakeRequested``)."""
        return self.transact(key, "requestUnstake", amount_wei)

    def withdraw_stake(self, key: str | bytes) -> Any:
        """Pay out matured unbonding stake (``StakeWithdrawn``); ``UnbondingNotMatured`` before."""
        return self.transact(key, "withdrawStake")

    # ---------------------------------------------------------------- epochs and claims
    def post_epoch_root(self, operator_key: str | bytes, epoch: int, root: bytes, total_cumulative_wei: int) -> Any:
        """Post epoch ``epoch`` (= current + 1). Refused: ``BadEpoch``, ``CumulativeDecreased``,
        ``Undercollateralized`` (total above deposits + unburned slashes)."""
        return self.transact(operator_key, "postEpochRoot", epoch, root, total_cumulative_wei)

    def post_tree(self, operator_key: str | bytes, epoch: int, tree: ClaimTree) -> Any:
        """:meth:`post_epoch_root` of a :class:`ClaimTree`."""
        return self.post_epoch_root(operator_key, epoch, tree.root, tree.total_wei)

    def claim(self, key: str | bytes, cumulative_wei: int, proof: Sequence[bytes]) -> Any:
        """Claim ``cumulative_wei - claimed`` for ``key``'s address (``Claimed``). Refused: ``InvalidProof``
        (no such leaf for this address), ``NothingToClaim`` (already claimed that much)."""
        return self.transact(key, "claim", cumulative_wei, list(proof))

    # ---------------------------------------------------------------- slashing
    def slash(self, operator_key: str | bytes, provider: str, amount_wei: int, burn_wei: int, ref: bytes) -> Any:
        """Slash ``amount_wei`` of ``provider``'s slashable stake, ``burn_wei`` of it burned, for ``ref`` (once)."""
        return self.transact(operator_key, "slash", to_checksum_address(provider), amount_wei, burn_wei, ref)

    def slash_challenged(self, key: str | bytes, batch_id: bytes, leaf: Any) -> Any:
        """Slash the provider of a BadProof-marked Settlement leaf (an :class:`AttestationLeaf`); anyone may call."""
        return self.transact(key, "slashChallenged", batch_id, leaf.abi_tuple())

    # ---------------------------------------------------------------- views
    def stake_of(self, provider: str, block: Any = "latest") -> StakeInfo:
        r = self.call("stakeOf", to_checksum_address(provider), block=block)
        return StakeInfo(r[0], r[1], r[2])

    def slashable_stake(self, provider: str, block: Any = "latest") -> int:
        return self.call("slashableStake", to_checksum_address(provider), block=block)

    def claimed(self, account: str, block: Any = "latest") -> int:
        """Cumulative wei paid out to ``account``."""
        return self.call("claimed", to_checksum_address(account), block=block)

    def current_epoch(self, block: Any = "latest") -> int:
        return self.call("currentEpoch", block=block)

    def current_root(self, block: Any = "latest") -> bytes:
        """The latest epoch's root (32 zero bytes before the first); earlier ones are in ``EpochRootPosted`` logs."""
        return bytes(self.call("currentRoot", block=block))

    def balance_wei(self, block: Any = "latest") -> int:
        """The Vault's ETH balance."""
        return self.chain.w3.eth.get_balance(self.address, block_identifier=block)

    def totals(self, block: Any = "latest") -> VaultTotals:
        """The Vault's books and balance at ``block`` (a confirmed block number for an audit)."""
        c = lambda fn: self.call(fn, block=block)  # noqa: E731
        return VaultTotals(c("totalDeposited"), c("totalSlashedToPool"), c("totalClaimed"), c("totalStaked"),
                           c("totalBurned"), c("currentEpoch"), c("currentTotalCumulativeWei"), c("liabilities"),
                           self.balance_wei(block))

    def logs(self, event: str, from_block: int, to_block: Any = "latest") -> list[Any]:
        """Decoded logs of ``event`` (one of :data:`EVENTS`) in ``[from_block, to_block]``; pass a narrow
        ``from_block`` (eth-tester rescans every block per call)."""
        return list(getattr(self.contract.events, event)().get_logs(from_block=from_block, to_block=to_block))
