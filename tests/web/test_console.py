"""The web console in a real browser (headless Chromium through selenium) against the real service after real
jobs ran: an embedding job and a proof job paid and settled on-chain, and one job left unmatched. Every page is
loaded; its key elements are checked (provider names, job ids, the price chart drawn as SVG, the inclusion proof
checked against the on-chain root), the browser console shows no error, a screenshot of each page is saved and
the page load times are recorded (``load_times.json`` beside the screenshots)."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import httpx
from selenium.webdriver.common.by import By

from tests.service.conftest import ROUNDS, make_parties
from tests.service.test_flow import TEXT, _serve, _wait_settled


def _load(driver, url: str) -> dict:
    """Open ``url``; returns wall seconds and the Navigation Timing numbers (ms)."""
    t0 = time.perf_counter()
    driver.get(url)
    wall = time.perf_counter() - t0
    nav = driver.execute_script(
        "const e = performance.getEntriesByType('navigation')[0];"
        "return e ? {duration: e.duration, ttfb: e.responseStart - e.requestStart,"
        " dom: e.domContentLoadedEventEnd - e.startTime} : null;")
    return {"url": url, "wall_s": round(wall, 4), "navigation_ms": nav}


def _console_errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _visit(driver, url: str, name: str, artifacts, times: dict, *, expect_404: bool = False) -> None:
    """Load, screenshot and time a page; fail on any console error (besides the page's own expected 404)."""
    times[name] = _load(driver, url)
    shot = artifacts / f"{name}.png"
    driver.set_window_size(1280, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(900, int(height) + 200), 6000))  # the whole page in the screenshot
    driver.save_screenshot(str(shot))
    times[name]["screenshot"] = str(shot)
    print(f"web console: {name}: {url} loaded in {times[name]['wall_s']:.3f} s, screenshot {shot}")
    errors = [e for e in _console_errors(driver)
              if not (expect_404 and e.get("source") == "network" and e["message"].startswith(url + " ")
                      and "404" in e["message"])]
    assert errors == [], f"browser console errors on {url}: {errors}"


def test_every_page_in_a_real_browser(service, keys_dir, browser, artifacts_dir):
    client, provs = make_parties(service)
    inf = client.submit_inference(TEXT, max_price_wei=10**15, verification="attest-only")  # one provider serves
    prf = client.submit_proof(12345, rounds=ROUNDS, max_price_wei=10**15)
    pc, key = provs["p1"]
    done = _serve(pc, key, "p1", keys_dir, 2)
    for n in (2, 3):  # more embedding jobs, in later rounds: points over time on the price chart
        client.submit_inference(TEXT * n, max_price_wei=10**15, verification="attest-only")
        done.update(_serve(pc, key, "p1", keys_dir, 1))
    assert len(done) == 4
    assert {a["status"] for a, _ in done.values()} == {"paid"}
    settled = _wait_settled(client, list(done))
    # no provider offers 8 GPUs: this one stays open and the page says why
    stuck = client.submit_proof(777, rounds=ROUNDS, max_price_wei=10**15, gpus=8)
    deadline = time.monotonic() + 20
    while client.status(stuck["job_id"])["explanation"] is None and time.monotonic() < deadline:
        time.sleep(0.2)
    url, d, times = service.url, browser, {}

    _visit(d, url + "/", "index", artifacts_dir, times)
    providers = {e.text for e in d.find_elements(By.CSS_SELECTOR, "#providers a.provider")}
    assert {"p1", "p2"} <= providers
    job_links = {e.text for e in d.find_elements(By.CSS_SELECTOR, "#jobs a.job")}
    assert {inf["job_id"], prf["job_id"], stuck["job_id"]} <= job_links
    assert d.find_element(By.CSS_SELECTOR, '#job-counts [data-status="settled"] b').text == "4"
    assert d.find_element(By.CSS_SELECTOR, '#job-counts [data-status="open"] b').text == "1"
    svg = d.find_element(By.CSS_SELECTOR, "#price-chart svg")
    lines = svg.find_elements(By.CSS_SELECTOR, "polyline.series")
    assert lines and all(line.get_attribute("points").strip() for line in lines)
    assert svg.size["width"] > 100 and svg.size["height"] > 100  # drawn, not just present in the markup
    assert len(d.find_elements(By.CSS_SELECTOR, "#rounds tr")) > 1
    assert d.find_elements(By.CSS_SELECTOR, "#batches a.batch")

    # follow a job to its on-chain settlement by clicking, as a user would
    d.find_element(By.LINK_TEXT, prf["job_id"]).click()
    _visit(d, d.current_url, "job", artifacts_dir, times)
    assert d.find_element(By.ID, "job-id").text == prf["job_id"]
    assert d.find_element(By.ID, "job-status").text == "settled"
    assert d.find_element(By.ID, "job-provider").text == "p1"
    assert "checked against the on-chain root: OK" in d.find_element(By.ID, "inclusion-verdict").text
    assert d.find_element(By.ID, "tx-hash").text == settled[prf["job_id"]]["tx_hash"]
    assert "12345" not in d.find_element(By.TAG_NAME, "body").text  # the preimage is never shown
    assert len(d.find_elements(By.CSS_SELECTOR, "#timeline tr")) > 3
    d.find_element(By.ID, "job-batch").click()
    _visit(d, d.current_url, "batch", artifacts_dir, times)
    assert d.find_element(By.ID, "batch-id").text == settled[prf["job_id"]]["batch_id"]
    assert "matches" in d.find_element(By.ID, "onchain").text
    assert d.find_element(By.ID, "challenge-window").text
    assert prf["job_id"] in {e.text for e in d.find_elements(By.CSS_SELECTOR, "#leaves a.job")}

    _visit(d, url + "/jobs/" + inf["job_id"], "job_inference", artifacts_dir, times)
    body = d.find_element(By.TAG_NAME, "body").text
    assert "first sentence" not in body  # the input text is never shown
    assert "n_sentences" in body

    _visit(d, url + "/jobs/" + stuck["job_id"], "job_unmatched", artifacts_dir, times)
    assert d.find_element(By.ID, "job-status").text == "open"
    assert d.find_element(By.ID, "explanation").text

    _visit(d, url + "/providers/p1", "provider", artifacts_dir, times)
    assert d.find_element(By.ID, "provider-name").text == "p1"
    served = {e.text for e in d.find_elements(By.CSS_SELECTOR, "#jobs a.job")}
    assert {inf["job_id"], prf["job_id"]} <= served
    assert d.find_element(By.ID, "earnings").text != "—"

    _visit(d, url + "/audit", "audit", artifacts_dir, times)
    assert d.find_element(By.ID, "audit-verdict").text
    assert d.find_element(By.ID, "liabilities").text

    # ids come from strangers: shown escaped, never run (no script executes, no console error)
    evil = '<img src=x onerror="document.title=1">'
    _visit(d, url + "/jobs/" + quote(evil, safe=""), "not_found", artifacts_dir, times,
           expect_404=True)
    assert d.find_element(By.ID, "missing-id").text == evil
    assert d.title != "1" and not d.find_elements(By.CSS_SELECTOR, "main img")

    (artifacts_dir / "load_times.json").write_text(json.dumps(times, indent=2))
    print(f"web console: load times in {artifacts_dir / 'load_times.json'}")
    assert all(t["wall_s"] < 10 for t in times.values() if "wall_s" in t)

    metrics = httpx.get(url + "/metrics").text
    for name in ("raymarket_jobs{", "raymarket_providers_online", "raymarket_round_seconds_bucket",
                 "raymarket_leases_open", "raymarket_settlement_batches_total", "raymarket_ledger_balance_wei{"):
        assert name in metrics, name
