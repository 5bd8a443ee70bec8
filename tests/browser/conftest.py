"""Browser tests of the dashboard: `solara run app.py` on loopback, driven through Debian's Chromium.

Each pytest worker (xdist) starts its own server on a free port. Chromium is never downloaded: the
tests use the system's ``chromium`` (``apt-get install chromium``) through Playwright's
``executable_path``. Without Chromium the tests fail, unless ``OUDSIM_SKIP_BROWSER=1`` is set.

Every page is watched: a failed request, a response with status >= 400, or any request (or web
socket) to a host other than loopback fails the test, which proves the dashboard renders offline.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import CHROMIUM_ARGS, VIEWPORT, NetworkWatch, Server, chromium_path

SKIP = os.environ.get("OUDSIM_SKIP_BROWSER") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not SKIP:
        return
    skip = pytest.mark.skip(reason="OUDSIM_SKIP_BROWSER=1")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.fail(
            "The browser tests need Debian's Chromium: run 'apt-get install chromium' "
            "(or set OUDSIM_SKIP_BROWSER=1 to skip them).",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    srv = Server()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "The browser tests need Playwright for Python: pip install playwright "
            "(no browser download: they use Debian's Chromium).",
            pytrace=False,
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def watch() -> NetworkWatch:
    return NetworkWatch()


@pytest.fixture()
def page(browser: Any, watch: NetworkWatch) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(60_000)  # two shared cores: a busy machine is slow, not broken
    watch.attach(pg)
    try:
        yield pg
    finally:
        context.close()
    watch.assert_clean()
