"""Settlement contract behaviour on both the in-process EVM and a real anvil node."""

from __future__ import annotations

import os

import pytest
from eth_account import Account

from contracts.bindings import SettlementContract
from contracts.errors import ContractReverted
from contracts.attestation import (Attestation, AttestationLeaf, SignedAttestation, Verification, attestation_digest,
                                   recover_signer, sign_attestation)
from contracts.merkle import build_tree, verify_inclusion
from tests.settlement.conftest import CIRCUIT_ID, Deployment
from tests.settlement.helpers import proof_leaf, random_attestation, signed_leaf


def submit(d: Deployment, leaves: list[AttestationLeaf]) -> tuple[bytes, object]:
    tree = build_tree([leaf.hash for leaf in leaves])
    batch_id = os.urandom(32)
    total = sum(leaf.signed.attestation.price_wei for leaf in leaves)
    d.settlement.submit_batch(d.operator_key, batch_id, tree.root, len(leaves), total)
    return batch_id, tree


def expect_revert(name: str, fn, *args, **kw) -> ContractReverted:
    with pytest.raises(ContractReverted) as info:
        fn(*args, **kw)
    assert info.value.error_name == name, info.value
    return info.value


def test_batch_of_many_jobs_settles_and_every_inclusion_verifies(deployment: Deployment) -> None:
    d = deployment
    domain = d.settlement.domain
    leaves = [signed_leaf(d.provider_key, domain) for _ in range(37)]
    batch_id, tree = submit(d, leaves)
    onchain = d.settlement.get_batch(batch_id)
    assert onchain.root == tree.root and onchain.leaf_count == 37
    assert onchain.total_paid_wei == sum(leaf.signed.attestation.price_wei for leaf in leaves)
    for i, leaf in enumerate(leaves):
        proof = tree.proof(i)
        assert d.settlement.leaf_hash(leaf) == leaf.hash
        assert verify_inclusion(tree.root, leaf.hash, proof)
        assert d.settlement.verify_inclusion(batch_id, leaf, proof)
        assert d.settlement.verify_attestation(batch_id, leaf, proof)
    # a leaf with a proof from another position, or an outside leaf, fails in both
    outsider = signed_leaf(d.provider_key, domain)
    assert not verify_inclusion(tree.root, outsider.hash, tree.proof(0))
    assert not d.settlement.verify_inclusion(batch_id, outsider, tree.proof(0))
    assert not d.settlement.verify_inclusion(batch_id, leaves[1], tree.proof(2))
    assert not d.settlement.verify_inclusion(os.urandom(32), leaves[0], tree.proof(0))
    assert not d.settlement.verify_inclusion(batch_id, leaves[0].hash, tree.proof(0))  # a leaf hash is not a leaf


def test_eip712_signature_from_python_recovers_on_chain(deployment: Deployment) -> None:
    d = deployment
    domain = d.settlement.domain
    att = random_attestation(Account.from_key(d.provider_key).address)
    signed = sign_attestation(att, d.provider_key, domain)
    assert d.settlement.recover_signer(att, signed.signature) == att.provider
    assert recover_signer(att, signed.signature, domain) == att.provider
    from contracts.attestation import attestation_digest
    assert d.settlement.attestation_digest(att) == attestation_digest(att, domain)
    tampered = random_attestation(att.provider)
    assert d.settlement.recover_signer(tampered, signed.signature) != att.provider


def test_non_operator_cannot_submit_and_non_owner_cannot_administer(deployment: Deployment) -> None:
    d = deployment
    err = expect_revert("NotOperator", d.settlement.submit_batch, d.challenger_key, os.urandom(32), os.urandom(32), 1, 0)
    assert err.error_args == (Account.from_key(d.challenger_key).address,)
    expect_revert("OwnableUnauthorizedAccount", d.settlement.set_operator, d.challenger_key, Account.from_key(d.challenger_key).address)


def test_resubmission_is_a_distinct_error_and_conflicts_are_rejected(deployment: Deployment) -> None:
    d = deployment
    leaves = [signed_leaf(d.provider_key, d.settlement.domain) for _ in range(3)]
    batch_id, tree = submit(d, leaves)
    expect_revert("BatchAlreadySubmitted", d.settlement.submit_batch, d.operator_key, batch_id, tree.root, 3, 0)
    err = expect_revert("BatchIdConflict", d.settlement.submit_batch, d.operator_key, batch_id, os.urandom(32), 3, 0)
    assert err.error_args[1] == tree.root
    expect_revert("EmptyBatch", d.settlement.submit_batch, d.operator_key, os.urandom(32), bytes(32), 1, 0)


def test_signature_challenge_succeeds_on_forged_leaf_and_fails_on_good_one(deployment: Deployment) -> None:
    d = deployment
    domain = d.settlement.domain
    good = signed_leaf(d.provider_key, domain)
    forger = "0x" + bytes(Account.create().key).hex()
    att = random_attestation(Account.from_key(d.provider_key).address)  # names the provider ...
    forged_sig = sign_attestation(random_attestation(Account.from_key(forger).address), forger, domain).signature
    bad = AttestationLeaf(SignedAttestation(att, forged_sig, domain))  # ... signed by someone else
    short = AttestationLeaf(SignedAttestation(random_attestation(att.provider), b"\x01" * 64, domain))
    batch_id, tree = submit(d, [good, bad, short])
    expect_revert("SignatureValid", d.settlement.challenge_signature, d.challenger_key, batch_id, good, tree.proof(0))
    receipt = d.settlement.challenge_signature(d.challenger_key, batch_id, bad, tree.proof(1))
    (event,) = d.settlement.events(receipt, "LeafChallenged")
    assert event.args.jobId == att.job_id and event.args.reason == 1 and event.args.provider == att.provider
    assert d.settlement.challenge_reason(batch_id, bad.hash) == 1
    assert not d.settlement.verify_attestation(batch_id, bad, tree.proof(1))
    d.settlement.challenge_signature(d.challenger_key, batch_id, short, tree.proof(2))
    expect_revert("LeafAlreadyChallenged", d.settlement.challenge_signature, d.challenger_key, batch_id, bad,
                  tree.proof(1))
    expect_revert("NotIncluded", d.settlement.challenge_signature, d.challenger_key, batch_id, bad, tree.proof(0))
    assert d.settlement.get_batch(batch_id).challenged_count == 2


def test_proof_challenge_runs_the_pairing_check(deployment: Deployment) -> None:
    d = deployment
    domain = d.settlement.domain
    pub = [5, 7]
    good_proof = d.circuit.prove(pub)
    bad_proof = list(good_proof)
    bad_proof[6:8] = d.circuit.prove(pub)[6:8]  # C from another proof: a valid point, a failing pairing
    good = proof_leaf(d.provider_key, domain, CIRCUIT_ID, good_proof, pub)
    bad = proof_leaf(d.provider_key, domain, CIRCUIT_ID, bad_proof, pub)
    inference = signed_leaf(d.provider_key, domain)
    batch_id, tree = submit(d, [good, bad, inference])
    expect_revert("ProofValid", d.settlement.challenge_proof, d.challenger_key, batch_id, good, tree.proof(0),
                  CIRCUIT_ID, good_proof, pub)
    expect_revert("ProofCommitmentMismatch", d.settlement.challenge_proof, d.challenger_key, batch_id, good,
                  tree.proof(0), CIRCUIT_ID, good_proof, [5, 8])
    expect_revert("NotAProofJob", d.settlement.challenge_proof, d.challenger_key, batch_id, inference,
                  tree.proof(2), CIRCUIT_ID, good_proof, pub)
    receipt = d.settlement.challenge_proof(d.challenger_key, batch_id, bad, tree.proof(1), CIRCUIT_ID, bad_proof, pub,
                                           gas=1_000_000)
    (event,) = d.settlement.events(receipt, "LeafChallenged")
    assert event.args.reason == 2 and event.args.jobId == bad.signed.attestation.job_id
    if d.chain.kind == "in-process":
        return  # py-evm's pairing precompile is pure Python (~1.5 s per check): the rest runs on anvil
    # the verifier itself agrees: the good proof verifies, the bad one does not
    from contracts.bindings import at
    verifier = at(d.chain, "KeyedGroth16Verifier", d.verifier_address)
    assert verifier.call("verify", good_proof, pub) is True
    assert verifier.call("verify", bad_proof, pub) is False
    assert verifier.call("verify", good_proof, [5, 7 + 1]) is False


def test_policy_is_signed_and_only_proof_policy_leaves_take_a_proof_challenge(deployment: Deployment) -> None:
    """The verification policy is in the signed struct (a leaf re-labelled with another policy no longer
    recovers to its provider); challengeProof refuses a leaf not under the ``proof`` policy (NotProofPolicy),
    while an attest-only leaf still takes the signature challenge (its signature is all it has)."""
    d = deployment
    domain = d.settlement.domain
    provider = Account.from_key(d.provider_key).address
    pub = [5, 7]
    bad_proof = d.circuit.prove(pub)
    bad_proof[6:8] = d.circuit.prove(pub)[6:8]
    for verification in (Verification.PROOF, Verification.SPOT_CHECK, Verification.ATTEST_ONLY):
        att = random_attestation(provider, verification=verification)
        signed = sign_attestation(att, d.provider_key, domain)
        assert d.settlement.recover_signer(att, signed.signature) == provider
        assert d.settlement.attestation_digest(att) == attestation_digest(att, domain)
        relabelled = Attestation(**{**att.__dict__, "verification": Verification.ATTEST_ONLY, "sample_rate_ppm": 0}) \
            if verification != Verification.ATTEST_ONLY else Attestation(**{**att.__dict__, "sample_rate_ppm": 1,
                                                                          "verification": Verification.SPOT_CHECK})
        assert d.settlement.recover_signer(relabelled, signed.signature) != provider
    attest_only_proof = proof_leaf(d.provider_key, domain, CIRCUIT_ID, bad_proof, pub,
                                   verification=Verification.ATTEST_ONLY)
    forger = "0x" + bytes(Account.create().key).hex()
    att = random_attestation(provider, verification=Verification.ATTEST_ONLY)
    forged = AttestationLeaf(SignedAttestation(att, sign_attestation(
        random_attestation(Account.from_key(forger).address), forger, domain).signature, domain))
    proof_policy = proof_leaf(d.provider_key, domain, CIRCUIT_ID, bad_proof, pub)
    batch_id, tree = submit(d, [attest_only_proof, forged, proof_policy])
    err = expect_revert("NotProofPolicy", d.settlement.challenge_proof, d.challenger_key, batch_id, attest_only_proof,
                        tree.proof(0), CIRCUIT_ID, bad_proof, pub)
    assert err.error_args == (attest_only_proof.signed.attestation.job_id, 2)
    d.settlement.challenge_signature(d.challenger_key, batch_id, forged, tree.proof(1))
    assert d.settlement.challenge_reason(batch_id, forged.hash) == 1
    receipt = d.settlement.challenge_proof(d.challenger_key, batch_id, proof_policy, tree.proof(2), CIRCUIT_ID,
                                           bad_proof, pub, gas=1_000_000)
    (event,) = d.settlement.events(receipt, "LeafChallenged")
    assert event.args.reason == 2


def test_duplicate_challenge_marks_the_later_batch(deployment: Deployment) -> None:
    d = deployment
    domain = d.settlement.domain
    job_id = os.urandom(32)
    first = signed_leaf(d.provider_key, domain, job_id=job_id)
    again = signed_leaf(d.provider_key, domain, job_id=job_id)  # same job, attested again
    other = signed_leaf(d.provider_key, domain)
    b1, t1 = submit(d, [first, signed_leaf(d.provider_key, domain)])
    b2, t2 = submit(d, [other, again])
    expect_revert("JobIdMismatch", d.settlement.challenge_duplicate, d.challenger_key, b1, first, t1.proof(0),
                  b2, other, t2.proof(0))
    expect_revert("NotLaterBatch", d.settlement.challenge_duplicate, d.challenger_key, b2, again, t2.proof(1),
                  b1, first, t1.proof(0))
    expect_revert("NotLaterLeaf", d.settlement.challenge_duplicate, d.challenger_key, b2, again, t2.proof(1),
                  b2, again, t2.proof(1))  # a leaf is no duplicate of itself
    receipt = d.settlement.challenge_duplicate(d.challenger_key, b1, first, t1.proof(0), b2, again, t2.proof(1))
    (event,) = d.settlement.events(receipt, "LeafChallenged")
    assert event.args.reason == 3 and event.args.batchId == b2 and event.args.leaf == again.hash


def test_challenge_window_then_finalisation(deployment: Deployment) -> None:
    d = deployment
    domain = d.settlement.domain
    forger = "0x" + bytes(Account.create().key).hex()
    att = random_attestation(Account.from_key(d.provider_key).address)
    bad = AttestationLeaf(SignedAttestation(att, sign_attestation(
        random_attestation(Account.from_key(forger).address), forger, domain).signature, domain))
    batch_id, tree = submit(d, [bad, signed_leaf(d.provider_key, domain)])
    expect_revert("ChallengeWindowOpen", d.settlement.finalize_batch, d.challenger_key, batch_id)
    d.chain.mine(8)
    expect_revert("ChallengeWindowClosed", d.settlement.challenge_signature, d.challenger_key, batch_id, bad,
                  tree.proof(0))
    receipt = d.settlement.finalize_batch(d.challenger_key, batch_id)
    (event,) = d.settlement.events(receipt, "BatchFinalized")
    assert event.args.batchId == batch_id and event.args.challengedCount == 0
    assert d.settlement.get_batch(batch_id).finalized
    expect_revert("AlreadyFinalized", d.settlement.finalize_batch, d.challenger_key, batch_id)
    expect_revert("UnknownBatch", d.settlement.finalize_batch, d.challenger_key, os.urandom(32))


@pytest.mark.anvil
def test_submit_batch_costs_two_rpc_calls(anvil) -> None:
    from web3.middleware import Web3Middleware

    from contracts.chain import connect

    chain = connect(anvil.rpc_url, dev_keys=tuple(anvil.dev_keys))
    owner, operator = chain.dev_keys[-1], chain.dev_keys[-2]
    settlement = SettlementContract.deploy(chain, owner)
    settlement.set_operator(owner, Account.from_key(operator).address)
    settlement.submit_batch(operator, os.urandom(32), os.urandom(32), 1, 0)  # nonce and fees now cached
    calls: list[str] = []

    class Count(Web3Middleware):
        def request_processor(self, method, params):
            calls.append(method)
            return method, params

    chain.w3.middleware_onion.inject(Count, name="count", layer=0)
    settlement.submit_batch(operator, os.urandom(32), os.urandom(32), 1, 0)
    # one send; the rest are receipt polls only (a loaded machine may need more than one poll):
    # no nonce, fee, gas-estimate or chain-id round trips
    assert calls[0] == "eth_sendRawTransaction" and len(calls) >= 2
    assert set(calls[1:]) == {"eth_getTransactionReceipt"}
