"""Regression tests of issue 14 item 6 (Settlement and KeyedGroth16Verifier findings), on both chains."""

from __future__ import annotations

import os

import pytest
from eth_account import Account

from contracts.attestation import AttestationLeaf, SignedAttestation, sign_attestation
from contracts.bindings import SettlementContract, at, deploy
from contracts.errors import ContractReverted
from contracts.merkle import build_tree
from tests.contracts.conftest import Market
from tests.settlement.conftest import CIRCUIT_ID
from tests.settlement.helpers import SimulatedCircuit, proof_leaf, random_attestation, signed_leaf

ZERO = "0x" + "00" * 20


def expect_revert(name: str, fn, *args, **kw) -> ContractReverted:
    with pytest.raises(ContractReverted) as info:
        fn(*args, **kw)
    assert info.value.error_name == name, info.value
    return info.value


def submit(m: Market, leaves: list[AttestationLeaf], leaf_count: int | None = None,
           total: int | None = None) -> tuple[bytes, object]:
    tree = build_tree([leaf.hash for leaf in leaves])
    batch_id = os.urandom(32)
    total = sum(l.signed.attestation.price_wei for l in leaves) if total is None else total
    m.settlement.submit_batch(m.operator_key, batch_id, tree.root, leaf_count or len(leaves), total)
    return batch_id, tree


def provider_key() -> str:
    return "0x" + bytes(Account.create().key).hex()  # generated test key


def test_provider_zero_or_signature_recovering_to_zero_is_a_bad_signature(market: Market) -> None:
    m = market
    domain = m.settlement.domain
    zero_short = AttestationLeaf(SignedAttestation(random_attestation(ZERO), b"\x01" * 64, domain))
    zero_rs = AttestationLeaf(SignedAttestation(random_attestation(ZERO), bytes(64) + b"\x1b", domain))
    key = provider_key()
    # a 65-byte signature whose r is not an x coordinate: recovers to nothing (address 0)
    no_point = AttestationLeaf(SignedAttestation(random_attestation(Account.from_key(key).address),
                                                 b"\xff" * 32 + b"\x01" * 32 + b"\x1c", domain))
    good = signed_leaf(key, domain)
    batch_id, tree = submit(m, [zero_short, zero_rs, no_point, good])
    for i, leaf in enumerate([zero_short, zero_rs, no_point]):
        assert not m.settlement.signature_valid(leaf)
        receipt = m.settlement.challenge_signature(m.challenger_key, batch_id, leaf, tree.proof(i))
        (event,) = m.settlement.events(receipt, "LeafChallenged")
        assert event.args.reason == 1
    assert m.settlement.recover_signer(zero_rs.signed.attestation, zero_rs.signed.signature) == ZERO
    assert m.settlement.signature_valid(good)
    expect_revert("SignatureValid", m.settlement.challenge_signature, m.challenger_key, batch_id, good, tree.proof(3))


def test_verifier_reverts_when_starved_and_returns_false_for_invalid_points(market: Market) -> None:
    m = market
    verifier = at(m.chain, "KeyedGroth16Verifier", m.verifier_address)
    pub = [5, 7]
    proof = m.circuit.prove(pub)
    fn = verifier.contract.functions.verify(proof, pub)
    for gas in (120_000, 190_000):  # too little left for the pairing's 181k price: a revert, never `false`
        with pytest.raises(Exception) as info:
            fn.call({"gas": gas})
        err = verifier._reverted(info.value)
        assert isinstance(err, ContractReverted) and err.error_name == "InsufficientGas", info.value
    off_curve = [1, 3] + proof[2:]  # (1, 3) is not on y^2 = x^3 + 3: the precompile fails with its full price
    assert verifier.call("verify", off_curve, pub) is False
    assert verifier.call("verify", proof, [5]) is False  # wrong public-input count


def test_verify_gas_floor_derives_from_the_public_input_count(market: Market) -> None:
    m = market
    n = 40
    circuit = SimulatedCircuit.random(n_public=n)
    verifier = deploy(m.chain, "KeyedGroth16Verifier", m.owner_key, *circuit.constructor_args())
    circuit_id = os.urandom(32)
    expect_revert("PublicInputCountMismatch", m.settlement.register_verifier, m.owner_key, circuit_id,
                  verifier.address, n - 1)  # the verifier reports its own count: a wrong one is refused
    m.settlement.register_verifier(m.owner_key, circuit_id, verifier.address)  # read from nPublic()
    floor = m.settlement.call("VERIFY_GAS_BASE") + m.settlement.call("VERIFY_GAS_PER_INPUT") * n
    assert m.settlement.verify_gas_for(circuit_id) == floor > m.settlement.call("verifyGasLimit")
    assert m.settlement.verify_gas_for(CIRCUIT_ID) == m.settlement.call("verifyGasLimit")  # 2 inputs: the limit
    if m.chain.kind == "in-process":
        return  # py-evm's pairing is pure Python (~1.5 s): the honest 40-input challenge runs on anvil
    pub = list(range(1, n + 1))
    good = circuit.prove(pub)
    used = m.chain.w3.eth.estimate_gas({"to": verifier.address, "data": verifier.encode("verify", good, pub)})
    assert used - 21_000 < floor  # what verify costs fits under the floor (call overhead and calldata included)
    leaf = proof_leaf(provider_key(), m.settlement.domain, circuit_id, good, pub)
    batch_id, tree = submit(m, [leaf])
    # an honest proof with 40 public inputs is not marked BadProof at the default limit (600k < its cost)
    expect_revert("ProofValid", m.settlement.challenge_proof, m.challenger_key, batch_id, leaf, tree.proof(0),
                  circuit_id, good, pub, gas=3_000_000)


def test_challenge_window_is_bounded(market: Market) -> None:
    m = market
    for bad in (0, 1_000_001, 2**64 - 1):
        err = expect_revert("InvalidChallengeWindow", m.settlement.set_challenge_window, m.owner_key, bad)
        assert err.error_args == (bad, 1, 1_000_000)
        with pytest.raises(ContractReverted):
            SettlementContract.deploy(m.chain, m.owner_key, challenge_window_blocks=bad)
    m.settlement.set_challenge_window(m.owner_key, 1_000_000)
    submit(m, [signed_leaf(provider_key(), m.settlement.domain)])  # no overflow at the bound
    m.settlement.set_challenge_window(m.owner_key, 8)


def test_duplicate_challenge_needs_a_valid_unchallenged_first_leaf(market: Market) -> None:
    m = market
    domain = m.settlement.domain
    key = provider_key()
    job_id = os.urandom(32)
    forger = provider_key()
    att = random_attestation(Account.from_key(key).address, job_id=job_id)
    forged = AttestationLeaf(SignedAttestation(att, sign_attestation(
        random_attestation(Account.from_key(forger).address), forger, domain).signature, domain))
    forged_unmarked = AttestationLeaf(SignedAttestation(random_attestation(att.provider, job_id=job_id),
                                                        b"\x02" * 65, domain))
    b1, t1 = submit(m, [forged, forged_unmarked, signed_leaf(key, domain)])
    m.settlement.challenge_signature(m.challenger_key, b1, forged, t1.proof(0))
    honest = signed_leaf(key, domain, job_id=job_id)
    b2, t2 = submit(m, [honest, signed_leaf(key, domain)])
    err = expect_revert("FirstLeafInvalid", m.settlement.challenge_duplicate, m.challenger_key, b1, forged,
                        t1.proof(0), b2, honest, t2.proof(0))
    assert err.error_args[2] == 1  # marked BadSignature
    expect_revert("FirstLeafInvalid", m.settlement.challenge_duplicate, m.challenger_key, b1, forged_unmarked,
                  t1.proof(1), b2, honest, t2.proof(0))  # not marked yet, but its signature is bad
    assert m.settlement.challenge_reason(b2, honest.hash) == 0


def test_same_job_id_twice_in_one_batch_is_challengeable_once(market: Market) -> None:
    m = market
    domain = m.settlement.domain
    key = provider_key()
    job_id = os.urandom(32)
    a, b = signed_leaf(key, domain, job_id=job_id), signed_leaf(key, domain, job_id=job_id)
    lo, hi = sorted([a, b], key=lambda leaf: leaf.hash)
    batch_id, tree = submit(m, [a, signed_leaf(key, domain), b])
    proof = {a.hash: tree.proof(0), b.hash: tree.proof(2)}
    expect_revert("NotLaterLeaf", m.settlement.challenge_duplicate, m.challenger_key, batch_id, hi, proof[hi.hash],
                  batch_id, lo, proof[lo.hash])
    receipt = m.settlement.challenge_duplicate(m.challenger_key, batch_id, lo, proof[lo.hash], batch_id, hi,
                                               proof[hi.hash])
    (event,) = m.settlement.events(receipt, "LeafChallenged")
    assert event.args.reason == 3 and event.args.leaf == hi.hash
    assert m.settlement.challenge_reason(batch_id, lo.hash) == 0


def test_internal_nodes_and_misstated_leaf_counts_do_not_verify(market: Market) -> None:
    m = market
    domain = m.settlement.domain
    key = provider_key()
    leaves = [signed_leaf(key, domain) for _ in range(4)]
    batch_id, tree = submit(m, leaves)
    internal, sibling = tree.nodes[1], tree.nodes[2]  # node 1 = hash of two leaves; its proof is [node 2]
    assert m.settlement.call("verifyInclusion", batch_id, internal, [sibling]) is False
    assert m.settlement.verify_inclusion(batch_id, leaves[0], tree.proof(0)) is True
    # a batch whose leafCount is misstated (1 for a 4-leaf tree): its leaves do not verify (proof length)
    lying, lying_tree = submit(m, leaves, leaf_count=1)
    assert not m.settlement.verify_inclusion(lying, leaves[0], lying_tree.proof(0))
    assert not m.settlement.verify_attestation(lying, leaves[0], lying_tree.proof(0))
    expect_revert("TooManyLeaves", m.settlement.submit_batch, m.operator_key, os.urandom(32), os.urandom(32),
                  2**32 + 1, 0)
    # a leaf priced above the batch's declared total does not verify as an attestation
    pricey = [signed_leaf(key, domain, price_wei=10**18), signed_leaf(key, domain, price_wei=1)]
    under, under_tree = submit(m, pricey, total=5)
    assert m.settlement.verify_inclusion(under, pricey[0], under_tree.proof(0))
    assert not m.settlement.verify_attestation(under, pricey[0], under_tree.proof(0))
    assert m.settlement.verify_attestation(under, pricey[1], under_tree.proof(1))


def test_pause_stops_new_batches_only(market: Market) -> None:
    m = market
    leaf = signed_leaf(provider_key(), m.settlement.domain)
    m.settlement.pause(m.owner_key)
    try:
        expect_revert("EnforcedPause", submit, m, [leaf])
        expect_revert("OwnableUnauthorizedAccount", m.settlement.unpause, m.challenger_key)
    finally:
        m.settlement.unpause(m.owner_key)
    submit(m, [leaf])
