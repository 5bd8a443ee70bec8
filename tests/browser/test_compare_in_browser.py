"""The Compare page in a real browser: a comparison in the background (cancel, then a small run to the
end), paired differences with 95% intervals as small multiples and tables, CSV downloads, and the
page's accessibility (named controls, headings, contrast), all offline."""

from __future__ import annotations

import csv
import re
import time
from typing import Any

import pytest
from browser_support import Server, record_timing, screenshot

pytestmark = pytest.mark.browser

INTERVAL = re.compile(r"\((−?[\d.,]+|n/a) to (−?[\d.,]+|n/a)\)")

# Contrast ratio (WCAG 2) of each element's own text against the first opaque background behind it.
CONTRAST_JS = """
(root) => {
  const lum = (rgb) => {
    const c = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const parse = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const p = parse(getComputedStyle(e).backgroundColor);
      if (p.length === 3 || (p.length === 4 && p[3] === 1)) return p.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.querySelectorAll(root)) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.offsetParent) continue;
    const style = getComputedStyle(el);
    const fg = parse(style.color);
    const alpha = (fg.length === 4 ? fg[3] : 1) * Number(style.opacity);
    const bg = background(el);
    const mixed = fg.slice(0, 3).map((v, i) => v * alpha + bg[i] * (1 - alpha));
    const [a, b] = [lum(mixed), lum(bg)].sort((x, y) => y - x);
    out.push({text: el.textContent.trim().slice(0, 40), ratio: (a + 0.05) / (b + 0.05)});
  }
  return out;
}
"""


def button(page: Any, name: str) -> Any:
    return page.get_by_role("button", name=name, exact=True)


def choose(page: Any, label: str, option: str) -> None:
    """Pick an option of the (Vuetify 3) select with this label; a long list is scrolled to it (only
    the options in view are in the page)."""
    page.locator(".v-select").filter(has=page.get_by_role("combobox", name=label)).click()
    item = page.locator(".v-overlay--active .v-list-item-title").get_by_text(option, exact=True)
    page.locator(".v-overlay--active .v-list").wait_for()
    for _ in range(60):
        if item.count():
            item.click()
            return
        page.locator(".v-overlay--active .v-list").hover()
        page.mouse.wheel(0, 240)
        time.sleep(0.1)
    raise AssertionError(f"no option {option!r} in {label!r}")


def set_int_slider(page: Any, label: str, value: int) -> None:
    """Move a slider with the keyboard until it rests at ``value`` (an echo of an earlier key press
    from the server can move it back, so it is checked again once things have settled)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    thumb = page.get_by_role("slider", name=label)
    thumb.focus()
    for _ in range(80):
        now = int(float(thumb.get_attribute("aria-valuenow")))
        if now == value:
            time.sleep(0.8)
            if int(float(thumb.get_attribute("aria-valuenow"))) == value:
                return
            continue
        try:
            thumb.press("ArrowRight" if now < value else "ArrowLeft", timeout=5_000)
        except PlaywrightTimeout:  # the page re-rendered the slider under the key press
            thumb.focus()
        time.sleep(0.15)
    raise AssertionError(f"slider {label!r} did not settle at {value}")


def set_checked(page: Any, name: str, on: bool) -> None:
    box = page.get_by_role("checkbox", name=name, exact=True)
    if box.is_checked() != on:
        box.click()
    page.wait_for_function(
        "([name, on]) => [...document.querySelectorAll('input[type=checkbox]')].some("
        "(e) => e.labels && e.labels[0] && e.labels[0].innerText.trim() === name && e.checked === on)",
        arg=[name, on],
    )


def download(page: Any, testid: str, path: Any) -> list[str]:
    with page.expect_download() as info:
        page.locator(f"[data-testid={testid}]").click()
    info.value.save_as(path)
    return path.read_text().splitlines()


def test_compare_page_shows_paired_differences_with_intervals(
    page: Any, server: Server, watch: Any, tmp_path: Any
) -> None:
    page.goto(server.url + "/compare")
    button(page, "Run comparison").wait_for()

    # Every control has an accessible name (its visible label, connected to it).
    page.get_by_role("combobox", name="Comparator (every scenario is compared with it)").wait_for()
    page.get_by_role("combobox", name="Population (people)").wait_for()
    page.get_by_role("textbox", name="Random seed (whole number)").wait_for()
    for label in ("Replicates per scenario (runs)", "Horizon (years after burn-in)", "Worker processes"):
        page.get_by_role("slider", name=label).wait_for()
    for name in ("naloxone", "expand_moud", "stigma_campaign"):
        page.get_by_role("checkbox", name=name, exact=True).wait_for()
    assert page.get_by_role("checkbox", name="baseline", exact=True).count() == 0  # the comparator
    assert page.get_by_role("heading", level=2).all_inner_texts() == ["Compare scenarios"]

    # baseline against naloxone only, 2,000 people.
    set_checked(page, "expand_moud", False)
    set_checked(page, "naloxone", True)
    choose(page, "Population (people)", "2000")

    # A long run goes on in the background: the page still answers (hiding and showing the sidebar is
    # a server round trip) and Cancel stops it.
    set_int_slider(page, "Replicates per scenario (runs)", 12)
    button(page, "Run comparison").click()
    progress = page.locator("[data-testid=progress-text]")
    progress.wait_for()
    assert re.match(r"Running: \d+ of 24 runs done", progress.inner_text())
    menu = page.get_by_role("button", name="Show or hide the controls")
    menu.click()
    page.locator(".oud-side").wait_for(state="hidden")
    menu.click()
    page.locator(".oud-side").wait_for(state="visible")
    assert progress.is_visible()
    button(page, "Cancel").click()
    page.locator("[data-testid=notice-warning]", has_text="Cancelled").wait_for()
    assert progress.count() == 0

    # A small run to the end: 3 replicates, 3 years (naloxone ramps in over the second year, so the
    # final year is its full strength).
    set_int_slider(page, "Replicates per scenario (runs)", 3)
    set_int_slider(page, "Horizon (years after burn-in)", 3)
    t0 = time.perf_counter()
    button(page, "Run comparison").click()
    table = page.locator("[data-testid=difference-table-naloxone]")
    table.wait_for(timeout=300_000)
    record_timing("compare_small_run_s", time.perf_counter() - t0, runs=6, people=2_000, years=3)
    assert page.locator("[data-testid=notice-success]").inner_text().startswith("Finished: baseline (3 runs), naloxone")

    # The difference table: comparator, scenario, difference with its 95% interval, relative change.
    text = table.inner_text()
    for heading in ("baseline", "naloxone", "Difference (95% CI)", "Relative change", "Beyond chance?"):
        assert heading in text
    assert "Overdose deaths since week 0, at the end of the run" in text
    assert "per step" not in text
    rows = table.locator("tbody tr")
    assert rows.count() >= 10
    assert INTERVAL.search(rows.filter(has_text="OUD prevalence (in care or not)").inner_text())
    assert "3 paired differences" in table.locator("caption").inner_text()
    verdict = page.locator("[data-testid=verdict-naloxone]")
    assert re.match(
        r"naloxone (raises|lowers|leaves) “overdose deaths since week 0” .*(chance|no difference)\.$",
        verdict.inner_text(),
    )

    # Small multiples: one panel for naloxone, alt text with the values, the data as a table beside it.
    chart = page.locator("[data-testid=compare-chart]")
    assert chart.get_attribute("src").startswith("data:image/png")
    alt = chart.get_attribute("alt")
    assert alt.startswith("Small multiples") and "naloxone:" in alt and "intervention from year 1" in alt
    series = page.locator("[data-testid=series-table]")
    assert series.count() == 1 and not series.is_visible()  # folded away under the chart
    page.locator("summary", has_text="The chart as a table").click()
    assert "mean paired difference" in series.locator("caption").inner_text()
    assert INTERVAL.search(series.locator("tbody tr").last.inner_text())
    assert page.get_by_role("heading", level=3).all_inner_texts() == [
        "Difference from baseline over time",
        "Final-year differences from baseline",
        "Downloads",
    ]
    chart.scroll_into_view_if_needed()
    screenshot(page, "compare")

    # Another measure, chosen by its words: the chart follows.
    before = chart.get_attribute("src")
    choose(page, "Measure shown over time", "OUD prevalence (in care or not)")
    page.wait_for_function(
        "(old) => document.querySelector('[data-testid=compare-chart]').getAttribute('src') !== old", arg=before
    )
    assert "OUD prevalence (in care or not)" in chart.get_attribute("alt")
    # What naloxone distribution acts on directly: more people carry a kit, beyond chance.
    choose(page, "Measure shown over time", "People who use opioids or are in OUD care carrying naloxone")
    page.wait_for_function(
        "() => (document.querySelector('[data-testid=verdict-naloxone]')?.innerText || '').includes('carrying')"
    )
    text = verdict.inner_text()
    assert text.startswith("naloxone raises “people who use opioids") and "(95% CI of the difference " in text
    assert text.endswith("beyond chance."), text
    assert table.locator("tr.chosen").inner_text().startswith("People who use opioids or are in OUD care carrying")
    table.scroll_into_view_if_needed()
    screenshot(page, "compare-table")

    # Text on the page is at least 4.5:1 against its background.
    low = [
        r
        for r in page.evaluate(CONTRAST_JS, ".oud-compare *, .oud-scenario-list *, .oud-side .oud-explainer")
        if r["ratio"] < 4.5
    ]
    assert not low, low

    lines = download(page, "download-series", tmp_path / "series.csv")
    assert lines[0] == "measure,unit,comparator,scenario,year,diff,lo,hi,n"
    rows = list(csv.reader(lines[1:]))
    assert ["Overdose deaths since week 0", "per 100,000 people", "baseline", "naloxone"] in [r[:4] for r in rows]
    assert {r[0] for r in rows} >= {"OUD prevalence (in care or not)", "Overdose deaths in the past year"}
    lines = download(page, "download-table", tmp_path / "table.csv")
    assert lines[0].startswith("scenario,comparator,measure,unit,comparator_value,scenario_value,difference,lo,hi")
    assert all(line.startswith("naloxone,baseline,") for line in lines[1:])
    lines = download(page, "download-runs", tmp_path / "runs.csv")
    assert lines[0].startswith("scenario,replicate,seed,step,year,oud_prevalence")
    assert len(lines) == 1 + 2 * 3 * 157  # scenarios x replicates x (weeks 0..156)
    watch.assert_clean()
