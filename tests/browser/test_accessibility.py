"""Accessibility of both dashboard pages: axe-core's WCAG 2.1 A/AA rules (and a few best practices)
with no violation, the page's language and title, one h1, and the keyboard.

axe runs in the page (tests/browser/a11y.py); nothing is fetched. What it checks: every form control,
button, link and image has a name; text contrast is at least 4.5:1; the page has a language, a
title, an h1 and landmarks (header, nav, aside, main); zooming is not disabled.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from a11y import PAGES, assert_no_violations, open_page
from browser_support import Server, screenshot

pytestmark = pytest.mark.browser

MAX_PRESSES = 10  # the issue: the main controls within a few Tab presses
SKIP_LINK = "Skip to the page"  # ui.py's Layout: the first Tab stop, to the main area
PLAY_OR_STEP = re.compile(r"^(▶|play|step)", re.IGNORECASE)  # Mesa's Play button reads "▶"
# What a Tab press reached, with the focus ring it shows (after Vuetify's 0.3 s transitions).
FOCUSED_JS = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const style = getComputedStyle(e);
  const inAside = !!e.closest('aside');
  const name = (e.getAttribute('aria-label') || e.innerText || e.value || '').trim().replace(/\\s+/g, ' ');
  return {tag: e.tagName.toLowerCase(), role: e.getAttribute('role'), name: name.slice(0, 60), inAside,
          outlineStyle: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth) || 0,
          boxShadow: style.boxShadow};
}"""


def keyboard_walk(page: Any, presses: int, skip: bool = True) -> list[dict | None]:
    """Press keys from the start of the page, as a keyboard user would: Tab, and Enter on the
    "Skip to the page" link when ``skip`` (it moves past the app bar and the sidebar). What each key
    press focused; at most ``presses`` presses in all."""
    page.bring_to_front()  # the browser's active tab: otherwise the first Tab only brings the page into focus
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    reached: list[dict | None] = []
    while len(reached) < presses:
        focused = reached[-1] if reached else None
        follow = skip and focused is not None and focused["name"] == SKIP_LINK and focused["tag"] == "a"
        page.keyboard.press("Enter" if follow else "Tab")
        page.wait_for_timeout(400)  # Vuetify's slider thumb fades its outline in over 0.3 s
        reached.append(page.evaluate(FOCUSED_JS))
    return reached


def shows_focus_ring(focused: dict) -> bool:
    if focused["tag"] == "main":  # the skip link's target: focused, but not a control
        return True
    return (focused["outlineStyle"] != "none" and focused["outlineWidth"] >= 2) or focused["boxShadow"] != "none"


def describe(reached: list[dict | None]) -> str:
    return "\n".join(
        f"  key {i}: " + (f"<{f['tag']}> role={f['role']} name={f['name']!r}" if f else "nothing")
        for i, f in enumerate(reached, 1)
    )


@pytest.mark.parametrize("name", list(PAGES))
def test_page_has_no_accessibility_violations(page: Any, server: Server, watch: Any, name: str) -> None:
    open_page(page, server.url, name)
    screenshot(page, f"a11y-{name}")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.title() == PAGES[name][1]
    headings = page.locator("h1")
    assert headings.count() == 1 and headings.first.is_visible(), "one visible h1 (the app bar's title)"
    assert "oudsim" in headings.first.inner_text()
    assert page.get_by_text("This website runs on", exact=False).count() == 0, "Solara's badge is shown"
    assert_no_violations(page, f"the {name} page")
    watch.assert_clean()


def test_explore_keyboard_reaches_play_or_step_with_a_visible_focus_ring(page: Any, server: Server) -> None:
    open_page(page, server.url, "explore")
    reached = keyboard_walk(page, MAX_PRESSES)
    assert reached[0] and reached[0]["name"] == SKIP_LINK, (
        f"the first Tab stop is not the skip link:\n{describe(reached)}"
    )
    main = [i for i, f in enumerate(reached) if f and f["tag"] == "button" and PLAY_OR_STEP.match(f["name"])]
    assert main, f"neither Play nor Step within {MAX_PRESSES} key presses:\n{describe(reached)}"
    unringed = [f for f in reached[: main[0] + 1] if f and not shows_focus_ring(f)]
    assert not unringed, f"focused without a visible focus ring: {unringed}"


def test_compare_keyboard_reaches_the_controls_with_a_visible_focus_ring(page: Any, server: Server) -> None:
    open_page(page, server.url, "compare")
    reached = keyboard_walk(page, MAX_PRESSES, skip=False)
    controls = [i for i, f in enumerate(reached) if f and f["inAside"]]
    assert controls, f"no control of the sidebar within {MAX_PRESSES} key presses:\n{describe(reached)}"
    unringed = [f for f in reached[: controls[0] + 1] if f and not shows_focus_ring(f)]
    assert not unringed, f"focused without a visible focus ring: {unringed}"
    # The page's main button is reached by Tab too, however many controls come before it.
    run = page.get_by_role("button", name="Run comparison")
    for _ in range(60):
        if run.evaluate("(e) => e === document.activeElement"):
            break
        page.keyboard.press("Tab")
    else:
        pytest.fail("Run comparison is not reached by Tab")
