"""The service's money on chain: the Vault (found or deployed beside the Settlement), the deposit watcher, the
epoch poster and the continuous audit, with their routes and metrics.

Each background tick (:func:`step`): the deposit watcher applies confirmed Vault events to the ledger; every
``epoch_interval_s`` seconds (Settings) an epoch runs (earnings swept to claimable, final slashes carried out on chain, the
cumulative claimable root posted); then the audit compares the Vault's balance with the ledger's liabilities at
the watcher's checkpoint and sets the gauges ``raymarket_audit_balanced`` (1/0), ``raymarket_vault_balance_wei``,
``raymarket_ledger_liabilities_wei``, ``raymarket_pending_claims_wei``, ``raymarket_audit_block`` and
``raymarket_flagged_accounts``.

Routes: ``GET /v1/vault`` (address, epoch, root, unbonding period), ``POST /v1/claims`` (signed ``account.claim``:
the signer's own claim against the current root: cumulative wei, proof, what it claimed, what is still claimable
in the ledger, its debt; private to the address), ``GET /v1/audit`` (the last audit), ``POST /v1/withdraw`` (signed ``account.withdraw``: free balance to
claimable). Deposits, stake, unstake and claims are the party's own Vault transactions; the exchange only observes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address
from fastapi import APIRouter, Path
from prometheus_client import Gauge
from sqlalchemy.orm import Session

from contracts.errors import ContractsError
from contracts.vault import VaultContract
from market.db.models import ServiceMeta
from market.exchange.service.auth import check_envelope, consume_nonce
from market.exchange.service.errors import ServiceError, invalid
from market.ledger import InsufficientFunds
from market.ledger import chain as chain_ledger
from market.protocol import Action, ErrorCode, SignedRequest
from market.settlement.audit import AuditReport, audit
from market.settlement.deposits import VaultWatchedEvent, VaultWatcher, VaultWatcherConfig
from market.settlement.epochs import EpochPoster

log = logging.getLogger("raymarket.exchange")

VAULT_KEY = "vault_contract"
VAULT_BLOCK_KEY = "vault_deploy_block"
#: The DEVELOPMENT faucet's funder, per chain kind: well-known dev keys, public test values, never real money.
#: In-process EVM: eth-tester's funded account 6 (private key 6); anvil: its dev account #6 (mnemonic
#: "test test ... junk"). Chosen apart from the keys other parts use (#0 operator, #1/key 2 ``dev up`` funder).
DEV_FAUCET_KEYS = {
    "in-process": "0x" + "00" * 31 + "06",
    "rpc": "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
}


@dataclass
class MoneyService:
    """The Vault side of one running service (attached to the runtime as ``rt.money``)."""

    vault: VaultContract
    watcher: VaultWatcher
    poster: EpochPoster
    epoch_interval_s: float
    gauges: dict[str, Gauge]
    last_epoch_s: float = 0.0
    last_audit: AuditReport | None = None
    #: Seconds between deposit-watcher polls and audits (the loop ticks faster).
    poll_interval_s: float = 1.0
    last_poll_s: float = 0.0
    #: Serialises the dev faucet's chain transactions (one funder key, nonces read fresh per send).
    faucet_lock: threading.Lock = field(default_factory=threading.Lock)


def _meta(s: Session, key: str) -> str | None:
    row = s.get(ServiceMeta, key)
    return None if row is None else row.value


def _set_meta(s: Session, key: str, value: str) -> None:
    row = s.get(ServiceMeta, key)
    if row is None:
        s.add(ServiceMeta(key=key, value=value))
    else:
        row.value = value


def setup_vault(rt: Any) -> tuple[VaultContract, int]:
    """The Vault remembered in ``service_meta`` when it has code on this chain, else a new one (owned by the
    operator, which is also its epoch/slash operator, knowing the Settlement). Opens the ledger's chain accounts
    first, which closes ``world`` for good (:func:`market.ledger.accounts.world_closed`). Returns (vault, first
    block)."""
    chain, key = rt.chain.chain, rt.chain.operator_key
    with rt.tx() as s:
        chain_ledger.open_chain_accounts(s)  # the ledger is chain-backed from now on: `world` is closed
        remembered, block = _meta(s, VAULT_KEY), int(_meta(s, VAULT_BLOCK_KEY) or 0)
        if remembered and len(chain.w3.eth.get_code(to_checksum_address(remembered))) > 0:
            return VaultContract(chain, remembered), block
        if remembered:
            log.warning("remembered Vault %s has no code on this chain; deploying a new one", remembered)
        block = chain.block_number()
        vault = VaultContract.deploy(chain, key, settlement=rt.chain.contract.address,
                                     unbonding_period_s=rt.settings.unbonding_period_s)
        vault.set_operator(key, Account.from_key(key).address, True)
        _set_meta(s, VAULT_KEY, vault.address)
        _set_meta(s, VAULT_BLOCK_KEY, str(block))
        log.info("deployed Vault at %s on chain %s", vault.address, chain.chain_id)
        return vault, block


def attach(rt: Any) -> MoneyService:
    """Set up the Vault, its watcher and epoch poster and the audit gauges on ``rt``; sets ``rt.money``."""
    vault, block = setup_vault(rt)
    confirmations = rt.settings.confirmations
    watcher = VaultWatcher(vault, rt.engine, VaultWatcherConfig(from_block=block, confirmations=confirmations),
                           lock=rt.write_lock)
    poster = EpochPoster(rt.engine, vault, rt.chain.operator_key, lock=rt.write_lock)
    r = rt.metrics.registry
    gauges = {
        "balanced": Gauge("raymarket_audit_balanced", "1 when the Vault holds exactly what the ledger owes", registry=r),
        "vault": Gauge("raymarket_vault_balance_wei", "The Vault's ETH balance at the audited block (wei)", registry=r),
        "liabilities": Gauge("raymarket_ledger_liabilities_wei", "What the ledger owes (wei)", registry=r),
        "pending": Gauge("raymarket_pending_claims_wei", "Claimable and not yet claimed (wei)", registry=r),
        "block": Gauge("raymarket_audit_block", "The block the last audit was taken at", registry=r),
        "flagged": Gauge("raymarket_flagged_accounts", "Addresses in debt after a reorg", registry=r),
    }
    rt.money = MoneyService(vault, watcher, poster, rt.settings.epoch_interval_s, gauges)
    return rt.money


def run_audit(rt: Any) -> AuditReport:
    """Audit now and set the gauges."""
    m: MoneyService = rt.money
    report = audit(rt.engine, m.vault)
    m.last_audit = report
    g = m.gauges
    g["balanced"].set(1 if report.balanced else 0)
    g["vault"].set(float(report.contract_balance_wei))
    g["liabilities"].set(float(report.ledger_liabilities_wei))
    g["pending"].set(float(report.pending_claims_wei))
    g["block"].set(report.checked_at_block)
    g["flagged"].set(len(report.flagged))
    if not report.balanced:
        log.warning("audit unbalanced at block %s: Vault %s wei, ledger owes %s wei", report.checked_at_block,
                    report.contract_balance_wei, report.ledger_liabilities_wei)
    return report


@dataclass(frozen=True)
class FaucetResult:
    """What one DEVELOPMENT faucet call did on chain: ``[(tx hash, function, wei)]`` and the events credited."""

    txs: list[tuple[str, str, int]]
    credited: list[VaultWatchedEvent]


def check_faucet_funds(rt: Any, want_wei: int) -> None:
    """Refuse a DEVELOPMENT faucet call the dev funder key cannot pay (``want_wei`` plus a gas margin); the route calls
    it before it spends the request's nonce, so a refused faucet call changes nothing (issue 14 fuzzing).

    Raises:
        ServiceError: ``not_dev`` (the funder key has too little ETH on this chain: not a dev chain).
    """
    chain = rt.chain.chain
    funder = Account.from_key(DEV_FAUCET_KEYS[chain.kind]).address
    have = chain.w3.eth.get_balance(funder)
    if have < want_wei + 10**16:  # the value plus a margin for gas
        raise ServiceError(ErrorCode.NOT_DEV, f"the DEV faucet key {funder} holds {have} wei on this chain, "
                           f"{want_wei} wei asked: not a development chain with well-known funded dev keys",
                           "deposit from your own key (raymarket deposit AMOUNT)")


def dev_faucet(rt: Any, address: str, amount_wei: int, stake_wei: int) -> FaucetResult:
    """DEVELOPMENT faucet: real chain money for ``address``, never ledger money from nothing.

    The dev funder key (:data:`DEV_FAUCET_KEYS`, a well-known dev key of the chain kind) sends
    ``Vault.depositFor(address)`` with ``amount_wei`` and, when ``stake_wei`` > 0, ``Vault.stakeFor(address)``; the
    receipts' ``Deposited`` / ``Staked`` events are credited to the ledger at once through the deposit watcher's
    own idempotent path (:meth:`VaultWatcher.apply_receipt`: keyed by block hash, tx hash, log index, the same
    ledger operation ids), so a caller can submit right after, and the watcher's later poll of those blocks skips
    them. Dev only: these credits do not wait for ``confirmations``; a reorg that removes the block is undone by
    the watcher like any other event. The audit stays balanced (the Vault received the ETH).

    Raises:
        ServiceError: ``not_dev`` (the funder key has too little ETH on this chain: not a dev chain),
            ``conflict`` (the Vault transaction reverted, e.g. the Vault is paused).
    """
    m: MoneyService = rt.money
    chain = rt.chain.chain
    key = DEV_FAUCET_KEYS[chain.kind]
    funder = Account.from_key(key).address
    want = amount_wei + stake_wei
    with m.faucet_lock:
        check_faucet_funds(rt, want)
        chain.forget_nonce(funder)  # other processes may use the dev keys too: read the nonce fresh
        txs, receipts = [], []
        for fn, wei in (("depositFor", amount_wei), ("stakeFor", stake_wei)):
            if wei > 0:
                call = m.vault.deposit_for if fn == "depositFor" else m.vault.stake_for
                try:
                    receipt = call(key, address, wei)
                except ContractsError as exc:
                    chain.forget_nonce(funder)
                    raise ServiceError(ErrorCode.CONFLICT, f"the DEV faucet's Vault.{fn} failed: {exc}",
                                       "is the Vault paused? see the exchange log") from None
                receipts.append(receipt)
                txs.append(("0x" + bytes(receipt["transactionHash"]).hex(), fn, wei))
    credited = [e for receipt in receipts for e in m.watcher.apply_receipt(receipt)]
    log.info("DEV faucet: %s", ", ".join(f"{fn}({address}) {wei} wei in {h}" for h, fn, wei in txs))
    return FaucetResult(txs, credited)


def step(rt: Any, now_s: float) -> None:
    """One background pass: apply confirmed Vault events, run a due epoch, audit."""
    m: MoneyService | None = getattr(rt, "money", None)
    if m is None or now_s - m.last_poll_s < m.poll_interval_s:
        return
    m.last_poll_s = now_s
    m.watcher.poll_once()
    if now_s - m.last_epoch_s >= m.epoch_interval_s:
        m.last_epoch_s = now_s
        result = m.poster.run_epoch(now_s)
        if result.epoch is not None:
            log.info("epoch %s posted: root %s, total %s wei", result.epoch, result.root, result.total_wei)
        m.watcher.poll_once()
    run_audit(rt)


def router(rt: Any) -> APIRouter:
    """The Vault routes over ``rt`` (see the module docstring)."""
    r = APIRouter()

    @r.get("/v1/vault")
    def vault_info() -> dict[str, Any]:
        v = rt.money.vault
        chain = rt.chain.chain
        return {"address": v.address, "epoch": v.current_epoch(), "root": "0x" + v.current_root().hex(),
                "unbonding_period_s": v.call("unbondingPeriod"), "chain_id": chain.chain_id, "chain": chain.kind,
                "rpc_url": chain.rpc_url, "relay": chain.kind == "in-process" and bool(rt.config.dev)}

    def _relay_only() -> Any:
        chain = rt.chain.chain
        if chain.kind != "in-process" or not rt.config.dev:
            raise ServiceError(ErrorCode.NOT_DEV, "the transaction relay exists only on a development exchange with "
                               "its in-process EVM", "send Vault transactions to the chain's RPC node yourself")
        return chain

    @r.get("/v1/dev/chain/{address}")
    def relay_account(address: str = Path(pattern=r"^0x[0-9a-fA-F]{40}$")) -> dict[str, Any]:
        """Development only (in-process EVM): what a wallet needs to sign a transaction itself."""
        chain = _relay_only()
        address = to_checksum_address(address)
        fees = chain.fees(refresh=True)
        return {"address": address, "chain_id": chain.chain_id,
                "nonce": chain.w3.eth.get_transaction_count(address, "pending"),
                "balance_wei": str(chain.w3.eth.get_balance(address)),
                "max_fee_per_gas": str(fees["maxFeePerGas"]), "max_priority_fee_per_gas": str(fees["maxPriorityFeePerGas"])}

    @r.post("/v1/dev/chain/send")
    def relay_send(body: dict[str, str]) -> dict[str, Any]:
        """Development only (in-process EVM): relay a transaction the sender signed with its own key."""
        chain = _relay_only()
        raw = body.get("raw", "")
        try:
            tx_hash = chain.send_raw(bytes.fromhex(raw.removeprefix("0x")))
            receipt = chain.wait(tx_hash)
        except ValueError as exc:
            raise invalid("raw", str(exc)) from None
        return {"tx_hash": tx_hash, "status": int(receipt["status"]), "block_number": int(receipt["blockNumber"]),
                "gas_used": int(receipt["gasUsed"])}

    @r.post("/v1/claims")
    def claim(req: SignedRequest) -> dict[str, Any]:
        """The signer's claim against the Vault's current root (signed ``account.claim``): cumulative wei, proof,
        what it claimed, what is claimable from the next root, its debt.

        Signed, readable only by the address itself (a decision, issue 12): the cumulative claimable amount is
        that address's earnings and unused balance, private data; the chain shows only the root (and each
        ``Claimed`` once it is claimed), and the proof is useless to anyone else (``Vault.claim`` pays
        ``msg.sender``'s own leaf). So the exchange does not publish it per address either."""
        now = time.time()
        address, _ = check_envelope(req, Action.ACCOUNT_CLAIM, rt.domain, now)
        with rt.tx() as s:
            consume_nonce(s, req, now)
            claimable = chain_ledger.claimable_wei(s, address)
            debt = chain_ledger.debt_wei(s, address)
        m: MoneyService = rt.money
        proof = m.poster.proof(address)
        return {"address": address, "epoch": proof.epoch if proof else None,
                "cumulative_wei": str(proof.cumulative_wei) if proof else "0",
                "proof": proof.proof if proof else [], "root": proof.root if proof else None,
                "claimed_wei": str(m.vault.claimed(address)),
                "claimable_wei": str(claimable), "debt_wei": str(debt)}

    @r.get("/v1/audit")
    def last_audit() -> dict[str, Any]:
        report = rt.money.last_audit or run_audit(rt)
        return report.to_json()

    @r.post("/v1/withdraw")
    def withdraw(req: SignedRequest) -> dict[str, Any]:
        now = time.time()
        signer, p = check_envelope(req, Action.ACCOUNT_WITHDRAW, rt.domain, now)
        with rt.tx() as s:
            consume_nonce(s, req, now)
            try:
                chain_ledger.mark_withdrawable(s, f"withdraw:{signer}:{req.nonce}", signer, p.amount_wei)
            except InsufficientFunds as exc:
                raise ServiceError(ErrorCode.INSUFFICIENT_FUNDS, str(exc), "withdraw at most your free balance") \
                    from None
            claimable = chain_ledger.claimable_wei(s, signer)
        return {"address": signer, "withdrawable_wei": str(p.amount_wei), "claimable_wei": str(claimable),
                "hint": "claim on chain after the next epoch root (raymarket claim; POST /v1/claims for the proof)"}

    return r
