"""The prover worker's prepared proving keys by hash: loaded and prepared once, memory-bounded LRU."""

from __future__ import annotations

import hashlib
import threading

import pytest

from providers.prover_worker import (
    KeyHashMismatch,
    KeyNotLoaded,
    PreparedKeyCache,
    ProverWorker,
    prepare_key,
    prepared_key_nbytes,
)
from proving.circuits.mimc import preimage_circuit
from proving.formats.zkey import parse_zkey, zkey_bytes
from proving.groth16.batch import batch_verify
from proving.groth16.prover import CACHE_KEY
from proving.groth16.setup import dev_setup


def dev_key(rounds: int):
    return dev_setup(preimage_circuit(None, n_rounds=rounds).r1cs, seed=7000 + rounds)


@pytest.fixture(scope="module")
def zkeys():
    """Three zkeys of different sizes, by sha256 (the content address a provider caches them under)."""
    out = {}
    for rounds in (1, 2, 3):
        data = zkey_bytes(dev_key(rounds))
        out[rounds] = (hashlib.sha256(data).hexdigest(), data)
    return out


def test_prepare_key_builds_the_fast_provers_arrays_and_they_are_counted(zkeys):
    pk = parse_zkey(zkeys[2][1])
    before = prepared_key_nbytes(pk)
    assert prepare_key(pk, "fast") is pk and CACHE_KEY in pk.cache
    assert prepared_key_nbytes(pk) > before > 0
    ref = parse_zkey(zkeys[2][1])
    prepare_key(ref, "ref")
    assert CACHE_KEY not in ref.cache


def test_cache_loads_each_key_once_and_evicts_the_least_recently_used(zkeys):
    sizes = {}
    for r, (_, data) in zkeys.items():
        sizes[r] = prepared_key_nbytes(prepare_key(parse_zkey(data), "fast"))
    cache = PreparedKeyCache(max_bytes=sizes[1] + sizes[2] + sizes[3] - 1)  # not all three fit
    loads = []

    def loader(r):
        def load():
            loads.append(r)
            return parse_zkey(zkeys[r][1])
        return load

    h = {r: zkeys[r][0] for r in zkeys}
    k1 = cache.get(h[1], loader(1))
    assert cache.get(h[1], loader(1)) is k1 and loads == [1], "a hit does not load again"
    cache.get(h[2], loader(2))
    cache.get(h[1], loader(1))  # 1 is now more recent than 2
    cache.get(h[3], loader(3))  # over the bound: 2 (least recently used) goes
    assert loads == [1, 2, 3] and cache.hashes() == [h[1], h[3]]
    st = cache.stats()
    assert (st.hits, st.misses, st.evictions, st.keys) == (2, 3, 1, 2)
    assert st.nbytes == sizes[1] + sizes[3] <= cache.max_bytes
    cache.get(h[2], loader(2))
    assert loads == [1, 2, 3, 2], "an evicted key is loaded again when asked for"


def test_a_key_over_the_bound_is_kept_alone(zkeys):
    cache = PreparedKeyCache(max_bytes=1)
    for r in (1, 2):
        cache.get(zkeys[r][0], lambda r=r: parse_zkey(zkeys[r][1]))
    assert cache.hashes() == [zkeys[2][0]] and cache.stats().evictions == 1


def test_concurrent_misses_keep_one_copy(zkeys):
    cache, got = PreparedKeyCache(), []
    key_hash, data = zkeys[1]
    threads = [threading.Thread(target=lambda: got.append(cache.get(key_hash, lambda: parse_zkey(data))))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 1 and all(pk is got[0] for pk in got)


def test_bad_cache_arguments_are_refused():
    with pytest.raises(ValueError):
        PreparedKeyCache(max_bytes=0)
    with pytest.raises(ValueError):
        PreparedKeyCache(prover="nope")


def test_worker_proves_with_a_key_sent_once_by_hash(zkeys, mimc_circuit):
    worker = ProverWorker("p1", mimc_circuit.spec.circuit_id, mimc_circuit.spec.pk, "fast", threads=1)
    key_hash, data = zkeys[2]
    with pytest.raises(KeyNotLoaded) as e:
        worker.prove_batch_with(key_hash, "b0", [], [])
    assert e.value.key_hash == key_hash
    with pytest.raises(KeyHashMismatch):
        worker.load_key("0" * 64, data)
    assert not worker.has_key(key_hash)
    assert worker.load_key(key_hash, data) is True
    assert worker.load_key(key_hash, data) is False, "a key already held is not parsed again"
    assert worker.has_key(key_hash)
    witnesses = [preimage_circuit(10 + i, n_rounds=2).witness for i in range(3)]
    out = worker.prove_batch_with(key_hash, "b1", ["j0", "j1", "j2"], witnesses, blinding_seed="ab" * 16)
    pk = parse_zkey(data)
    batch_verify(pk.vk, [list(w[1:1 + pk.n_public]) for w in witnesses], out.proofs)
    again = worker.prove_batch_with(key_hash, "b2", ["j0", "j1", "j2"], witnesses, blinding_seed="ab" * 16)
    assert again.proofs == out.proofs, "derived blinding: the same proofs (replayable)"
    st = worker.key_cache_stats()
    assert (st.keys, st.hits) == (1, 2)
    # the constructor's key still serves prove_batch, untouched by the cache
    base = worker.prove_batch("b3", ["x"], [mimc_circuit.witness(5)])
    batch_verify(mimc_circuit.spec.pk.vk, [mimc_circuit.spec.public_signals(mimc_circuit.witness(5))], base.proofs)
