"""What the exchange and a provider agree on about one job, independent of transport: input hashes,
canonical result bytes, the ticket a lease carries, and the dev proving keys of the MiMC-7 circuit.

Shared by the exchange service (``market.exchange.service``) and the provider agent (``providers``),
which may import ``market.core`` but not each other. Pure functions plus one on-disk key cache.

Ticket shapes (``lease["ticket"]``):

* ``inference``: ``{"input_b64": str}`` — UTF-8 text, one sentence per line;
  ``input_hash = keccak256(text bytes)``; result = ``.npy`` bytes of ``float32 (n_sentences, 384)``.
* ``proof``: ``{"circuit": "mimc7", "rounds": int, "preimage": str, "public": [str], "setup_seed": int}`` —
  prove knowledge of ``preimage`` with ``mimc7(preimage, 0, rounds) == public[0]``;
  ``input_hash = proof_input_hash(circuit, rounds, public[0])``; result = :func:`canonical_proof_bytes`
  of the snarkjs ``proof.json`` and ``public.json`` objects; the proving key is
  :func:`dev_proving_key` (``rounds``, ``setup_seed``).

* ``proof`` on a registered circuit (``circuit`` = sha256 hex of its zkey): ``{"circuit", "zkey_sha256",
  "witness_b64", "public": [str]}`` — the provider fetches the zkey by hash (``GET /v1/circuits/{id}/zkey``),
  proves the snarkjs witness; ``input_hash = circuit_input_hash(circuit, public)``; the witness stays out of
  every hash and log (it is the client's secret; the exchange deletes it once the job is paid or cancelled).

In every case ``result_hash = keccak256(result bytes)``, and the provider signs the EIP-712
``Attestation`` (``contracts.attestation``) over (job id, input hash, result hash, provider, price, kind,
verification policy, spot-check rate in ppm).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak

from market.core.keyfiles import load_or_build_proving_key
from proving.circuits.mimc import mimc7, preimage_circuit
from proving.groth16.keys import ProvingKey
from proving.groth16.setup import dev_setup

#: Seed of the dev ceremony for the MiMC circuit (NOT FOR PRODUCTION: the toxic waste is derivable).
DEV_SETUP_SEED = 20261121
#: The only circuit proof jobs use today.
MIMC_CIRCUIT = "mimc7"
#: Attestation ``kind`` (uint8) per job kind (``contracts.attestation.JobKind``).
ATTESTATION_KIND = {"inference": 0, "proof": 1}


class TicketInputError(ValueError):
    """A job input is malformed (not UTF-8, no sentence, unknown circuit)."""


def sentences_from_text(data: bytes) -> list[str]:
    """Split UTF-8 ``data`` into sentences, one per non-blank line (stripped).

    Raises:
        TicketInputError: not UTF-8, or no non-blank line.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TicketInputError(f"input is not UTF-8 text ({exc}); give a text file, one sentence per line") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise TicketInputError("input has no sentences; give a text file with one sentence per line")
    return lines


def hex32(b: bytes) -> str:
    """``0x`` + 64 hex digits."""
    return "0x" + bytes(b).hex()


def inference_input_hash(data: bytes) -> bytes:
    """keccak-256 of an inference job's input text bytes (32 bytes)."""
    return keccak(data)


def proof_public_hash(preimage: int, rounds: int) -> int:
    """The public statement of a proof job: ``mimc7(preimage, 0, rounds)`` (a field element)."""
    return mimc7(int(preimage), 0, int(rounds))


def proof_input_hash(circuit: str, rounds: int, public_hash: int) -> bytes:
    """keccak-256 of a proof job's public statement (circuit, rounds, public hash); the preimage stays out."""
    return keccak(f"{circuit}:{rounds}:{public_hash}".encode())


def is_circuit_id(circuit: str) -> bool:
    """``circuit`` names a registered circuit (64 lowercase hex digits: the sha256 of its zkey)."""
    return len(circuit) == 64 and all(c in "0123456789abcdef" for c in circuit)


def circuit_input_hash(circuit_id: str, public: list[int] | list[str]) -> bytes:
    """keccak-256 of a registered circuit's proof statement (circuit id, public signals); no witness."""
    return keccak(f"circuit:{circuit_id}:{','.join(str(int(x)) for x in public)}".encode())


def canonical_proof_bytes(proof_json: dict, public_json: list) -> bytes:
    """Canonical bytes of a proof result (the bytes hashed into the attestation and downloaded by the client)."""
    return json.dumps({"proof": proof_json, "public": public_json}, sort_keys=True, separators=(",", ":")).encode()


def parse_proof_bytes(data: bytes) -> tuple[dict, list]:
    """``(proof_json, public_json)`` from :func:`canonical_proof_bytes` output.

    Raises:
        TicketInputError: not that JSON shape.
    """
    try:
        obj = json.loads(data.decode("utf-8"))
        return obj["proof"], obj["public"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise TicketInputError(f"not a canonical proof result ({type(exc).__name__}: {exc})") from None


def proof_ticket(preimage: int, rounds: int, circuit: str = MIMC_CIRCUIT) -> dict[str, Any]:
    """The proof ticket of the module docstring for ``preimage`` and ``rounds``.

    Raises:
        TicketInputError: unknown circuit.
    """
    if circuit != MIMC_CIRCUIT:
        raise TicketInputError(f"unknown circuit {circuit!r}; use {MIMC_CIRCUIT!r}")
    public = proof_public_hash(preimage, rounds)
    return {"circuit": circuit, "rounds": int(rounds), "preimage": str(int(preimage)), "public": [str(public)],
            "setup_seed": DEV_SETUP_SEED}


def dev_proving_key(rounds: int, cache_dir: Path | None = None, seed: int = DEV_SETUP_SEED) -> ProvingKey:
    """The MiMC-7 circuit's proving key for ``rounds`` from the dev ceremony (NOT FOR PRODUCTION), cached as
    ``<cache_dir>/mimc7-<rounds>-<seed>.zkey`` when ``cache_dir`` is given (~1 s to build at 10 rounds).

    Raises:
        proving.errors.FormatError: a cached file is not a zkey (delete it to rebuild).
    """
    def build() -> ProvingKey:
        return dev_setup(preimage_circuit(None, n_rounds=int(rounds)).r1cs, seed=seed)

    if cache_dir is None:
        return build()
    return load_or_build_proving_key(Path(cache_dir) / f"mimc7-{int(rounds)}-{seed}.zkey", build)
