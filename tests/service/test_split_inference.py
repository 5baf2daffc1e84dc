"""One large embedding input split into parts (``Client.submit_inference_split``), served by whichever providers
win them, joined back in line order (``Client.result_rows``)."""

from __future__ import annotations

import base64
import threading
import time

import numpy as np
import pytest

from market.client import ApiError
from tests.service.conftest import make_parties
from tests.service.harness import Heartbeats, attest, run_lease

LINES = [f"Sentence number {i} of the split input." for i in range(23)]


def _serve_all(pc, key, name, keys_dir, stop: threading.Event, served: list) -> None:
    while not stop.is_set():
        for lease in pc.poll(name, max_leases=4, wait_s=1):
            with Heartbeats(pc, name, [lease["job_id"]]):
                result = run_lease(lease, keys_dir)
            h, sig = attest(lease, key, result)
            pc.complete(lease, result=result, result_hash=h, signature=sig)
            served.append((name, lease["job_id"], base64.b64decode(lease["ticket"]["input_b64"]).decode()))


def test_split_parts_cover_every_line_once_and_join_in_order(service, keys_dir):
    client, provs = make_parties(service)
    jobs = client.submit_inference_split("\n".join(LINES).encode(), 4, max_price_wei=10**15,
                                         verification="attest-only")
    assert [j["status"] for j in jobs] == ["open"] * 4
    stop, served = threading.Event(), []
    threads = [threading.Thread(target=_serve_all, args=(pc, key, name, keys_dir, stop, served), daemon=True)
               for name, (pc, key) in provs.items()]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(client.status(j["job_id"])["status"] not in ("paid", "settled")
                                                  for j in jobs):
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    by_job = {job_id: text for _, job_id, text in served}
    parts = [by_job[j["job_id"]].split("\n")[:-1] for j in jobs]
    assert [len(p) for p in parts] == [5, 6, 6, 6]  # as equal as 23 lines allow, consecutive
    assert sum(parts, []) == LINES
    rows = client.result_rows([j["job_id"] for j in jobs])
    whole = np.load(__import__("io").BytesIO(run_lease(
        {"kind": "inference", "ticket": {"input_b64": base64.b64encode("\n".join(LINES).encode()).decode()}},
        keys_dir)))
    np.testing.assert_array_equal(rows, whole)  # the joined parts are the rows of the whole input, in order


@pytest.mark.parametrize("parts", [0, 24])
def test_a_split_into_more_parts_than_lines_is_refused_before_any_request(service, parts):
    client, _ = make_parties(service)
    with pytest.raises(ApiError, match="parts="):
        client.submit_inference_split("\n".join(LINES).encode(), parts, max_price_wei=10**15)
    assert client.balance()["escrowed_wei"] == "0"
