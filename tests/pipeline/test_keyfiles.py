"""Proving keys on disk are zkeys (no pickles): the shared cache and the pipeline's provenance store."""

from __future__ import annotations

import json

import pytest

from market.core.keyfiles import load_or_build_proving_key, write_proving_key
from market.pipeline.errors import BatchNotFound, ProvenanceMismatch
from market.pipeline.provenance import ProvenanceStore, canonical_json, pk_hash
from proving.errors import FormatError
from proving.formats.zkey import read_zkey


def test_load_or_build_builds_once_then_reads_the_zkey(tmp_path, mimc_circuit):
    pk, calls = mimc_circuit.spec.pk, []
    path = tmp_path / "keys" / "mimc7-1.zkey"

    def build():
        calls.append(1)
        return pk

    first = load_or_build_proving_key(path, build)
    again = load_or_build_proving_key(path, build)
    assert calls == [1], "built on the miss only"
    assert first is pk and pk_hash(again) == pk_hash(pk)
    assert path.read_bytes()[:4] == b"zkey" and pk_hash(read_zkey(path)) == pk_hash(pk)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "no temp file left"


def test_load_or_build_refuses_a_file_that_is_not_a_zkey(tmp_path):
    path = tmp_path / "k.zkey"
    path.write_bytes(b"\x80\x04not a zkey")  # e.g. an old pickle
    with pytest.raises(FormatError):
        load_or_build_proving_key(path, lambda: pytest.fail("must not rebuild over a file it cannot read"))


def test_provenance_stores_keys_as_zkeys_and_checks_their_hash(tmp_path, mimc_circuit):
    spec = mimc_circuit.spec
    store = ProvenanceStore(tmp_path)
    store.save_key(spec.pk, spec.pk_hash)
    assert store.key_path(spec.pk_hash).read_bytes()[:4] == b"zkey"
    assert not list(store.keys_dir.glob("*.json"))
    assert store.load_key(spec.pk_hash) == spec.pk
    other = tmp_path / "other"
    write_proving_key(ProvenanceStore(other).key_path("f" * 64), spec.pk)  # a key filed under a wrong hash
    with pytest.raises(ProvenanceMismatch):
        ProvenanceStore(other).load_key("f" * 64)
    with pytest.raises(BatchNotFound):
        store.load_key("0" * 64)


def test_provenance_still_reads_keys_of_older_data_dirs(tmp_path, mimc_circuit):
    spec = mimc_circuit.spec
    store = ProvenanceStore(tmp_path)
    store.keys_dir.mkdir(parents=True)
    (store.keys_dir / f"{spec.pk_hash}.json").write_text(canonical_json(spec.pk))
    assert store.load_key(spec.pk_hash) == spec.pk
    doc = json.loads(canonical_json(spec.pk))
    doc["alpha_g1"] = doc["beta_g1"]
    (store.keys_dir / f"{spec.pk_hash}.json").write_text(json.dumps(doc))
    with pytest.raises(ProvenanceMismatch):
        store.load_key(spec.pk_hash)
