"""The exported Solidity verifier accepts our proofs and rejects tampered ones, on the
in-process EVM (web3 EthereumTesterProvider, py-evm) and on a real anvil node."""

from __future__ import annotations

from functools import cache

import pytest
from eth_account import Account
from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import ContractCustomError, ContractLogicError

from proving.field import FQ_MODULUS as Q, FR_MODULUS as R
from proving.groth16 import prover_ref
from proving.groth16.setup import dev_setup
from proving.groth16.solidity import compile_contracts, export_verifier, proof_words, snarkjs_calldata
from proving.groth16.verifier import verify
from proving.r1cs import Builder
from tests.proving.protocol_fixtures import mimc, mimc_key, mimc_proof, npm_tool


@cache
def three_publics():
    """A tiny circuit with 3 public signals (x^2, x^3, x^2 + x^3), its key, proof and publics."""
    x = 7
    b = Builder()
    y1, y2, y3 = b.public("y1", x**2), b.public("y2", x**3), b.public("y3", x**2 + x**3)
    xv = b.private("x", x)
    x2 = b.mul(xv, xv, "x2")
    b.constrain(x2, 1, y1, "y1")
    x3 = b.mul(x2, xv, "x3")
    b.constrain(x3, 1, y2, "y2")
    b.constrain(y1 + y2, 1, y3, "y3")
    pk = dev_setup(b.build(), seed=5)
    w = b.witness()
    return pk, prover_ref.prove(pk, w), w[1:4]


@pytest.fixture(scope="module")
def compiled():
    """Both verifiers compiled in one solcjs run."""
    sources = {"Mimc.sol": export_verifier(mimc_key().vk, contract_name="MimcVerifier"),
               "Three.sol": export_verifier(three_publics()[0].vk, contract_name="ThreeVerifier")}
    return compile_contracts(sources, npm_tool("solcjs"))


def _cases():
    """(contract, proof words, public inputs, expected) for the generic verify()."""
    mimc_words, h = proof_words(mimc_proof()), mimc().hash
    _pk, p3, pub3 = three_publics()
    words3 = proof_words(p3)
    tampered = list(mimc_words)
    tampered[6], tampered[7] = words3[6], words3[7]  # C of another proof: on the curve, wrong
    return [
        ("MimcVerifier", mimc_words, [h], True),
        ("MimcVerifier", mimc_words, [(h + 1) % R], False),
        ("MimcVerifier", tampered, [h], False),
        ("MimcVerifier", mimc_words, [h, h], False),
        ("MimcVerifier", mimc_words, [h + R], False),
        ("MimcVerifier", [mimc_words[0] + Q] + mimc_words[1:], [h], False),
        ("MimcVerifier", [mimc_words[0], (mimc_words[1] + 1) % Q] + mimc_words[2:], [h], False),
        ("ThreeVerifier", words3, [pub3[0], pub3[2], pub3[1]], False),
    ]


def _check_all(contracts, quick: bool = False):
    """Run the cases; ``quick`` keeps one valid and one tampered case per entry point plus the
    cheap early rejections (py-evm's pairing precompile is pure Python, ~1-2 s a call)."""
    cases = _cases()
    if quick:
        cases = [cases[i] for i in (0, 2, 3, 4, 5)]
    for name, words, publics, expected in cases:
        assert contracts[name].functions.verify(words, publics).call() is expected, (name, publics)
    if not quick:
        a, b, c = snarkjs_calldata(mimc_proof())
        assert contracts["MimcVerifier"].functions.verifyProof(a, b, c, [mimc().hash]).call() is True
        assert contracts["MimcVerifier"].functions.verifyProof(a, b, c, [mimc().hash + 1]).call() is False
    _pk, p3, pub3 = three_publics()
    a, b, c = snarkjs_calldata(p3)
    assert contracts["ThreeVerifier"].functions.verifyProof(a, b, c, pub3).call() is True
    if not quick:
        words3 = proof_words(p3)
        assert contracts["ThreeVerifier"].functions.verify(words3, pub3).call() is True


def test_python_side_of_the_cases_agrees():
    pk, p3, pub3 = three_publics()
    verify(pk.vk, pub3, p3)


def test_in_process_evm(compiled):
    w3 = Web3(EthereumTesterProvider())
    sender = w3.eth.accounts[0]
    contracts = {}
    for name, c in compiled.items():
        tx = w3.eth.contract(abi=c.abi, bytecode=c.bytecode).constructor().transact({"from": sender})
        address = w3.eth.get_transaction_receipt(tx).contractAddress
        contracts[name] = w3.eth.contract(address=address, abi=c.abi)
    _check_all(contracts, quick=True)
    # too little gas reverts (InsufficientGas) instead of reporting an invalid proof
    with pytest.raises((ContractCustomError, ContractLogicError, TransactionFailed)):
        contracts["MimcVerifier"].functions.verify(proof_words(mimc_proof()), [mimc().hash]).call({"gas": 100_000})


@pytest.mark.anvil
def test_anvil(anvil, compiled):
    w3 = anvil.w3
    account = Account.from_key(anvil.dev_keys[0])  # well-known anvil dev key
    contracts = {}
    nonce = w3.eth.get_transaction_count(account.address)
    for name, c in compiled.items():
        tx = {"from": account.address, "nonce": nonce, "gas": 3_000_000, "gasPrice": w3.eth.gas_price,
              "chainId": w3.eth.chain_id, "data": "0x" + c.bytecode}
        nonce += 1
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.005)
        assert receipt.status == 1
        contracts[name] = w3.eth.contract(address=receipt.contractAddress, abi=c.abi)
    _check_all(contracts)
    gas = contracts["MimcVerifier"].functions.verify(proof_words(mimc_proof()), [mimc().hash]).estimate_gas()
    assert 180_000 < gas < 400_000
