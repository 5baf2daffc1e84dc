"""Proving benchmark: numba MSM and Groth16 prover against py_ecc, snarkjs and groth16py.

Run: ``python benchmarks/proving.py [--json] [--workdir DIR]``. Prints a table to stdout (or
JSON with ``--json``); progress goes to stderr. Everything is measured in the same run on the
same machine:

* ``msm_2_16_s``: Pippenger MSM of 2^16 random BN254 G1 points (:mod:`proving.msm`), best of
  3, compiled beforehand. Baseline ``msm_pyecc_est_s``: py_ecc's naive sum of scalar
  multiplications, measured on a subset (``--pyecc-sample`` points) and extrapolated linearly
  (the table says so).
* ``prove_inprocess_s``: Groth16 prove (:mod:`proving.groth16.prover`) for a circom circuit, a chain of
  circomlib ``Poseidon(2)`` hashes compiled by ``circom2`` (63 links = 32,571 constraints,
  domain 2^15); zkey from ``snarkjs groth16 setup`` if a prepared 2^16 powers-of-tau is in
  the workdir (``--make-ptau`` makes one: 20-60 minutes), else from our dev setup written as
  a snarkjs zkey (see :func:`build_circuit`). Best of ``--repeat`` runs with the key already
  prepared; the first prove
  (key preparation included) is ``prove_first_s``. Baselines on the same zkey and witness:
  ``snarkjs groth16 prove`` (wall time of the CLI process, as a user runs it) and
  ``groth16py.prove_wtns`` (arkworks, native; key import timed apart).
* ``batch_verify_64_s`` vs ``sequential_verify_64_s``: 64 proofs of one small circuit (the
  MiMC preimage of :mod:`proving.circuits.mimc` with a dev setup; verification cost does not
  depend on circuit size) checked by :func:`proving.groth16.batch.batch_verify` vs one by one
  with py_ecc (:func:`pyecc_verify`: 4 Miller loops + 1 final exponentiation each, timed on
  ``--sequential-sample`` proofs and extrapolated to 64; the table says so), and one by one
  with the project's own :func:`proving.groth16.verifier.verify` (all 64, ``sequential_verify_ours_64_s``).
* ``--only peers`` (issue 15, the prover against rapidsnark): on a bigger chain (``--peer-links``, default 118
  links = about 61,000 constraints, domain 2^16), WHOLE PROCESS, as a user runs it, in alternating runs
  (``--peer-repeat``, best and median kept): ``prove_s`` = ``raymarket prove ZKEY WTNS`` (the CLI process:
  Python start, imports, zkey read, key preparation, prove, proof.json written) with ``peak_mib`` its peak
  resident memory (GNU ``/usr/bin/time``'s maximum RSS of the command alone); ``rapidsnark_prove_s`` and
  ``rapidsnark_peak_mib`` the same for iden3's rapidsnark ``prover`` (found via ``$RAPIDSNARK`` or
  ``../shared/tools/rapidsnark/prover``; the row is skipped, never failed, when absent: nothing in the
  project depends on it); ``steady_prove_s`` = one proof in-process with the key already parsed and
  prepared (the way a provider proves many jobs on one circuit), ``steady_proofs_per_s`` its inverse, and
  rapidsnark's steady rate = 1 / its whole-process time (it has no resident mode); ``ratio_vs_rapidsnark`` =
  rapidsnark_prove_s / prove_s (> 1: ours faster) and ``steady_ratio_vs_rapidsnark``. Both proofs are checked
  by ``snarkjs groth16 verify``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHAIN_CIRCOM = """pragma circom 2.0.0;
include "poseidon.circom";
template PoseidonChain(N) {
    signal input x;
    signal output out;
    component h[N];
    signal acc[N + 1];
    acc[0] <== x;
    for (var i = 0; i < N; i++) {
        h[i] = Poseidon(2);
        h[i].inputs[0] <== acc[i];
        h[i].inputs[1] <== i;
        acc[i + 1] <== h[i].out;
    }
    out <== acc[N];
}
component main = PoseidonChain(%d);
"""


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def best_of(n: int, fn, *args, **kwargs) -> float:
    return min(timed(fn, *args, **kwargs)[0] for _ in range(n))


def run(cmd: list[str], cwd: Path) -> float:
    """Run a command, fail loudly with its output; return its wall time in seconds."""
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return time.perf_counter() - t0


# ------------------------------------------------------------------------ MSM ----

def random_g1_points(n: int, workdir: Path, seed: int = 1) -> np.ndarray:
    """``n`` random G1 points ``k_i * G`` (uniform ``k_i``) as an ``(n, 8)`` array, cached as .npy."""
    from proving import curve as C
    from proving.field import to_limbs

    path = workdir / f"g1_points_{n}_{seed}.npy"
    if path.exists():
        return np.load(path)
    log(f"generating {n} random G1 points (once, cached in {path})")
    rng = random.Random(seed)
    r = 21888242871839275222246405745257275088548364400416034343698204186575808495617
    gen = C.g1_to_jacobian(C.g1_to_affine_array([(1, 2)]))
    pts = C.g1_batch_to_affine(C.g1_apply("mul", np.repeat(gen, n, axis=0),
                                          to_limbs([rng.randrange(1, r) for _ in range(n)])))
    np.save(path, pts)
    return pts


def bench_msm(log2_n: int, pyecc_sample: int, workdir: Path) -> dict:
    from py_ecc import optimized_bn128 as bn

    from proving import curve as C
    from proving import msm as M
    from proving.field import to_limbs

    n = 1 << log2_n
    r = bn.curve_order
    pts = random_g1_points(n, workdir)
    rng = random.Random(2)
    ks = [rng.randrange(r) for _ in range(n)]
    scal = to_limbs(ks)
    M.msm_g1_arrays(pts[:64], scal[:64])  # compile
    t_msm = best_of(3, M.msm_g1_arrays, pts, scal)
    log(f"msm 2^{log2_n}: {t_msm:.3f} s")
    sample = [(C.g1_from_affine_array(pts[i:i + 1])[0], ks[i]) for i in range(pyecc_sample)]
    t0 = time.perf_counter()
    acc = bn.Z1
    for (x, y), k in sample:
        acc = bn.add(acc, bn.multiply((bn.FQ(x), bn.FQ(y), bn.FQ.one()), k))
    t_py = time.perf_counter() - t0
    got = C.g1_from_affine_array(C.g1_batch_to_affine(M.msm_g1_arrays(pts[:pyecc_sample], scal[:pyecc_sample])))[0]
    x, y = bn.normalize(acc)
    assert got == (int(x), int(y)), "numba MSM disagrees with py_ecc on the sample"
    return {"msm_log2_n": log2_n, "msm_2_16_s": t_msm, "msm_pyecc_sample": pyecc_sample,
            "msm_pyecc_sample_s": t_py, "msm_pyecc_est_s": t_py * n / pyecc_sample,
            "msm_window_bits": M.window_bits(n)}


# ------------------------------------------------------------------------ circuit ----

def build_circuit(workdir: Path, links: int, make_ptau: bool) -> dict:
    """circom2 circuit, zkey and witness, each made once and cached in ``workdir``.

    The zkey comes from ``snarkjs groth16 setup`` when a prepared 2^16 powers-of-tau is in the
    workdir (made with ``--make-ptau``: ``prepare phase2`` took over 40 minutes on this shared
    2-core machine and was not finished), else from :func:`proving.groth16.setup.dev_setup`
    written in the snarkjs zkey format: snarkjs, groth16py and ours all prove from that file.
    """
    from contracts.tools import npm_bin

    snarkjs, circom = npm_bin("snarkjs"), npm_bin("circom2")
    lib = workdir / "circomlib"
    if not lib.exists():  # circom2 is WebAssembly: it only sees paths under the working directory
        shutil.copytree(REPO / ".npm-tools" / "node_modules" / "circomlib" / "circuits", lib)
    name = f"chain{links}"
    src = workdir / f"{name}.circom"
    if not (workdir / f"{name}.r1cs").exists():
        src.write_text(CHAIN_CIRCOM % links)
        log(f"compiling {src.name} with circom2")
        run([circom, src.name, "--r1cs", "--wasm", "-o", ".", "-l", "circomlib"], workdir)
    zkey = workdir / f"{name}.zkey"
    source = (workdir / f"{name}.zkey.source").read_text() if zkey.exists() else None
    if source is None:
        ptau = workdir / "pot16_final.ptau"
        if make_ptau and not ptau.exists():
            log("making a 2^16 powers-of-tau (new, contribute, prepare phase2): 20+ minutes, once")
            run([snarkjs, "powersoftau", "new", "bn128", "16", "pot16_0.ptau"], workdir)
            run([snarkjs, "powersoftau", "contribute", "pot16_0.ptau", "pot16_1.ptau", "--name=bench",
                 "-e=raymarket benchmark entropy (not a ceremony)"], workdir)
            run([snarkjs, "powersoftau", "prepare", "phase2", "pot16_1.ptau", "pot16_final.ptau.tmp"], workdir)
            (workdir / "pot16_final.ptau.tmp").rename(ptau)
        if ptau.exists():
            log("snarkjs groth16 setup")
            run([snarkjs, "groth16", "setup", f"{name}.r1cs", ptau.name, f"{name}.zkey.tmp"], workdir)
            source = "snarkjs groth16 setup (ptau 2^16)"
        else:
            log("dev setup (proving.groth16.setup.dev_setup) -> snarkjs zkey format")
            from proving.formats.r1cs_file import read_r1cs
            from proving.formats.zkey import write_zkey
            from proving.groth16.setup import dev_setup
            write_zkey(workdir / f"{name}.zkey.tmp", dev_setup(read_r1cs(workdir / f"{name}.r1cs"), seed=1))
            source = "proving dev_setup, written as a snarkjs zkey (no ptau)"
        (workdir / f"{name}.zkey.tmp").rename(zkey)
        (workdir / f"{name}.zkey.source").write_text(source)
    wtns = workdir / f"{name}.wtns"
    if not wtns.exists():
        (workdir / "input.json").write_text(json.dumps({"x": "12345"}))
        run([snarkjs, "wtns", "calculate", f"{name}_js/{name}.wasm", "input.json", wtns.name], workdir)
    return {"zkey": zkey, "wtns": wtns, "snarkjs": snarkjs, "zkey_source": source}


def bench_prove(workdir: Path, links: int, repeat: int, make_ptau: bool) -> dict:
    """Our prover, snarkjs and groth16py on one zkey and witness, timed in rotation
    (ours, snarkjs, groth16py, ours, ...) so that load from other processes hits all three
    alike; each keeps its best time."""
    from proving.formats.snarkjs_json import write_proof, write_public
    from proving.formats.wtns_file import read_wtns
    from proving.formats.zkey import read_zkey
    from proving.groth16 import prover, verifier

    files = build_circuit(workdir, links, make_ptau)
    t_read, pk = timed(read_zkey, files["zkey"])
    witness = read_wtns(files["wtns"])
    constraints = max(pk.coef_constraint) + 1 - (pk.n_public + 1)
    log(f"circuit: {constraints} constraints, {pk.n_vars} signals, domain {pk.domain_size}")
    t_first, proof = timed(prover.prove, pk, witness)
    public = witness[1:pk.n_public + 1]
    verifier.verify(pk.vk, public, proof)
    write_proof(workdir / "proof_ours.json", proof)
    write_public(workdir / "public_ours.json", public)
    snarkjs = files["snarkjs"]
    run([snarkjs, "zkey", "export", "verificationkey", files["zkey"].name, "vk.json"], workdir)
    run([snarkjs, "groth16", "verify", "vk.json", "public_ours.json", "proof_ours.json"], workdir)
    contenders = {
        "prove_inprocess_s": lambda: prover.prove(pk, witness),
        "snarkjs_prove_s": lambda: run([snarkjs, "groth16", "prove", files["zkey"].name, files["wtns"].name,
                                        "p.json", "pub.json"], workdir),
    }
    out = {"constraints": constraints, "domain_size": pk.domain_size, "n_vars": pk.n_vars,
           "zkey_source": files["zkey_source"], "zkey_read_s": t_read, "prove_first_s": t_first,
           "snarkjs_verifies_ours": True, "groth16py_prove_s": None, "groth16py_import_s": None}
    try:
        import groth16py
    except ImportError:
        groth16py = None
    if groth16py is not None:
        out["groth16py_import_s"], (gpk, _gvk) = timed(groth16py.import_zkey, str(files["zkey"]))
        contenders["groth16py_prove_s"] = lambda: groth16py.prove_wtns(gpk, str(files["wtns"]))
    for key in contenders:
        out[key] = float("inf")
    for _ in range(repeat):
        for key, fn in contenders.items():
            out[key] = min(out[key], timed(fn)[0])
    log(f"prove: ours {out['prove_inprocess_s']:.3f} s (first, with key preparation: {t_first:.3f} s), "
        f"snarkjs {out['snarkjs_prove_s']:.3f} s, groth16py {out['groth16py_prove_s']}")
    return out


# ------------------------------------------------------------------------ peers ----

def find_rapidsnark() -> Path | None:
    """rapidsnark's ``prover`` binary: ``$RAPIDSNARK``, else ``../shared/tools/rapidsnark/prover`` beside the
    checkout; ``None`` when absent or not executable (its row is then skipped)."""
    for cand in (os.environ.get("RAPIDSNARK"), str(REPO.parent / "shared" / "tools" / "rapidsnark" / "prover")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return Path(cand)
    return None


def run_measured(cmd: list[str], cwd: Path) -> tuple[float, float, float]:
    """Run ``cmd`` to completion; returns (wall seconds, CPU seconds user+sys, peak RSS MiB) of that command
    alone. Measured by GNU ``/usr/bin/time`` when present: a small process that forks the command itself, so
    the peak is the command's own (a child forked straight from this Python process would count this
    process's pages, touched before its ``exec``, in its ``ru_maxrss``). Without it: ``os.wait4``'s rusage,
    whose peak then over-counts (the JSON says which: ``peak_rss_source``). Raises RuntimeError on failure."""
    timer = "/usr/bin/time"
    use_timer = os.path.exists(timer)
    report = cwd / ".time_report"
    full = [timer, "-f", "%e %U %S %M", "-o", str(report), *cmd] if use_timer else cmd
    t0 = time.perf_counter()
    proc = subprocess.Popen(full, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out.decode(errors='replace')[-2000:]}")
    if use_timer:
        _e, user, sys_s, max_kib = report.read_text().split()[-4:]
        return wall, float(user) + float(sys_s), int(max_kib) / 1024
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def bench_peers(workdir: Path, links: int, repeat: int) -> dict:
    """Whole-process ``raymarket prove`` vs rapidsnark (alternating runs), plus the steady in-process rate."""
    from proving.formats.wtns_file import read_wtns
    from proving.formats.zkey import read_zkey
    from proving.groth16 import prover

    files = build_circuit(workdir, links, make_ptau=False)
    snarkjs, zkey, wtns = files["snarkjs"], files["zkey"].name, files["wtns"].name
    rapid = find_rapidsnark()
    ours_cmd = [sys.executable, str(REPO / "cli.py"), "prove", zkey, wtns,
                "--proof", "peer_ours_proof.json", "--public", "peer_ours_public.json"]
    contenders: dict[str, list[str]] = {"ours": ours_cmd}
    if rapid is None:
        log("rapidsnark not found ($RAPIDSNARK or ../shared/tools/rapidsnark/prover): its row is skipped")
    else:
        contenders["rapidsnark"] = [str(rapid), zkey, wtns, "peer_rapid_proof.json", "peer_rapid_public.json"]
    run_measured(ours_cmd, workdir)  # warm: numba's on-disk cache and the OS page cache, for both alike
    samples: dict[str, list[tuple[float, float, float]]] = {k: [] for k in contenders}
    for i in range(repeat):
        for name, cmd in contenders.items():
            samples[name].append(run_measured(cmd, workdir))
            log(f"peer run {i + 1}/{repeat} {name}: {samples[name][-1][0]:.3f} s wall, "
                f"{samples[name][-1][1]:.2f} CPU-s, {samples[name][-1][2]:.0f} MiB")
    run([snarkjs, "zkey", "export", "verificationkey", zkey, "peer_vk.json"], workdir)
    for name in contenders:
        tag = "ours" if name == "ours" else "rapid"
        run([snarkjs, "groth16", "verify", "peer_vk.json", f"peer_{tag}_public.json", f"peer_{tag}_proof.json"],
            workdir)
    pk = read_zkey(files["zkey"])
    witness = read_wtns(files["wtns"])
    prover.prove(pk, witness)  # key preparation (cached on the key) and compilation happen here, once
    steady, steady_cpu = [], []
    for _ in range(max(3, repeat)):
        c0 = time.process_time()  # every thread of this process (numba's pool included)
        steady.append(timed(prover.prove, pk, witness)[0])
        steady_cpu.append(time.process_time() - c0)

    def best(name: str, j: int) -> float:
        return min(s[j] for s in samples[name])

    def median(name: str) -> float:
        walls = sorted(s[0] for s in samples[name])
        return walls[len(walls) // 2]

    out: dict = {"peer_constraints": max(pk.coef_constraint) + 1 - (pk.n_public + 1),
                 "peer_domain_size": pk.domain_size, "peer_runs": repeat,
                 "prove_s": best("ours", 0), "prove_median_s": median("ours"), "prove_cpu_s": best("ours", 1),
                 "peak_mib": max(s[2] for s in samples["ours"]),
                 "steady_prove_s": min(steady), "steady_proofs_per_s": 1 / min(steady),
                 "steady_prove_cpu_s": min(steady_cpu),
                 "rapidsnark": str(rapid) if rapid else None, "rapidsnark_prove_s": None,
                 "rapidsnark_prove_median_s": None, "rapidsnark_cpu_s": None, "rapidsnark_peak_mib": None,
                 "ratio_vs_rapidsnark": None, "steady_ratio_vs_rapidsnark": None, "cpu_ratio_vs_rapidsnark": None,
                 "steady_cpu_ratio_vs_rapidsnark": None, "peers_verified_by_snarkjs": True,
                 "peak_rss_source": "GNU time (the command alone)" if os.path.exists("/usr/bin/time")
                 else "os.wait4 ru_maxrss (over-counts: includes the parent's pages before exec)"}
    if rapid is not None:
        out.update(rapidsnark_prove_s=best("rapidsnark", 0), rapidsnark_prove_median_s=median("rapidsnark"),
                   rapidsnark_cpu_s=best("rapidsnark", 1),
                   rapidsnark_peak_mib=max(s[2] for s in samples["rapidsnark"]))
        out["ratio_vs_rapidsnark"] = out["rapidsnark_prove_s"] / out["prove_s"]
        out["steady_ratio_vs_rapidsnark"] = out["rapidsnark_prove_s"] / out["steady_prove_s"]
        out["cpu_ratio_vs_rapidsnark"] = out["rapidsnark_cpu_s"] / out["prove_cpu_s"]
        out["steady_cpu_ratio_vs_rapidsnark"] = out["rapidsnark_cpu_s"] / out["steady_prove_cpu_s"]
    return out


# ------------------------------------------------------------------------ verify ----

def pyecc_verify(vk, public: list[int], proof) -> bool:
    """Groth16 check with py_ecc only (the baseline): ``e(-A,B) e(alpha,beta) e(vk_x,gamma) e(C,delta) = 1``,
    four Miller loops and one final exponentiation (``py_ecc.optimized_bn128``)."""
    from py_ecc import optimized_bn128 as bn

    def g1(p):
        return bn.Z1 if p is None else (bn.FQ(p[0]), bn.FQ(p[1]), bn.FQ.one())

    def g2(p):
        return (bn.FQ2(list(p[0])), bn.FQ2(list(p[1])), bn.FQ2.one())

    vk_x = g1(vk.ic[0])
    for x, ic in zip(public, vk.ic[1:]):
        vk_x = bn.add(vk_x, bn.multiply(g1(ic), x))
    f = bn.FQ12.one()
    for p, q in ((bn.neg(g1(proof.a)), g2(proof.b)), (g1(vk.alpha_g1), g2(vk.beta_g2)),
                 (vk_x, g2(vk.gamma_g2)), (g1(proof.c), g2(vk.delta_g2))):
        f = f * bn.pairing(q, p, final_exponentiate=False)
    return bn.final_exponentiate(f) == bn.FQ12.one()


def bench_verify(n_proofs: int, sequential_sample: int) -> dict:
    from proving.circuits.mimc import preimage_circuit
    from proving.groth16 import batch, prover, verifier
    from proving.groth16.setup import dev_setup

    circ = preimage_circuit(7, n_rounds=8)
    pk = dev_setup(circ.r1cs, seed=3)
    proofs = prover.prove_many(pk, [circ.witness] * n_proofs)
    public = circ.witness[1:pk.n_public + 1]
    publics = [public] * n_proofs
    t_batch = best_of(2, batch.batch_verify, pk.vk, publics, proofs)
    t0 = time.perf_counter()
    for p in proofs:
        verifier.verify(pk.vk, public, p)
    t_ours = time.perf_counter() - t0
    sample = min(sequential_sample, n_proofs)
    t0 = time.perf_counter()
    for p in proofs[:sample]:
        assert pyecc_verify(pk.vk, public, p), "py_ecc rejects a proof"
    t_seq = (time.perf_counter() - t0) * n_proofs / sample
    log(f"verify {n_proofs}: batch {t_batch:.3f} s, one by one: ours {t_ours:.3f} s, "
        f"py_ecc {t_seq:.3f} s ({sample} measured)")
    return {"verify_proofs": n_proofs, "batch_verify_64_s": t_batch, "sequential_verify_64_s": t_seq,
            "sequential_verify_measured": sample, "sequential_verify_ours_64_s": t_ours}


# ------------------------------------------------------------------------ report ----

def _fmt(v) -> str:
    return "n/a" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def table(res: dict) -> str:
    rows = [("what", "seconds", "baseline (same run)", "seconds", "ratio")]
    if "msm_2_16_s" in res:
        n = 1 << res["msm_log2_n"]
        rows.append((f"MSM {n} G1 (numba, c={res['msm_window_bits']})", _fmt(res["msm_2_16_s"]),
                     f"py_ecc naive, EST. from {res['msm_pyecc_sample']} pts", _fmt(res["msm_pyecc_est_s"]),
                     f"{res['msm_pyecc_est_s'] / res['msm_2_16_s']:.0f}x"))
    if "prove_inprocess_s" in res:
        c, ours = res["constraints"], res["prove_inprocess_s"]
        rows.append((f"Groth16 prove, {c} constr. (ours)", _fmt(ours), "snarkjs groth16 prove (CLI)",
                     _fmt(res["snarkjs_prove_s"]), f"{res['snarkjs_prove_s'] / ours:.2f}x"))
        g = res.get("groth16py_prove_s")
        rows.append(("", "", "groth16py prove_wtns (arkworks)", _fmt(g), "n/a" if g is None else f"{g / ours:.2f}x"))
        rows.append(("  first prove, key preparation incl.", _fmt(res["prove_first_s"]), "", "", ""))
    if "batch_verify_64_s" in res:
        n, m = res["verify_proofs"], res["sequential_verify_measured"]
        seq = "one by one, py_ecc" + ("" if m == n else f", EST. from {m}")
        rows.append((f"verify {n} proofs, batched", _fmt(res["batch_verify_64_s"]), seq,
                     _fmt(res["sequential_verify_64_s"]),
                     f"{res['sequential_verify_64_s'] / res['batch_verify_64_s']:.1f}x"))
        rows.append(("", "", "one by one, proving.groth16.verifier", _fmt(res["sequential_verify_ours_64_s"]),
                     f"{res['sequential_verify_ours_64_s'] / res['batch_verify_64_s']:.1f}x"))
    if "peer_constraints" in res:
        c, rs = res["peer_constraints"], res["rapidsnark_prove_s"]
        rows.append((f"prove {c} constr., whole process (ours)", _fmt(res["prove_s"]),
                     "rapidsnark prover (process)" if rs is not None else "rapidsnark: not found, skipped",
                     _fmt(rs), "n/a" if rs is None else f"{res['ratio_vs_rapidsnark']:.2f}x"))
        rows.append(("  peak memory MiB (ours / rapidsnark)", f"{res['peak_mib']:.0f}", "target: ours <= 2x",
                     _fmt(None if res["rapidsnark_peak_mib"] is None else round(res["rapidsnark_peak_mib"])),
                     "n/a" if rs is None else f"{res['peak_mib'] / res['rapidsnark_peak_mib']:.1f}x mem"))
        rows.append(("  CPU-s, whole process (ours)", _fmt(res["prove_cpu_s"]), "rapidsnark CPU-s",
                     _fmt(res["rapidsnark_cpu_s"]),
                     "n/a" if rs is None else f"{res['cpu_ratio_vs_rapidsnark']:.2f}x"))
        rows.append(("  steady prove, key prepared (ours)", _fmt(res["steady_prove_s"]),
                     "rapidsnark per proof (no resident mode)", _fmt(rs),
                     "n/a" if rs is None else f"{res['steady_ratio_vs_rapidsnark']:.2f}x (target >= 2x)"))
        rows.append(("  steady CPU-s per proof (ours)", _fmt(res["steady_prove_cpu_s"]), "rapidsnark CPU-s per proof",
                     _fmt(res["rapidsnark_cpu_s"]),
                     "n/a" if rs is None else f"{res['steady_cpu_ratio_vs_rapidsnark']:.2f}x"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("ratio = baseline / ours (>1: ours faster). " + res["machine"])
    if "zkey_source" in res:
        lines.append(f"zkey: {res['zkey_source']}; snarkjs time is its CLI process (node start + zkey read included)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "raymarket" / "bench-proving")
    ap.add_argument("--msm-log2", type=int, default=16)
    ap.add_argument("--pyecc-sample", type=int, default=64)
    ap.add_argument("--links", type=int, default=63, help="Poseidon links in the circuit (63 -> 32,571 constraints)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--make-ptau", action="store_true",
                    help="make a 2^16 powers-of-tau with snarkjs (20-60 min) and use snarkjs groth16 setup")
    ap.add_argument("--verify-proofs", type=int, default=64)
    ap.add_argument("--sequential-sample", type=int, default=8,
                    help="proofs verified one by one with py_ecc (extrapolated to --verify-proofs; the table says so)")
    ap.add_argument("--peer-links", type=int, default=118,
                    help="Poseidon links for the rapidsnark comparison (118 -> about 61,000 constraints, domain 2^16)")
    ap.add_argument("--peer-repeat", type=int, default=5, help="alternating whole-process runs per prover")
    ap.add_argument("--only", choices=["msm", "prove", "verify", "peers"], action="append")
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    import numba

    res: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
                            f"numba {numba.__version__} threads={numba.get_num_threads()}"}
    only = set(args.only or ["msm", "prove", "verify", "peers"])
    if "msm" in only:
        res.update(bench_msm(args.msm_log2, args.pyecc_sample, args.workdir))
    if "prove" in only:
        res.update(bench_prove(args.workdir, args.links, args.repeat, args.make_ptau))
    if "verify" in only:
        res.update(bench_verify(args.verify_proofs, args.sequential_sample))
    if "peers" in only:
        res.update(bench_peers(args.workdir, args.peer_links, args.peer_repeat))
    print(json.dumps(res, indent=2, default=str) if args.json else table(res))
    return res


if __name__ == "__main__":
    main()
