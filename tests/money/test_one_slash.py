"""One fault, one slash (issue 12): a BadProof challenge of a settled leaf is slashed exactly once, on chain by
``Vault.slashChallenged`` (the authority on a chain-backed ledger), and the ledger follows that one slash; the
challenge hook queues no second, ledger-side slash; whoever sends ``slashChallenged`` first (the exchange's
epoch or anyone), the other attempt is refused; the audit is balanced throughout.

Real parts: the in-process EVM with the Settlement (keyed Groth16 verifier of a simulated circuit) and the Vault
knowing it, the Settler, the settlement watcher with the exchange's real hooks, the deposit watcher, the epoch
poster, and the ledger on SQLite.
"""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from sqlalchemy import text
from sqlalchemy.orm import Session

from contracts.attestation import AttestationLeaf, JobKind, job_id_bytes32, proof_commitment, sign_attestation
from contracts.bindings import SettlementContract, deploy, send_transaction
from contracts.chain import connect
from contracts.errors import ContractReverted
from contracts.vault import VaultContract
from market import exchange as ex
from market import ledger
from market.db.base import make_engine
from market.db.migrate import upgrade
from market.db.models import ProviderRecord
from market.ledger import chain as chain_ledger
from market.settlement.audit import audit
from market.settlement.batching import BatchingPolicy, Settler, inclusion, unhex
from market.settlement.deposits import VaultWatcher, VaultWatcherConfig, fault_ref
from market.settlement.epochs import EpochPoster
from market.settlement.watcher import Watcher, WatcherConfig, WatcherHooks
from tests.settlement.helpers import SimulatedCircuit, random_attestation

CIRCUIT_ID = b"\x33" * 32
ETH = 10**18
PRICE = 3 * 10**15
STAKE = ETH


def _key(chain, funder: str, eth: int = 10) -> str:
    key = "0x" + bytes(Account.create().key).hex()
    send_transaction(chain, chain.account(funder), {"to": Account.from_key(key).address, "value": eth * ETH,
                                                    "gas": 21_000})
    return key


def _leaf(key: str, domain, job_ref: str, proof: list[int], pub: list[int]) -> AttestationLeaf:
    att = random_attestation(Account.from_key(key).address, kind=JobKind.PROOF, price_wei=PRICE,
                             job_id=job_id_bytes32(job_ref))
    return AttestationLeaf(sign_attestation(att, key, domain), proof_commitment(CIRCUIT_ID, proof, pub))


@pytest.mark.parametrize("first", ["exchange", "anyone"])
def test_challenge_then_epoch_slashes_once_ledger_and_vault_agree(tmp_path, first: str) -> None:
    chain = connect(None)
    owner, operator, challenger = chain.dev_keys[-1], chain.dev_keys[-2], chain.dev_keys[-3]
    settlement = SettlementContract.deploy(chain, owner, challenge_window_blocks=50)
    settlement.set_operator(owner, Account.from_key(operator).address)
    circuit = SimulatedCircuit.random(n_public=2)
    verifier = deploy(chain, "KeyedGroth16Verifier", owner, *circuit.constructor_args())
    settlement.register_verifier(owner, CIRCUIT_ID, verifier.address)
    start = chain.block_number()
    vault = VaultContract.deploy(chain, owner, settlement=settlement.address, unbonding_period_s=1_000)
    vault.set_operator(owner, Account.from_key(operator).address)

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        chain_ledger.open_chain_accounts(s)  # chain-backed, as the service makes it at start

    provider_key, client_key = _key(chain, owner), _key(chain, owner)
    provider, client = Account.from_key(provider_key).address, Account.from_key(client_key).address
    with Session(engine) as s, s.begin():
        s.add(ProviderRecord(name="p1", address=provider, cpus=2, memory_bytes=2**30, price_per_cpu_s_wei=1,
                             price_per_gpu_s_wei=1, registered_at=time.time(), hardware={}))
        ledger.open_provider(s, "p1")
    vault.stake(provider_key, STAKE)
    vault.deposit(client_key, 10**17)
    deposits = VaultWatcher(vault, engine, VaultWatcherConfig(from_block=start, confirmations=0))
    deposits.poll_once()
    with Session(engine) as s, s.begin():
        ex.submit_job(s, ex.JobSpec(job_id="job-bad", client=client, kind="proof", input_hash="0x" + "ab" * 32,
                                    params={}, max_price_wei=10**16, duration_estimate_s=10), now_s=time.time())

    pub = [11, 12]
    good_proof = circuit.prove(pub)
    bad_proof = good_proof[:6] + circuit.prove(pub)[6:]
    good = _leaf(provider_key, settlement.domain, "job-good", good_proof, pub)
    bad = _leaf(provider_key, settlement.domain, "job-bad", bad_proof, pub)
    settler = Settler(engine, settlement, operator, BatchingPolicy(max_batch_size=2, window_s=10.0))
    settler.add(good, job_ref="job-good", added_at_s=1.0)
    settler.add(bad, job_ref="job-bad", added_at_s=1.0)
    (batch_id,) = settler.flush(now_s=11.0)
    with Session(engine) as s:
        bad_inc = inclusion(s, "job-bad")
    settlement.challenge_proof(challenger, unhex(batch_id), bad, bad_inc.proof, CIRCUIT_ID, bad_proof, pub,
                               gas=1_000_000)

    hooks = ex.register_settlement_hooks(WatcherHooks())  # the exchange's real hooks
    Watcher(settlement, engine, WatcherConfig(from_block=start, confirmations=0), hooks).poll_once()
    with Session(engine) as s:
        assert s.execute(text("SELECT count(*) FROM ledger_slashes")).scalar_one() == 0  # no ledger-side slash
    if first == "anyone":
        vault.slash_challenged(challenger, unhex(batch_id), bad)
    poster = EpochPoster(engine, vault, operator)
    result = poster.run_epoch()
    assert ("fault:job-bad" in result.slashes) == (first == "exchange")
    deposits.poll_once()
    poster.run_epoch()  # a second epoch slashes nothing more
    deposits.poll_once()
    with pytest.raises(ContractReverted) as info:
        vault.slash_challenged(challenger, unhex(batch_id), bad)
    assert info.value.error_name == "SlashRefUsed"

    (slashed,) = vault.logs("Slashed", start)  # exactly one slash on chain, of the documented size
    assert slashed.args.provider == provider and slashed.args.amount == PRICE  # price x multiplier 1 (< stake)
    assert slashed.args.burned == PRICE // 2  # challengeBurnBps default 50%
    assert "0x" + bytes(slashed.args.ref).hex() == fault_ref(batch_id, "0x" + bad.hash.hex())
    assert vault.stake_of(provider).active == STAKE - PRICE
    with Session(engine) as s:
        assert ledger.balance(s, ledger.bond_account("p1")) == STAKE - PRICE  # the ledger took the same, once
        assert ledger.balance(s, ledger.client_account(client)) == 10**17 - 10**16 + (PRICE - PRICE // 2)
        assert s.execute(text("SELECT count(*) FROM ledger_slashes")).scalar_one() == 0
        assert ledger.check_invariants(s) == []
    report = audit(engine, vault)
    assert report.balanced, report
    engine.dispose()
