"""Settlement gas and latency: batched Merkle roots vs one attestation transaction per job, on anvil.

For batch sizes 1, 10, 100, 1000 (``--sizes``): sign that many EIP-712 attestations, build the Merkle tree,
submit the root (one transaction), then finalise after the challenge window. Reported per size:

* ``gas_per_job``: (submitBatch gas + finalizeBatch gas) / batch size;
* ``wall_s_per_batch``: median wall time of tree build + signed raw transaction + receipt (not the providers'
  signing, which happens on their machines);
* ``baseline_gas_per_job``: the naive design measured in the same run: one ``attest(attestation, signature)``
  transaction per job storing its hash (``benchmarks/NaiveAttestations.sol``); ``ratio`` = baseline / batched.

Also the gas of one on-chain Groth16 check (a 4-pairing BN254 verifier call as a transaction, and a full
``challengeProof`` on a bad proof). anvil is started here (npm ``@foundry-rs/anvil-linux-amd64``).

Money (``contracts/Vault.sol``), medians over several transactions:

* ``deposit_gas``: one ``deposit()`` by a client that has deposited before;
* ``epoch_root_gas``: one ``postEpochRoot`` (constant in the number of leaves);
* ``claim_gas``: one ``claim(cumulativeWei, proof)`` by a provider against an epoch tree of ``--providers``
  providers + 1 client (its first claim: the ``claimed`` slot goes from zero);
* ``gas_per_job_all_in`` per batch size: (submitBatch + finalizeBatch + one epoch root + one claim per provider)
  / batch size, i.e. one batch per epoch, the batch's jobs spread over ``--providers`` providers, each claiming
  once per epoch. Target: <= 500 at batch 1000.

    python benchmarks/settlement.py [--sizes 1,10,100,1000] [--providers 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from eth_account import Account  # noqa: E402

from contracts.bindings import ContractHandle, Artifact, SettlementContract, deploy, send_transaction  # noqa: E402
from contracts.build import compile_sources  # noqa: E402
from contracts.chain import Chain, connect  # noqa: E402
from contracts.merkle import build_tree  # noqa: E402
from contracts.vault import ClaimTree, VaultContract  # noqa: E402
from tests.fixtures.services import AnvilNode  # noqa: E402
from tests.settlement.helpers import SimulatedCircuit, proof_leaf, signed_leaf  # noqa: E402

WINDOW_BLOCKS = 2


def naive_contract(chain: Chain, key: str) -> ContractHandle:
    src = (Path(__file__).resolve().parent / "NaiveAttestations.sol").read_text()
    art = compile_sources({"NaiveAttestations.sol": src})["NaiveAttestations"]
    factory = chain.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    account = chain.account(key)
    receipt = send_transaction(chain, account, {"data": factory.constructor().data_in_transaction, "gas": 1_000_000})
    return ContractHandle(chain, Artifact("NaiveAttestations", art["abi"], art["bytecode"]), receipt["contractAddress"])


def measure_batch(settlement: SettlementContract, operator: str, leaves: list, repeats: int) -> dict:
    walls, gas_submit, gas_final, ids = [], [], [], []
    for _ in range(repeats):
        batch_id = os.urandom(32)
        t0 = time.perf_counter()
        tree = build_tree([leaf.hash for leaf in leaves])
        receipt = settlement.submit_batch(operator, batch_id, tree.root, len(leaves),
                                          sum(l.signed.attestation.price_wei for l in leaves))
        walls.append(time.perf_counter() - t0)
        gas_submit.append(receipt["gasUsed"])
        ids.append(batch_id)
    settlement.chain.mine(WINDOW_BLOCKS + 1)
    for batch_id in ids:
        gas_final.append(settlement.finalize_batch(operator, batch_id)["gasUsed"])
    return {"submit_gas": statistics.median(gas_submit), "finalize_gas": statistics.median(gas_final),
            "wall_s_per_batch": statistics.median(walls)}


def measure_baseline(naive: ContractHandle, key: str, leaves: list) -> dict:
    gas = 0
    t0 = time.perf_counter()
    for leaf in leaves:
        receipt = naive.transact(key, "attest", leaf.signed.attestation.abi_tuple(), leaf.signed.signature,
                                 gas=200_000)
        gas += receipt["gasUsed"]
    return {"baseline_gas_per_job": gas / len(leaves), "baseline_wall_s": time.perf_counter() - t0}


def measure_groth16(chain: Chain, settlement: SettlementContract, owner: str, operator: str) -> dict:
    circuit = SimulatedCircuit.random(n_public=2)
    verifier = deploy(chain, "KeyedGroth16Verifier", owner, *circuit.constructor_args())
    circuit_id = b"\x42" * 32
    settlement.register_verifier(owner, circuit_id, verifier.address)
    pub = [3, 4]
    proof = circuit.prove(pub)
    verify_tx = verifier.transact(owner, "verify", proof, pub, gas=500_000)
    assert verifier.call("verify", proof, pub) is True
    bad_proof = proof[:6] + circuit.prove(pub)[6:]
    provider = "0x" + bytes(Account.create().key).hex()  # generated for the benchmark
    leaf = proof_leaf(provider, settlement.domain, circuit_id, bad_proof, pub)
    batch_id = os.urandom(32)
    settlement.set_challenge_window(owner, 50)
    settlement.submit_batch(operator, batch_id, leaf.hash, 1, 0)
    challenge = settlement.challenge_proof(owner, batch_id, leaf, [], circuit_id, bad_proof, pub)
    return {"groth16_verify_tx_gas": verify_tx["gasUsed"], "challenge_proof_tx_gas": challenge["gasUsed"],
            "groth16_n_public": len(pub)}


def measure_vault(chain: Chain, owner: str, operator: str, n_providers: int, repeats: int) -> dict:
    """Median gas of deposit, postEpochRoot and claim on a fresh Vault (keys generated and funded here)."""
    vault = VaultContract.deploy(chain, owner)
    vault.set_operator(owner, Account.from_key(operator).address)
    keys = ["0x" + bytes(Account.create().key).hex() for _ in range(n_providers + 1)]  # generated for the benchmark
    for key in keys:
        send_transaction(chain, chain.account(owner), {"to": Account.from_key(key).address, "value": 10**20,
                                                        "gas": 21_000})
    client, providers = keys[0], keys[1:]
    vault.deposit(client, 10**18)  # the first deposit initialises totalDeposited; later ones are the common case
    deposits = [vault.deposit(client, 10**18)["gasUsed"] for _ in range(repeats)]
    roots, claims = [], []
    for epoch in range(1, repeats + 1):
        amounts = {Account.from_key(p).address: epoch * 10**15 + i for i, p in enumerate(providers)}
        amounts[Account.from_key(client).address] = epoch * 10**14
        tree = ClaimTree(amounts)
        roots.append(vault.post_tree(operator, epoch, tree)["gasUsed"])
        if epoch == 1:  # first claims (zero -> nonzero claimed slot): the dearer case
            for p in providers:
                address = Account.from_key(p).address
                claims.append(vault.claim(p, amounts[address], tree.proof(address))["gasUsed"])
    totals = vault.totals()
    assert totals.balance == totals.liabilities
    return {"deposit_gas": statistics.median(deposits), "epoch_root_gas": statistics.median(roots),
            "claim_gas": statistics.median(claims), "providers_per_epoch": n_providers}


def run(sizes: list[int], repeats: int, n_providers: int = 4) -> dict:
    node = AnvilNode().start()
    try:
        chain = connect(node.rpc_url, dev_keys=tuple(node.dev_keys))
        owner, operator, baseline_key = chain.dev_keys[0], chain.dev_keys[1], chain.dev_keys[2]
        settlement = SettlementContract.deploy(chain, owner, challenge_window_blocks=WINDOW_BLOCKS)
        settlement.set_operator(owner, Account.from_key(operator).address)
        naive = naive_contract(chain, baseline_key)
        providers = ["0x" + bytes(Account.create().key).hex() for _ in range(n_providers)]  # generated
        money = measure_vault(chain, owner, operator, n_providers, repeats)
        rows = []
        for size in sizes:
            leaves = [signed_leaf(providers[i % n_providers], settlement.domain) for i in range(size)]
            row = {"batch_size": size, **measure_batch(settlement, operator, leaves, repeats if size <= 100 else 1)}
            row["gas_per_job"] = (row["submit_gas"] + row["finalize_gas"]) / size
            row["submit_gas_per_job"] = row["submit_gas"] / size
            row.update(measure_baseline(naive, baseline_key, leaves))
            row["ratio"] = row["baseline_gas_per_job"] / row["gas_per_job"]
            claimers = min(n_providers, size)
            row["gas_per_job_all_in"] = (row["submit_gas"] + row["finalize_gas"] + money["epoch_root_gas"]
                                         + claimers * money["claim_gas"]) / size
            rows.append(row)
        return {"chain": f"anvil {node.rpc_url}", "rows": rows, **money,
                "gas_per_job_all_in": {str(r["batch_size"]): r["gas_per_job_all_in"] for r in rows},
                **measure_groth16(chain, settlement, owner, operator)}
    finally:
        node.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,1000", help="comma-separated batch sizes")
    parser.add_argument("--repeats", type=int, default=3, help="batches per size (sizes <= 100)")
    parser.add_argument("--providers", type=int, default=4, help="providers per batch/epoch (one claim each)")
    parser.add_argument("--json", action="store_true", help="print JSON after the table")
    args = parser.parse_args(argv)
    result = run([int(s) for s in args.sizes.split(",")], args.repeats, args.providers)
    print(f"{'batch':>6} {'gas/job':>10} {'all-in/job':>11} {'submit gas':>11} {'final gas':>10} {'wall s/batch':>13} "
          f"{'baseline gas/job':>17} {'baseline s':>11} {'ratio':>8}")
    for r in result["rows"]:
        print(f"{r['batch_size']:>6} {r['gas_per_job']:>10.1f} {r['gas_per_job_all_in']:>11.1f} {r['submit_gas']:>11} "
              f"{r['finalize_gas']:>10} {r['wall_s_per_batch']:>13.4f} {r['baseline_gas_per_job']:>17.1f} "
              f"{r['baseline_wall_s']:>11.3f} {r['ratio']:>8.1f}")
    print(f"Vault: deposit {result['deposit_gas']} gas, epoch root {result['epoch_root_gas']} gas, claim "
          f"{result['claim_gas']} gas ({result['providers_per_epoch']} providers claiming per epoch in all-in)")
    print(f"Groth16 verify ({result['groth16_n_public']} public inputs) as a tx: {result['groth16_verify_tx_gas']} gas; "
          f"challengeProof on a bad proof: {result['challenge_proof_tx_gas']} gas")
    if args.json:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
