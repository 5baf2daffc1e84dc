"""Settlement with the other areas' real parts: the proving library's exported Solidity verifier as the
circuit verifier of proof challenges, and the ledger slashing the provider from the watcher's hook."""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from sqlalchemy.orm import Session

from contracts.bindings import Artifact, SettlementContract, deploy
from contracts.chain import connect
from contracts.errors import ContractReverted
from market.db.base import make_engine
from market.settlement.batching import BatchingPolicy, Settler, inclusion, unhex
from market.settlement.hooks import slash_provider_on_challenge
from market.settlement.watcher import Watcher, WatcherConfig, WatcherHooks
from tests.settlement.helpers import SimulatedCircuit, proof_leaf
from tests.money.funding import standalone_bond

CIRCUIT_ID = b"\x22" * 32


@pytest.mark.anvil
@pytest.mark.postgres
def test_bad_proof_challenge_through_exported_verifier_slashes_provider_in_ledger(anvil, pg_url) -> None:
    from market import ledger
    from market.db.models import ProviderRecord
    from market.db.migrate import upgrade
    from contracts.tools import npm_bin
    from proving.groth16.solidity import compile_verifier, export_verifier

    upgrade(pg_url)
    engine = make_engine(pg_url)
    chain = connect(anvil.rpc_url, dev_keys=tuple(anvil.dev_keys))
    owner, operator, challenger = chain.dev_keys[-1], chain.dev_keys[-2], chain.dev_keys[-3]
    settlement = SettlementContract.deploy(chain, owner, challenge_window_blocks=50)
    settlement.set_operator(owner, Account.from_key(operator).address)
    circuit = SimulatedCircuit.random(n_public=2)
    compiled = compile_verifier(export_verifier(circuit.verifying_key()), npm_bin("solcjs"))
    verifier = deploy(chain, Artifact("Groth16Verifier", compiled.abi, "0x" + compiled.bytecode), owner)
    settlement.register_verifier(owner, CIRCUIT_ID, verifier.address, n_public=len(circuit.ic) - 1)
    start = chain.block_number()

    provider_key = "0x" + bytes(Account.create().key).hex()
    address = Account.from_key(provider_key).address
    with Session(engine) as s, s.begin():
        s.add(ProviderRecord(name="p1", address=address, cpus=2, memory_bytes=2**30, price_per_cpu_s_wei=1,
                             price_per_gpu_s_wei=1, registered_at=time.time(), hardware={}))
        ledger.open_system_accounts(s)
        ledger.open_provider(s, "p1")
        standalone_bond(s, "p1", 10**19, "bond-p1")  # a standalone ledger: the hook's ledger slash is under test

    pub = [11, 12]
    good_proof = circuit.prove(pub)
    bad_proof = good_proof[:6] + circuit.prove(pub)[6:]
    good = proof_leaf(provider_key, settlement.domain, CIRCUIT_ID, good_proof, pub)
    bad = proof_leaf(provider_key, settlement.domain, CIRCUIT_ID, bad_proof, pub)
    settler = Settler(engine, settlement, operator, BatchingPolicy(max_batch_size=2, window_s=10.0))
    settler.add(good, job_ref="job-good", added_at_s=1.0)
    settler.add(bad, job_ref="job-bad", added_at_s=1.0)
    (batch_id,) = settler.flush(now_s=11.0)
    with Session(engine) as s:
        good_inc, bad_inc = inclusion(s, "job-good"), inclusion(s, "job-bad")
    with pytest.raises(ContractReverted) as info:
        settlement.challenge_proof(challenger, unhex(batch_id), good, good_inc.proof, CIRCUIT_ID, good_proof, pub)
    assert info.value.error_name == "ProofValid"
    settlement.challenge_proof(challenger, unhex(batch_id), bad, bad_inc.proof, CIRCUIT_ID, bad_proof, pub)

    hooks = WatcherHooks().register(on_leaf_challenged=slash_provider_on_challenge)
    watcher = Watcher(settlement, engine, WatcherConfig(from_block=start, confirmations=0), hooks)
    watcher.poll_once()
    watcher.poll_once()
    with Session(engine) as s:
        slash = ledger.get_slash(s, "challenge:job-bad")
        assert slash.provider == "p1" and slash.job_id == "job-bad" and slash.status == "pending"
        assert slash.amount_wei == bad.signed.attestation.price_wei
        assert ledger.balance(s, ledger.bond_account("p1")) == 10**19 - slash.amount_wei
        assert ledger.check_invariants(s) == []
