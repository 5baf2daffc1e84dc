"""Embedding throughput: the market's path beside direct sentence-transformers and the ONNX backends.

Run: ``python -m benchmarks.inference [--lines 10000] [--json] [--market URL] [--own-market 2 --backend onnx-int8]``. Same input, same run,
this machine (progress on stderr):

* ``direct_st``: sentence-transformers ``encode`` on PyTorch fp32 — the baseline (~80 sentences/s on the
  2-core development machine when it is quiet).
* ``onnx_fp32``, ``onnx_int8``: ``providers.inference`` ONNX Runtime backends (length-bucketed batches).
* ``market`` (with ``--market URL``, e.g. the ``exchange_url`` that ``raymarket dev up --json`` prints):
  the same text submitted as one embedding job through the exchange, waited for, downloaded and
  checked; sentences/s counts from submission to verified result.
* ``market_<backend>`` (with ``--own-market N``): a market this run starts (service + N agents with
  ``--embedding-backend``), the input split into ``--parts`` jobs over the providers, default verification
  (spot-check by another provider), from submission to the joined, verified result.

Each row reports ``sentences_per_s``, ``seconds``, the ratio to ``direct_st`` and ``min_cosine`` against
the direct sentence-transformers rows (fp32 ONNX must reach 0.999; see ``market.core.embeddings``).
Model load and ONNX export are timed apart (``load_s``) and not counted in throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from providers import inference  # noqa: E402

DEMO_TEXT = Path(__file__).resolve().parent.parent / "market" / "demo_data" / "public_domain.txt"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_lines(n: int) -> list[str]:
    """``n`` distinct lines: the demo text's sentences, each repetition tagged with its index."""
    base = inference.sentences_from_text(DEMO_TEXT.read_bytes())
    return [f"{base[i % len(base)]} ({i // len(base)})" for i in range(n)]


def _row(name: str, lines: list[str], embed, reference: np.ndarray | None) -> tuple[dict, np.ndarray]:
    t0 = time.perf_counter()
    embed(lines[:8])
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = embed(lines)
    seconds = time.perf_counter() - t0
    row = {"backend": name, "sentences": len(lines), "seconds": round(seconds, 3), "load_s": round(load_s, 2),
           "sentences_per_s": round(len(lines) / seconds, 1)}
    if reference is not None:
        row["min_cosine"] = float((out * reference).sum(axis=1).min())
    _log(f"{name}: {row['sentences_per_s']} sentences/s")
    return row, out


def _market_row(url: str, lines: list[str], reference: np.ndarray) -> dict:
    from eth_account import Account  # noqa: PLC0415 (only with --market)

    from market.client import Client  # noqa: PLC0415

    client = Client(url, Account.create().key, timeout_s=600)  # a throwaway client funded by the dev faucet
    client.faucet(10**18)  # (a development exchange: `raymarket dev up`)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.txt"
        path.write_text("\n".join(lines) + "\n")
        t0 = time.perf_counter()
        job = client.submit_inference(path, max_price_wei=10**15, deadline_s=3600)
        client.wait(job["job_id"], timeout_s=3600)
        data = client.result(job["job_id"])
        seconds = time.perf_counter() - t0
    out = np.load(__import__("io").BytesIO(data))
    return {"backend": "market", "sentences": len(lines), "seconds": round(seconds, 3), "load_s": 0.0,
            "sentences_per_s": round(len(lines) / seconds, 1),
            "min_cosine": float((out * reference).sum(axis=1).min())}


def _own_market_row(lines: list[str], reference: np.ndarray, providers: int, backend: str, parts: int) -> dict:
    """The market row on a market this run starts: the exchange service (SQLite, anvil) and ``providers``
    agents on their own token-auth Ray clusters embedding with ``backend`` (``--embedding-backend``), model
    loaded before the clock starts (``--warm-up``). The input goes in as ``parts`` jobs of consecutive lines
    (``Client.submit_inference_split``), under the default verification policy (a spot-check: each part is
    paid only after ANOTHER provider re-embeds a secret sample of it); the clock runs from the submit to the
    last part's verified, downloaded and joined result (``Client.result_rows``)."""
    from benchmarks.market import Market  # noqa: PLC0415 (only for this row)
    from market.client import Client  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="rm-infb-") as tmp:
        _log(f"market: starting the service and {providers} agents ({backend}) ...")
        m = Market(Path(tmp), providers, 1, True, 0.1, ["--embedding-backend", backend], "anvil")
        try:
            with Client(m.svc.url, m.key, timeout_s=600) as c:
                warm = c.submit_inference_split("\n".join(lines[:40]).encode(), providers, max_price_wei=10**16)
                for j in warm:
                    c.wait(j["job_id"], timeout_s=600)
                t0 = time.perf_counter()
                jobs = c.submit_inference_split("\n".join(lines).encode(), parts, max_price_wei=10**16,
                                                deadline_s=3600)
                for j in jobs:
                    st = c.wait(j["job_id"], timeout_s=3600)
                    if st["status"] not in ("paid", "settled"):
                        raise RuntimeError(f"part {j['job_id']} ended {st['status']}: {st}")
                out = c.result_rows([j["job_id"] for j in jobs])
                seconds = time.perf_counter() - t0
                where = {c.status(j["job_id"]).get("provider") for j in jobs}
        finally:
            m.close()
    row = {"backend": f"market_{backend}", "sentences": len(lines), "seconds": round(seconds, 3), "load_s": 0.0,
           "sentences_per_s": round(len(lines) / seconds, 1), "providers": providers, "parts": parts,
           "providers_used": len(where), "min_cosine": float((out * reference).sum(axis=1).min())}
    _log(f"{row['backend']}: {row['sentences_per_s']} sentences/s ({parts} parts on {len(where)} providers)")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=10_000)
    ap.add_argument("--market", help="exchange URL of a running market (raymarket dev up)")
    ap.add_argument("--own-market", type=int, metavar="PROVIDERS", default=0,
                    help="also start a market with this many provider agents and run the input through it")
    ap.add_argument("--backend", default="onnx-int8", help="the own market's agents' --embedding-backend")
    ap.add_argument("--parts", type=int, default=0, help="jobs the input is split into (default: 2 per provider)")
    ap.add_argument("--skip-direct-onnx", action="store_true", help="only direct_st (the baseline) and the market")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    lines = make_lines(args.lines)
    rows = []
    st, reference = _row("direct_st", lines, lambda x: inference.embed(x, backend="torch"), None)
    st["min_cosine"] = 1.0
    rows.append(st)
    for name, backend in (() if args.skip_direct_onnx else (("onnx_fp32", "onnx"), ("onnx_int8", "onnx-int8"))):
        rows.append(_row(name, lines, lambda x, b=backend: inference.embed(x, backend=b), reference)[0])
    if args.market:
        rows.append(_market_row(args.market, lines, reference))
    if args.own_market:
        rows.append(_own_market_row(lines, reference, args.own_market, args.backend,
                                    args.parts or 2 * args.own_market))
    for r in rows:
        r["ratio_vs_direct_st"] = round(r["sentences_per_s"] / st["sentences_per_s"], 2)
    result = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "loadavg": os.getloadavg()[0], "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{'backend':<18} {'sentences':>9} {'seconds':>8} {'sent/s':>8} {'x direct':>8} {'min_cos':>8}")
    for r in rows:
        print(f"{r['backend']:<18} {r['sentences']:>9} {r['seconds']:>8} {r['sentences_per_s']:>8} "
              f"{r['ratio_vs_direct_st']:>8} {r['min_cosine']:>8.5f}")
    print(f"load average {result['loadavg']:.1f} on {result['cpus']} CPUs")


if __name__ == "__main__":
    main()
