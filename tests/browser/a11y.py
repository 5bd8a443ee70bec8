"""Automated accessibility checks for the browser tests: axe-core's rules, run in the page.

axe-core's script ships inside the ``axe-playwright-python`` wheel (a dev dependency), so nothing is
fetched at run time; it is injected into the page and run there. ``violations(page)`` returns what
axe finds; ``report(found)`` turns that into a readable failure message.
"""

from __future__ import annotations

from typing import Any

# WCAG 2.0 and 2.1, levels A and AA: among them every form control named (label, select-name,
# aria-input-field-name, button-name, input-button-name, link-name), image-alt, html-has-lang,
# document-title, color-contrast (text at least 4.5:1), meta-viewport (zooming allowed).
TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
# axe's best practices the dashboard meets too: one h1, headings in order, one main landmark, and
# all content inside landmarks (header, nav, aside, main).
BEST_PRACTICES = ("page-has-heading-one", "heading-order", "empty-heading", "landmark-one-main", "region")
# The rules the issue names: a run in which any of these did not take part fails (a wrong tag would
# otherwise pass silently).
REQUIRED = (
    "label",
    "button-name",
    "select-name",
    "aria-input-field-name",
    "input-button-name",
    "image-alt",
    "html-has-lang",
    "document-title",
    "color-contrast",
    "link-name",
    "page-has-heading-one",
)
HTML_CHARS = 200  # of each offending element's HTML in the report


def _axe_script() -> str:
    try:
        from axe_playwright_python.base import AXE_SCRIPT
    except ImportError as e:  # pragma: no cover - a missing dev dependency
        raise RuntimeError(
            "the accessibility tests need axe-playwright-python: pip install -e '.[dev]' (it ships axe-core)"
        ) from e
    return AXE_SCRIPT


def run_axe(page: Any, rules: tuple[str, ...] | None = None, context: str | None = None) -> dict:
    """axe's full result for the page (or the part ``context`` selects).

    ``rules``: only these rules; by default the WCAG 2.0/2.1 A and AA rules and ``BEST_PRACTICES``.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_script())
    if rules:
        options: dict[str, Any] = {"runOnly": {"type": "rule", "values": list(rules)}}
    else:
        options = {
            "runOnly": {"type": "tag", "values": list(TAGS)},
            "rules": {rule: {"enabled": True} for rule in BEST_PRACTICES},
        }
    options["resultTypes"] = ["violations"]  # the other lists then name each rule with one element only
    return page.evaluate(
        "([context, options]) => axe.run(context || document, options)",
        [context, options],
    )


def violations(page: Any, rules: tuple[str, ...] | None = None, context: str | None = None) -> list[dict]:
    """axe's violations on the page: one dict per rule broken, with ``id``, ``help``, ``impact`` and
    the offending elements in ``nodes`` (each with its ``html`` and ``target`` selector)."""
    result = run_axe(page, rules=rules, context=context)
    ran = {r["id"] for kind in ("violations", "passes", "incomplete", "inapplicable") for r in result[kind]}
    expected = set(rules) if rules else set(REQUIRED)
    missing = expected - ran
    if missing:
        raise AssertionError(f"axe did not run these rules: {sorted(missing)} (axe {result['testEngine']['version']})")
    return result["violations"]


def report(found: list[dict], where: str = "the page") -> str:
    """A readable list: each rule broken, its help text and the offending elements' HTML, truncated."""
    lines = [f"{len(found)} accessibility rule(s) broken on {where}:"]
    for v in found:
        impact = v.get("impact") or "no impact given"
        lines.append(f"- {v['id']} ({impact}): {v['help']} [{len(v['nodes'])} element(s)]")
        for node in v["nodes"][:8]:
            html = " ".join(node.get("html", "").split())
            if len(html) > HTML_CHARS:
                html = html[: HTML_CHARS - 1] + "…"
            lines.append(f"    {html}")
            summary = " ".join((node.get("failureSummary") or "").split())
            if summary:
                lines.append(f"      {summary[:300]}")
        if len(v["nodes"]) > 8:
            lines.append(f"    … and {len(v['nodes']) - 8} more")
    return "\n".join(lines)


def assert_no_violations(page: Any, where: str, rules: tuple[str, ...] | None = None) -> None:
    found = violations(page, rules=rules)
    assert not found, report(found, where)


# -- the pages, as these tests open them ------------------------------------------------------------

# name: (path, the browser tab's title, a selector that appears once the page has drawn)
PAGES = {
    "explore": ("/", "oudsim — Explore", "[data-testid=network]"),
    "compare": ("/compare", "oudsim — Compare", "button:has-text('Run comparison')"),
}


def open_page(page: Any, base_url: str, name: str) -> None:
    """Load one of ``PAGES`` and wait until it has drawn and named itself."""
    path, title, ready = PAGES[name]
    page.goto(base_url + path)
    page.locator(ready).first.wait_for()
    # Solara's loading screen leaves with a 0.5 s zoom far wider than the window.
    page.locator("#loader-container").wait_for(state="detached")
    page.wait_for_function("(title) => document.title === title", arg=title)
    # Late layout: web fonts, and images whose size arrives with their data.
    page.evaluate("() => document.fonts.ready.then(() => true)")
    page.wait_for_function("() => [...document.images].every((img) => img.complete)")
