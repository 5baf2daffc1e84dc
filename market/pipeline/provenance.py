"""Provenance of proved batches: what was proved, with what code, key, parameters and hardware.

Every batch that leaves the prove stage gets a JSON record under ``<data_dir>/batches/``:

``<batch_id>.json`` (the :class:`BatchRecord`)
    ids and inputs' hashes, code versions, proving-key hash, batching parameters (size, window,
    flush reason, controller model, blinding mode and seed), provider, hardware, proof hashes,
    per-job verification outcome and timings.
``<batch_id>.inputs.json``
    the witnesses themselves (replay needs them); their sha256s are in the record.
``<data_dir>/keys/<pk_hash>.zkey``
    the proving key, stored once per hash, as a snarkjs Groth16 zkey
    (:mod:`market.core.keyfiles`; older data dirs hold ``<pk_hash>.json``, still read).

All hashes are sha256 over a canonical JSON encoding (sorted keys, no spaces, ints as JSON
numbers): :func:`canonical_hash`. The data dir holds witnesses, i.e. client secrets: it is the
operator's private store, like a prover's scratch space, and is never published.

Replay (:func:`market.cli.pipeline.replay_batch`) re-proves from these files. With
``blinding="derived"`` the Groth16 blinding scalars ``r, s`` were derived from a per-batch seed
kept in the record (:func:`providers.prover_worker.derive_blinding`), so a replay reproduces the
proofs bit for bit; with ``"fresh"`` (random ``r, s``, zero-knowledge even towards the holder of
the record) a replay can only check that the re-proved proofs verify for the same publics.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from market.core.keyfiles import write_proving_key
from market.pipeline.errors import BatchNotFound, ProvenanceMismatch
from proving.formats.zkey import read_zkey
from proving.groth16.keys import ProvingKey, VerifyingKey

RECORD_VERSION = 1


def canonical_json(obj: Any) -> str:
    """Canonical JSON of ``obj`` (dataclasses as dicts without their ``cache``, tuples as lists, sorted keys)."""
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"))


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name != "cache"}
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes, bytearray)):
        return [_plain(x) for x in obj]  # lists, tuples, and a zkey's MontPoints / MontInts (hash as their lists)
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    return obj


def canonical_hash(obj: Any) -> str:
    """Hex sha256 of :func:`canonical_json` of ``obj``: the hash of a witness, proof or proving key."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def pk_hash(pk: Any) -> str:
    """The proving-key hash jobs name in ``ProofJob.pk_hash`` (hex sha256 of the canonical JSON, ``cache`` left out)."""
    return canonical_hash(pk)


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, str]:
    """Versions of the code that proves: raymarket, its git commit (when run from a checkout), libraries."""
    out = {"python": platform.python_version()}
    for dist in ("raymarket", "py_ecc", "numba", "numpy", "ray"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    root = Path(__file__).resolve().parents[2]
    try:
        res = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        out["git_commit"] = res.stdout.strip() if res.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = "unknown"
    return out


@dataclass
class JobRecord:
    """One job of a batch: its id, the witness hash, its public signals and outcome.

    Attributes:
        proof_sha256: hash of the proof the provider returned (None if it returned none).
        verified: True when batched verification accepted it; False when bisection isolated it.
    """

    job_id: str
    witness_sha256: str
    public_signals: list[int]
    proof_sha256: str | None = None
    verified: bool | None = None


@dataclass
class BatchRecord:
    """The provenance of one proved batch (stored as ``<data_dir>/batches/<batch_id>.json``).

    Attributes:
        batch_id, attempt: the batch (attempt > 0 for a re-auctioned one).
        circuit_id, pk_hash: the group.
        provider: who proved it; hardware: what the worker reported (cpu, cores, memory, prover).
        prover: the prover backend's name (``"ref"`` or ``"fast"``).
        blinding: ``"derived"`` (seeded, replayable bit for bit) or ``"fresh"``; blinding_seed: hex seed.
        parameters: batching parameters (size, window_s, flush reason, controller model).
        code: :func:`code_version` of the coordinator; worker_code: the worker's.
        jobs: per-job records in batch order.
        inputs_sha256: hash of the list of witness hashes (one hash for the batch's inputs).
        prove_s: the worker's proving time (seconds); created_at: UTC ISO time of the record.
    """

    batch_id: str
    attempt: int
    circuit_id: str
    pk_hash: str
    provider: str
    hardware: dict[str, Any]
    prover: str
    blinding: str
    blinding_seed: str | None
    parameters: dict[str, Any]
    code: dict[str, str]
    worker_code: dict[str, str]
    jobs: list[JobRecord]
    inputs_sha256: str
    prove_s: float
    created_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat())
    record_version: int = RECORD_VERSION

    def to_json(self) -> str:
        """The record as pretty JSON."""
        return json.dumps(_plain(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "BatchRecord":
        """Parse a record written by :meth:`to_json`."""
        d = json.loads(text)
        d["jobs"] = [JobRecord(**j) for j in d["jobs"]]
        return cls(**d)


def inputs_hash(witness_hashes: Sequence[str]) -> str:
    """The batch's inputs hash: sha256 over the ordered list of witness hashes."""
    return canonical_hash(list(witness_hashes))


class ProvenanceStore:
    """Batch records, their inputs and proving keys as files under ``data_dir`` (see the module doc)."""

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir)
        self.batches_dir = self.data_dir / "batches"
        self.keys_dir = self.data_dir / "keys"

    def key_path(self, key_hash: str) -> Path:
        """Where the proving key of hash ``key_hash`` is stored (a ``.zkey``)."""
        return self.keys_dir / f"{key_hash}.zkey"

    def save_key(self, pk: ProvingKey, key_hash: str | None = None) -> str:
        """Store ``pk`` once under its hash (as a zkey); returns the hash."""
        key_hash = key_hash or pk_hash(pk)
        path = self.key_path(key_hash)
        if not path.exists():
            write_proving_key(path, pk)
        return key_hash

    def load_key(self, key_hash: str) -> ProvingKey:
        """The :class:`proving.groth16.keys.ProvingKey` stored under ``key_hash``.

        Raises:
            BatchNotFound: no key file; ProvenanceMismatch: its content hashes differently.
            proving.errors.FormatError: the key file is not a zkey.
        """
        path = self.key_path(key_hash)
        legacy = self.keys_dir / f"{key_hash}.json"
        if path.exists():
            pk = read_zkey(path)
        elif legacy.exists():  # a data dir written before keys were stored as zkeys
            d = json.loads(legacy.read_text())
            d["vk"] = VerifyingKey(**{k: _tuplify(v) for k, v in d["vk"].items()})
            pk = ProvingKey(**{k: (v if k == "vk" else _tuplify_points(k, v)) for k, v in d.items()})
        else:
            raise BatchNotFound(f"key:{key_hash}", str(self.keys_dir))
        if pk_hash(pk) != key_hash:
            raise ProvenanceMismatch(key_hash, "proving key")
        return pk

    def save(self, record: BatchRecord, witnesses: Sequence[Sequence[int]]) -> Path:
        """Write the record and its inputs; returns the record's path."""
        inputs = {"batch_id": record.batch_id, "witnesses": [list(w) for w in witnesses]}
        _atomic_write(self.batches_dir / f"{record.batch_id}.inputs.json", json.dumps(inputs))
        path = self.batches_dir / f"{record.batch_id}.json"
        _atomic_write(path, record.to_json())
        return path

    def load(self, batch_id: str) -> tuple[BatchRecord, list[tuple[int, ...]]]:
        """The record and the witnesses of ``batch_id``, witnesses checked against their hashes.

        Raises:
            BatchNotFound: no record; ProvenanceMismatch: a stored witness does not hash as recorded.
        """
        path = self.batches_dir / f"{batch_id}.json"
        if not path.exists():
            raise BatchNotFound(batch_id, str(self.batches_dir))
        record = BatchRecord.from_json(path.read_text())
        inputs = json.loads((self.batches_dir / f"{batch_id}.inputs.json").read_text())
        witnesses = [tuple(w) for w in inputs["witnesses"]]
        for job, w in zip(record.jobs, witnesses, strict=True):
            if canonical_hash(list(w)) != job.witness_sha256:
                raise ProvenanceMismatch(batch_id, f"witness of job {job.job_id}")
        return record, witnesses

    def list_batches(self) -> list[str]:
        """Ids of the stored batches, sorted."""
        if not self.batches_dir.exists():
            return []
        return sorted(p.name[:-5] for p in self.batches_dir.glob("*.json") if not p.name.endswith(".inputs.json"))


def _tuplify(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_tuplify(x) for x in v)
    return v


_LIST_FIELDS = {"coef_matrix", "coef_constraint", "coef_signal", "coef_value", "a_query", "b_g1_query",
                "b_g2_query", "c_query", "h_query"}


def _tuplify_points(name: str, v: Any) -> Any:
    if name in _LIST_FIELDS:
        return [_tuplify(x) for x in v]
    return _tuplify(v)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
