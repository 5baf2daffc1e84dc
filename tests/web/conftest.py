"""Fixtures of the web console tests: the service fixtures of tests/service (reused, not copied) and a
headless Chromium driven by selenium, with the browser console log captured."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.service.conftest import keys_dir, service  # noqa: F401  (the real service, SQLite + in-process EVM)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory) -> Path:
    """Where screenshots and load times go: ``$RAYMARKET_ARTIFACTS/web`` when set, else a pytest tmp dir."""
    root = os.environ.get("RAYMARKET_ARTIFACTS")
    path = Path(root) / "web" if root else tmp_path_factory.mktemp("web-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser():
    """Headless Chromium (Debian ``chromium`` + ``chromium-driver``) with the console log enabled."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1600", "--disable-extensions", "--no-first-run"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
