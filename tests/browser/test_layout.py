"""Layout of both dashboard pages at three window widths: nothing cut off, no panel over another, and
on a wide window the Explore page's charts beside its network.

Screenshots go to test-output/screenshots/<page>-<width>.png (e.g. explore-1280.png) for a person to
look at. What the tests rely on in the pages: the landmarks ``header``, ``aside`` and ``main`` (ui.py's
Layout), elements marked with ``data-testid`` as the panels that must not overlap, and on the Explore
page ``[data-testid=network]`` (the network image), ``[data-testid=charts]`` (the container of the
chart images) and ``[data-testid=numbers]`` (the numbers strip).
"""

from __future__ import annotations

from typing import Any

import pytest
from a11y import PAGES, open_page
from browser_support import Server, screenshot

pytestmark = pytest.mark.browser

WIDTHS = (800, 1280, 1920)
HEIGHT = 900
WIDE = 1280  # from this width on, the Explore page shows its charts beside the network

# Elements a person sees as panels: each with a data-testid, and the layout's landmarks. Two of them
# overlap when neither contains the other and their boxes share more than a pixel each way.
OVERLAPS_JS = """() => {
  const shown = (e) => {
    const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
  };
  const els = [...document.querySelectorAll('[data-testid], header, aside, main')].filter(shown);
  const name = (e) => e.dataset.testid ? `[data-testid=${e.dataset.testid}]` : `<${e.tagName.toLowerCase()}>`;
  const found = [];
  for (let i = 0; i < els.length; i++) {
    for (let j = i + 1; j < els.length; j++) {
      const a = els[i], b = els[j];
      if (a.contains(b) || b.contains(a)) continue;
      const ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
      const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
      const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
      if (w > 1 && h > 1) found.push(`${name(a)} and ${name(b)} share ${Math.round(w)}x${Math.round(h)} px`);
    }
  }
  return found;
}"""

# What sticks out to the right: the document as a whole, the sidebar's and the main area's content
# (each scrolls on its own), and any marked element past the window's edges.
CUT_OFF_JS = """() => {
  const found = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth + 1)
    found.push(`the page is ${doc.scrollWidth} px wide in a ${window.innerWidth} px window`);
  for (const e of document.querySelectorAll('aside, main')) {
    if (e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
      found.push(`<${e.tagName.toLowerCase()}> content is ${e.scrollWidth} px wide in ${e.clientWidth} px`);
  }
  for (const e of document.querySelectorAll('[data-testid]')) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && (r.left < -1 || r.right > window.innerWidth + 1))
      found.push(`[data-testid=${e.dataset.testid}] spans x ${Math.round(r.left)} to ${Math.round(r.right)}`);
  }
  return found;
}"""


def box(page: Any, testid: str) -> dict:
    locator = page.locator(f"[data-testid={testid}]")
    assert locator.count() == 1, f"expected one [data-testid={testid}], found {locator.count()}"
    found = locator.bounding_box()
    assert found is not None, f"[data-testid={testid}] is not shown"
    return found


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(PAGES))
def test_page_fits_the_window_without_overlaps(page: Any, server: Server, watch: Any, name: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": HEIGHT})
    open_page(page, server.url, name)
    screenshot(page, f"{name}-{width}")
    assert page.locator("main").count() == 1, "the layout's <main> is missing"
    cut_off = page.evaluate(CUT_OFF_JS)
    assert not cut_off, f"{name} at {width} px: cut off horizontally:\n" + "\n".join(cut_off)
    overlaps = page.evaluate(OVERLAPS_JS)
    assert not overlaps, f"{name} at {width} px: panels overlap:\n" + "\n".join(overlaps)
    watch.assert_clean()


@pytest.mark.parametrize("width", [w for w in WIDTHS if w >= WIDE])
def test_explore_shows_the_charts_beside_the_network(page: Any, server: Server, width: int) -> None:
    page.set_viewport_size({"width": width, "height": HEIGHT})
    open_page(page, server.url, "explore")
    network, charts, numbers = box(page, "network"), box(page, "charts"), box(page, "numbers")
    for testid, b in (("network", network), ("charts", charts), ("numbers", numbers)):
        assert 0 <= b["y"] < HEIGHT, f"[data-testid={testid}] starts at y={b['y']:.0f}, outside the first screen"
        assert b["x"] >= 0 and b["x"] + b["width"] <= width + 1, f"[data-testid={testid}] is cut off: {b}"
    network_right = network["x"] + network["width"]
    assert charts["x"] >= network_right - 1, (
        f"the charts (x={charts['x']:.0f}) are not right of the network ({network_right:.0f})"
    )
