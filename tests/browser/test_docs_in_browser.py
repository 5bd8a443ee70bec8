"""The documentation site in Chromium: built with ``mkdocs build --strict`` and served from loopback, every
page opens, every link inside the site reaches a page (and its anchor), every image loads, search works,
and no request leaves the machine (the ``page`` fixture's network watch fails the test otherwise).

A newcomer's way is walked by clicking: from the front page to the first scenario comparison.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlparse

import pytest
from browser_support import free_port, screenshot

from tests.test_docs_site import build_site

pytestmark = pytest.mark.browser

LINKS_JS = """() => [...document.querySelectorAll('a[href]')].map((a) => a.href)"""
IDS_JS = """() => [...document.querySelectorAll('[id]')].map((e) => e.id)"""
BROKEN_IMAGES_JS = """() => [...document.images]
  .filter((img) => !img.complete || img.naturalWidth === 0)
  .map((img) => img.getAttribute('src'))"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The site, built as `make docs` builds it, served by Python's http.server on 127.0.0.1."""
    site = tmp_path_factory.mktemp("docs") / "site"
    built = build_site(site)
    assert built.returncode == 0, built.stdout + built.stderr
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def site_url(served: tuple[str, Path]) -> str:
    return served[0]


def test_every_page_opens_with_its_links_images_and_anchors(page: Any, served: tuple[str, Path]):
    site_url, site = served
    pages = sorted(site_url + str(p.relative_to(site)) for p in site.rglob("*.html"))
    assert len(pages) >= 25, pages  # the nav's pages and the API reference
    ids: dict[str, set[str]] = {}
    links: dict[str, set[str]] = {}  # internal link (without fragment) or link#fragment -> pages with it
    outside: set[str] = set()
    broken_images = []
    for url in pages:
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        page.wait_for_load_state("networkidle")  # the search worker and its index too, before leaving
        broken_images += [f"{url}: {src}" for src in page.evaluate(BROKEN_IMAGES_JS)]
        ids[url] = set(page.evaluate(IDS_JS))
        for href in page.evaluate(LINKS_JS):
            parsed = urlparse(href)
            if parsed.scheme in ("http", "https") and parsed.netloc != urlparse(site_url).netloc:
                outside.add(href)  # a link out (a cited paper, Keep a Changelog): not followed
            elif parsed.scheme in ("http", "https"):
                links.setdefault(href, set()).add(url)
    assert not broken_images, "images that did not load:\n" + "\n".join(broken_images)

    # Every link inside the site reaches a page that was visited (or a file that is there), and its
    # anchor is an element of that page.
    broken = []
    for href, found_on in sorted(links.items()):
        target, fragment = urldefrag(href)
        if target.endswith("/"):
            target += "index.html"
        if target.endswith(".html"):
            if target not in ids:
                broken.append(f"{href} (on {sorted(found_on)[0]}): no such page")
            elif fragment and fragment not in ids[target]:
                broken.append(f"{href} (on {sorted(found_on)[0]}): no element with id {fragment!r}")
        else:
            response = page.request.get(target)
            if response.status != 200:
                broken.append(f"{href} (on {sorted(found_on)[0]}): status {response.status}")
    assert not broken, "broken links:\n" + "\n".join(broken)
    assert any(h.endswith("notebooks/student_first_hour.py") for h in links)  # the script, downloadable
    assert outside  # links out exist (cited sources), and the network watch shows none was loaded


def test_search_works_offline(page: Any, site_url: str):
    page.goto(site_url + "index.html")
    page.wait_for_load_state("networkidle")  # the search worker has its index
    page.locator("input.md-search__input").press_sequentially("naloxone", delay=30)
    results = page.locator(".md-search-result__item")
    results.first.wait_for()
    assert results.count() >= 3
    assert "matching documents" in page.locator(".md-search-result__meta").inner_text()
    screenshot(page, "docs-search")


def test_a_newcomer_reaches_a_first_comparison_by_clicking(page: Any, site_url: str):
    page.goto(site_url + "index.html")
    screenshot(page, "docs-front-page")
    page.locator("article").get_by_role("link", name="Your first comparison").click()
    page.wait_for_url("**/getting-started.html#your-first-scenario-comparison")
    section = page.locator("#your-first-scenario-comparison")
    assert section.is_visible()
    command = page.locator("article pre", has_text="oudsim compare baseline reduce_isolation").first
    assert "--replicates 4 --years 5 --population 4000" in command.inner_text()
    screenshot(page, "docs-first-comparison")
    # The step before it on the same page: the two commands of the quick start.
    assert page.locator("article pre", has_text="make run").count() >= 1
    assert page.locator("article pre", has_text="make test").count() >= 1
