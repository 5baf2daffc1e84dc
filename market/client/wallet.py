"""The money side of the SDK: a party's own Vault transactions (deposit, stake, unstake, stake withdrawal, claim),
signed locally with the party's key, and its withdraw request and balances at the exchange.

The exchange only observes the Vault (its deposit watcher credits confirmed events); nothing here hands a key to
it. Transactions go to the chain's JSON-RPC node (``rpc_url``; default: the one ``GET /v1/vault`` names), or, for a
development exchange running its own in-process EVM (which no other process can reach), through its relay
(``/v1/dev/chain/*``), which only forwards the already signed raw transaction.
"""

from __future__ import annotations

from typing import Any

from web3 import Web3

from contracts.bindings import load_artifact
from market.client._http import Transport
from market.client.errors import ClientError
from market.protocol import Action

#: Gas limits of the Vault calls (generous upper bounds; unused gas is not paid).
GAS = {"deposit": 120_000, "stake": 150_000, "requestUnstake": 120_000, "withdrawStake": 120_000,
       "claim": 250_000, "transfer": 21_000}
#: Well-known DEVELOPMENT keys that fund dev accounts (never real money): anvil's second dev account (mnemonic
#: "test test ... junk", index 1; index 0 is the exchange's default operator) and the in-process EVM's second
#: funded account (private key 2; key 1 is the operator).
ANVIL_DEV_FUNDER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
IN_PROCESS_DEV_FUNDER_KEY = "0x" + "00" * 31 + "02"


class Wallet:
    """A party's Vault transactions and balances.

    Args:
        exchange_url: the exchange (for the Vault address, the withdraw request, claim proofs, balances).
        account: the party's private key (hex / bytes) or eth-account ``LocalAccount``.
        rpc_url: the chain's JSON-RPC node; default the exchange's (``GET /v1/vault``), else its dev relay.
    Raises:
        ClientError: no way to reach the chain (not an RPC chain and no dev relay).
    """

    def __init__(self, exchange_url: str, account: Any, *, rpc_url: str | None = None, timeout_s: float = 60.0) -> None:
        self.t = Transport(exchange_url, account, timeout_s=timeout_s)
        self.vault = self.t.get("/v1/vault")
        self.rpc_url = rpc_url or self.vault.get("rpc_url")
        if not self.rpc_url and not self.vault.get("relay"):
            raise ClientError("the exchange's chain is not reachable from here: give rpc_url")
        self.w3 = Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": timeout_s})) if self.rpc_url else None
        self.contract = Web3().eth.contract(abi=load_artifact("Vault").abi)

    @property
    def address(self) -> str:
        return self.t.address

    # ------------------------------------------------------------------ transactions
    def _send(self, fn: str, *args: Any, value: int = 0, to: str | None = None) -> dict[str, Any]:
        data = "0x" if fn == "transfer" else self.contract.encode_abi(fn, args=list(args))
        if self.w3 is not None:
            fees = self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
            tx = {"chainId": self.w3.eth.chain_id, "nonce": self.w3.eth.get_transaction_count(self.address, "pending"),
                  "maxFeePerGas": 2 * fees + 10**9, "maxPriorityFeePerGas": 10**9}
        else:
            acct = self.t.get(f"/v1/dev/chain/{self.address}")
            tx = {"chainId": acct["chain_id"], "nonce": acct["nonce"], "maxFeePerGas": int(acct["max_fee_per_gas"]),
                  "maxPriorityFeePerGas": int(acct["max_priority_fee_per_gas"])}
        tx |= {"to": to or self.vault["address"], "data": data, "value": int(value), "gas": GAS[fn]}
        signed = self.t.account.sign_transaction(tx)
        raw = "0x" + bytes(signed.raw_transaction).hex()
        if self.w3 is not None:
            h = self.w3.eth.send_raw_transaction(raw)
            r = self.w3.eth.wait_for_transaction_receipt(h, timeout=60, poll_latency=0.05)
            out = {"tx_hash": "0x" + bytes(h).hex(), "status": int(r["status"]), "block_number": int(r["blockNumber"]),
                   "gas_used": int(r["gasUsed"])}
        else:
            out = self.t.post("/v1/dev/chain/send", {"raw": raw})
        if out["status"] != 1:
            raise ClientError(f"Vault.{fn} reverted (tx {out['tx_hash']})")
        return out

    def send_eth(self, to: str, amount_wei: int) -> dict[str, Any]:
        """A plain ETH transfer of ``amount_wei`` to ``to`` (e.g. a dev key funding a dev account)."""
        return self._send("transfer", value=int(amount_wei), to=to)

    def deposit(self, amount_wei: int) -> dict[str, Any]:
        """``Vault.deposit`` ``amount_wei`` (spendable at the exchange once confirmed). Returns the tx summary."""
        return self._send("deposit", value=int(amount_wei))

    def stake(self, amount_wei: int) -> dict[str, Any]:
        """``Vault.stake`` ``amount_wei`` as provider bond."""
        return self._send("stake", value=int(amount_wei))

    def unstake(self, amount_wei: int) -> dict[str, Any]:
        """``Vault.requestUnstake``: starts the unbonding period (still slashable until it matures)."""
        return self._send("requestUnstake", int(amount_wei))

    def withdraw_stake(self) -> dict[str, Any]:
        """``Vault.withdrawStake``: pays matured unbonding stake (reverts ``UnbondingNotMatured`` before)."""
        return self._send("withdrawStake")

    def withdraw(self, amount_wei: int) -> dict[str, Any]:
        """Ask the exchange to make ``amount_wei`` of the free balance claimable (from the next epoch root)."""
        return self.t.signed("/v1/withdraw", Action.ACCOUNT_WITHDRAW, {"amount_wei": str(int(amount_wei))})

    def claim_info(self) -> dict[str, Any]:
        """``POST /v1/claims`` (signed ``account.claim``: only this address may read its own claim): cumulative wei
        in the current root, proof, claimed, claimable (from the next root), debt."""
        return self.t.signed("/v1/claims", Action.ACCOUNT_CLAIM, {})

    def claim(self) -> dict[str, Any] | None:
        """``Vault.claim`` what the current root allows beyond what was claimed; None when nothing is claimable
        yet. Returns ``{"address", "amount_wei", "tx_hash", ...}``."""
        info = self.claim_info()
        cumulative, claimed = int(info["cumulative_wei"]), int(info["claimed_wei"])
        if cumulative <= claimed:
            return None
        out = self._send("claim", cumulative, [bytes.fromhex(p[2:]) for p in info["proof"]])
        return {"address": self.address, "amount_wei": str(cumulative - claimed), **out}

    def balance(self) -> dict[str, Any]:
        """The exchange balance (free, escrowed) and the Vault side (claimable, cumulative, claimed, debt)."""
        out = dict(self.t.signed("/v1/balance", Action.ACCOUNT_BALANCE, {}))
        info = self.claim_info()
        out |= {k: info[k] for k in ("claimable_wei", "cumulative_wei", "claimed_wei", "debt_wei")}
        return out

    def audit(self) -> dict[str, Any]:
        """``GET /v1/audit``: the exchange's last solvency audit."""
        return self.t.get("/v1/audit")


def dev_fund(exchange_url: str, to: str, amount_wei: int, *, rpc_url: str | None = None) -> dict[str, Any]:
    """DEVELOPMENT only: send ``amount_wei`` of chain ETH to ``to`` from a well-known dev key
    (:data:`ANVIL_DEV_FUNDER_KEY` on an RPC chain, :data:`IN_PROCESS_DEV_FUNDER_KEY` through the relay of a dev
    exchange's in-process EVM). The recipient then deposits or stakes it itself, on chain."""
    probe = Transport(exchange_url).get("/v1/vault")
    key = IN_PROCESS_DEV_FUNDER_KEY if probe.get("chain") == "in-process" else ANVIL_DEV_FUNDER_KEY
    return Wallet(exchange_url, key, rpc_url=rpc_url).send_eth(to, amount_wei)
