"""Issue 14 (fuzzing): a deeply nested request body must not take the exchange down.

``py_ecc`` raises the recursion limit to 100,000 at import, so in the service process (which imports
``proving``) ``json.loads('[' * 100_000)`` overflows the C stack: SIGSEGV. The service runs as its own
process here, so a crash shows as a dead process, not a dead test runner.
"""

from __future__ import annotations

import httpx
import pytest

from tests.service.harness import ProcessService

DEEP_LIST = "[" * 100_000
DEEP_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000


@pytest.fixture(scope="module")
def proc_service(tmp_path_factory):
    """The real service (``python -m market.exchange.service --dev``, SQLite + in-process EVM)."""
    tmp = tmp_path_factory.mktemp("deep")
    svc = ProcessService(["--dev", "--data-dir", str(tmp / "data")], tmp / "service.log").start()
    yield svc
    svc.stop()


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/quote", "/v1/providers/register", "/v1/leases/poll"])
@pytest.mark.parametrize("body", [DEEP_LIST, DEEP_OBJECT], ids=["list", "object"])
def test_deep_body_refused_and_service_keeps_serving(proc_service, path, body):
    r = httpx.post(proc_service.url + path, content=body.encode(), timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid"
    assert "nested" in r.json()["message"]
    assert proc_service.proc.poll() is None, "the exchange process died"
    assert httpx.get(proc_service.url + "/healthz", timeout=10).json() == {"ok": True}


def test_shallow_bodies_still_parsed(proc_service):
    """Nesting at the limit still reaches the route (a quote answers); brackets inside strings do not count."""
    spec = {"kind": "inference", "input_b64": "aGVsbG8=", "max_price_wei": 10**12, "deadline_s": 60,
            "gpu_model": "[" * 1000}
    r = httpx.post(proc_service.url + "/v1/quote", json={"spec": spec}, timeout=30)
    assert r.status_code in (200, 422), r.text
    assert "nested" not in r.text
    r = httpx.post(proc_service.url + "/v1/quote", content=("[" * 64 + "]" * 64).encode(), timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == 422 and "nested" not in r.text, r.text
