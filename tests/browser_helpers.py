"""The real browser the browser tests share: Debian's headless Chromium driven by Playwright
(``apt-get install chromium``; Playwright never downloads one here). Without it, or without the
``playwright`` package, the tests marked ``needs_browser`` are skipped."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = [
    pytest.mark.skipif(CHROMIUM is None,
                       reason="no chromium on PATH (apt-get install chromium; .ci/run does it "
                              "when root)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="the playwright package is not installed (pip install -e .[test])"),
]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched headless Chromium (a Playwright ``Browser``), closed on leaving."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS,
                                     timeout=30_000)
        try:
            yield browser
        finally:
            browser.close()
