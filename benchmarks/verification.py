"""Verification and MiMC-proof benchmark of the Groth16 protocol layer (table, or ``--json``).

Run: ``python benchmarks/verification.py [--json] [--n-rounds 91] [--ref-rounds 10]``.
Everything is measured in the same run on this machine (progress on stderr):

* ``verify_s``: one :func:`proving.groth16.verifier.verify` (plain-int pairing: one 4-pair
  Miller loop + one final exponentiation, input checks included), median of 5.
  Baseline ``verify_pyecc_s``: :func:`proving.groth16.verifier_ref.verify` (py_ecc pairings).
* ``batch_verify_8_s``, ``batch_verify_64_s``: :func:`proving.groth16.batch.batch_verify` of
  8 and 64 distinct valid proofs (n + 3 Miller loops, one final exponentiation).
  Baselines: ``sequential_verify_64_s`` (64 calls of ``verify``, measured) and
  ``sequential_verify_64_pyecc_s`` (64 calls of ``verifier_ref.verify``: 4 measured,
  extrapolated linearly; the table says so).
* ``find_invalid_64_1bad_s``: naming one bad proof among 64 by bisection.
* ``mimc_prove_ref_s``: the py_ecc reference prover on the MiMC-7 preimage circuit with
  ``--ref-rounds`` rounds; ``mimc_prove_s``: the numba prover at ``--n-rounds`` (91 =
  circomlib's, 364 constraints), first call (compile/prepare) reported apart.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proving.circuits.mimc import preimage_circuit  # noqa: E402
from proving.groth16 import prover, prover_ref, verifier, verifier_ref  # noqa: E402
from proving.groth16.batch import batch_verify, find_invalid  # noqa: E402
from proving.groth16.setup import dev_setup  # noqa: E402


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _time(fn, repeat: int = 1) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run(n_rounds: int, ref_rounds: int) -> dict:
    """All measurements as a flat dict (seconds)."""
    out: dict = {"machine": platform.machine(), "python": platform.python_version()}
    _log(f"dev setup, MiMC {n_rounds} rounds")
    circuit = preimage_circuit(1, n_rounds=n_rounds)
    out["constraints"] = circuit.r1cs.n_constraints
    start = time.perf_counter()
    pk = dev_setup(circuit.r1cs, seed=1)
    out["dev_setup_s"] = time.perf_counter() - start
    out["mimc_prove_first_s"] = _time(lambda: prover.prove(pk, circuit.witness))
    out["mimc_prove_s"] = _time(lambda: prover.prove(pk, circuit.witness), repeat=3)
    _log(f"reference prover, MiMC {ref_rounds} rounds")
    small = preimage_circuit(1, n_rounds=ref_rounds)
    small_pk = dev_setup(small.r1cs, seed=2)
    out["ref_constraints"] = small.r1cs.n_constraints
    out["mimc_prove_ref_s"] = _time(lambda: prover_ref.prove(small_pk, small.witness))
    _log("64 proofs")
    circuits = [preimage_circuit(1000 + i, n_rounds=n_rounds) for i in range(64)]
    publics = [[c.hash] for c in circuits]
    proofs = [prover.prove(pk, c.witness) for c in circuits]
    vk = pk.vk
    out["verify_s"] = _time(lambda: verifier.verify(vk, publics[0], proofs[0]), repeat=5)
    out["verify_pyecc_s"] = _time(lambda: verifier_ref.verify(vk, publics[0], proofs[0]), repeat=2)
    _log("batches")
    out["batch_verify_8_s"] = _time(lambda: batch_verify(vk, publics[:8], proofs[:8]), repeat=3)
    out["batch_verify_64_s"] = _time(lambda: batch_verify(vk, publics, proofs))
    out["sequential_verify_64_s"] = _time(lambda: [verifier.verify(vk, x, p) for x, p in zip(publics, proofs)])
    four = _time(lambda: [verifier_ref.verify(vk, x, p) for x, p in zip(publics[:4], proofs[:4])])
    out["sequential_verify_64_pyecc_s"] = four * 16
    bad = list(publics)
    bad[37] = [(bad[37][0] + 1)]
    start = time.perf_counter()
    found = find_invalid(vk, bad, proofs)
    out["find_invalid_64_1bad_s"] = time.perf_counter() - start
    assert list(found) == [37], found
    out["batch_speedup_vs_sequential"] = out["sequential_verify_64_s"] / out["batch_verify_64_s"]
    out["batch_speedup_vs_pyecc"] = out["sequential_verify_64_pyecc_s"] / out["batch_verify_64_s"]
    return out


def _table(r: dict) -> str:
    rows = [
        ("dev setup (MiMC, %d constraints)" % r["constraints"], r["dev_setup_s"], ""),
        ("MiMC prove, numba (%d constraints)" % r["constraints"], r["mimc_prove_s"], f"first call {r['mimc_prove_first_s']:.3f} s"),
        ("MiMC prove, py_ecc reference (%d constraints)" % r["ref_constraints"], r["mimc_prove_ref_s"], ""),
        ("verify (plain-int pairing)", r["verify_s"], ""),
        ("verify, py_ecc reference", r["verify_pyecc_s"], "baseline"),
        ("batch verify, n = 8", r["batch_verify_8_s"], ""),
        ("batch verify, n = 64", r["batch_verify_64_s"], ""),
        ("64 x verify (plain-int)", r["sequential_verify_64_s"], f"batch is {r['batch_speedup_vs_sequential']:.1f}x faster"),
        ("64 x verify, py_ecc", r["sequential_verify_64_pyecc_s"], f"4 measured x 16; batch is {r['batch_speedup_vs_pyecc']:.1f}x faster"),
        ("find the 1 bad proof of 64 (bisection)", r["find_invalid_64_1bad_s"], ""),
    ]
    width = max(len(n) for n, _, _ in rows)
    lines = [f"{'measurement'.ljust(width)}  {'seconds':>9}  note", "-" * (width + 30)]
    lines += [f"{n.ljust(width)}  {v:9.3f}  {note}" for n, v, note in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--n-rounds", type=int, default=91, help="MiMC rounds for the numba prover and the batch proofs")
    parser.add_argument("--ref-rounds", type=int, default=10, help="MiMC rounds for the py_ecc reference prover")
    args = parser.parse_args()
    result = run(args.n_rounds, args.ref_rounds)
    print(json.dumps(result, indent=1) if args.json else _table(result))


if __name__ == "__main__":
    main()
