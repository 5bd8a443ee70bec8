"""The dashboard in a real browser: load, step, play, sliders, inspector, comparison, all offline.

Timings are written to test-output/timings.jsonl. The budgets asserted by default are generous so a
busy shared CI machine does not fail them by chance; OUDSIM_LOAD_BUDGET_S=3 and
OUDSIM_STEP_BUDGET_MS=250 hold the page to the issue's targets (docs/dashboard.md: how to measure).
"""

from __future__ import annotations

import os
import re
import statistics
import time
from typing import Any

import pytest
from browser_support import Server, record_timing, screenshot

pytestmark = pytest.mark.browser

CHARTS = ["oud_prevalence", "treatment_coverage", "mh_prevalence", "overdose_deaths", "isolated_share", "mean_stigma"]
STAGES = {"none", "misuse", "oud", "treatment", "remission"}
LOAD_BUDGET_S = float(os.environ.get("OUDSIM_LOAD_BUDGET_S", "30"))
STEP_BUDGET_MS = float(os.environ.get("OUDSIM_STEP_BUDGET_MS", "3000"))


def open_explore(page: Any, server: Server) -> float:
    """Load the Explore page; seconds until the network and every chart are drawn."""
    t0 = time.perf_counter()
    page.goto(server.url + "/")
    page.locator("[data-testid=network]").wait_for()
    for slug in CHARTS:
        page.locator(f"[data-testid=chart-{slug}]").wait_for()
    return time.perf_counter() - t0


def src(page: Any, testid: str) -> str:
    return page.locator(f"[data-testid={testid}]").get_attribute("src")


def wait_src_change(page: Any, testid: str, old: str) -> None:
    page.wait_for_function(
        "([sel, old]) => { const e = document.querySelector(sel); return e && e.getAttribute('src') !== old; }",
        arg=[f"[data-testid={testid}]", old],
    )


def week(page: Any) -> int:
    text = page.locator("[data-testid=run-summary]").inner_text()
    return int(re.search(r"Week (\d+)", text).group(1))


def wait_week(page: Any, predicate: str) -> None:
    """Wait until the week shown satisfies a JS predicate on ``w``, e.g. 'w >= 3'."""
    page.wait_for_function(
        "() => { const t = document.querySelector('[data-testid=run-summary]')?.innerText || '';"
        " const m = t.match(/Week (\\d+)/); if (!m) return false; const w = +m[1]; return " + predicate + "; }"
    )


def button(page: Any, name: str) -> Any:
    return page.get_by_role("button", name=name, exact=True)


def choose(page: Any, label: str, option: str) -> None:
    """Pick an option of the (Vuetify 3) select with this label."""
    page.locator(".v-select", has_text=label).click()
    page.locator(".v-overlay--active .v-list-item-title").get_by_text(option, exact=True).click()


def slider_thumb(page: Any, label: str) -> Any:
    return page.locator(".v-slider", has_text=label).locator("[role=slider]")


def set_int_slider(page: Any, label: str, value: int) -> None:
    """Move a slider with the keyboard until it rests at ``value``.

    Each key press goes to the server and back; a quick series of presses can be answered by an
    echo of an earlier value, so the value is checked again after things have settled.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    thumb = slider_thumb(page, label)
    thumb.focus()
    for _ in range(60):
        now = int(float(thumb.get_attribute("aria-valuenow")))
        if now == value:
            time.sleep(0.8)
            if int(float(thumb.get_attribute("aria-valuenow"))) == value:
                return
            continue
        try:
            # The page may re-render the slider while a key is on its way (its element detached):
            # a short wait, then the locator finds the new element on the next round.
            thumb.press("ArrowRight" if now < value else "ArrowLeft", timeout=5_000)
        except PlaywrightTimeout:
            thumb.focus()
        time.sleep(0.15)
    raise AssertionError(f"slider {label!r} did not settle at {value}")


def test_explore_loads_offline_with_network_and_charts(page: Any, server: Server, watch: Any) -> None:
    since_up = time.monotonic() - server.up_at
    seconds = open_explore(page, server)
    record_timing("first_page_load_s", seconds, since_server_up_s=round(since_up, 2))
    screenshot(page, "explore")
    assert page.locator("[data-testid=network]").is_visible()
    for slug in CHARTS:
        assert page.locator(f"[data-testid=chart-{slug}]").get_attribute("src").startswith("data:image/png")
    # Every control is labelled, with its unit, and each mechanism has its explainer.
    for label in [
        "Social isolation (× baseline tie loss)",
        "OUD treatment (slots per 100,000)",
        "Integrated care (share of OUD slots, 0–1)",
        "Community stigma at start (score 0–1)",
        "Naloxone kits (share of people who use carrying one, 0–1)",
        "Mental-health onset (× baseline rate)",
        "Population (people)",
    ]:
        assert page.get_by_text(label, exact=True).count() >= 1, label
    assert page.get_by_text("a vicious cycle", exact=False).count() == 1
    assert week(page) == 0
    watch.assert_clean()
    assert seconds < LOAD_BUDGET_S, f"first page load took {seconds:.2f} s"


def test_step_and_play_change_the_charts_and_the_network(page: Any, server: Server, watch: Any) -> None:
    open_explore(page, server)
    before_net, before_chart = src(page, "network"), src(page, "chart-oud_prevalence")
    times = []
    for i in range(1, 6):
        old = src(page, "network")
        t0 = time.perf_counter()
        button(page, "Step").click()
        wait_src_change(page, "network", old)
        wait_week(page, f"w >= {i}")
        times.append((time.perf_counter() - t0) * 1000)
    median = statistics.median(times)
    record_timing("browser_step_redraw_ms", median, samples=[round(t) for t in times])
    assert week(page) == 5
    assert src(page, "network") != before_net
    assert src(page, "chart-oud_prevalence") != before_chart
    assert src(page, "chart-mean_stigma") != before_chart

    # Play runs on by itself; pause stops it.
    start = week(page)
    button(page, "▶").click()
    try:
        wait_week(page, f"w >= {start + 4}")
    except Exception:
        screenshot(page, "FAILED-explore-play")  # what the page showed when Play stalled
        raise
    screenshot(page, "explore-playing")
    button(page, "❚❚").click()
    time.sleep(1.0)
    paused = week(page)
    time.sleep(1.0)
    assert week(page) == paused > start + 3
    watch.assert_clean()
    assert median < STEP_BUDGET_MS, f"step + redraw took {median:.0f} ms (median)"


def test_slider_change_reaches_the_model_after_reset(page: Any, server: Server, watch: Any) -> None:
    open_explore(page, server)
    summary = page.locator("[data-testid=run-summary]")
    assert "isolation ×1 " in summary.inner_text()
    thumb = slider_thumb(page, "Social isolation (× baseline tie loss)")
    thumb.focus()
    for _ in range(5):
        thumb.press("ArrowRight")
    assert thumb.get_attribute("aria-valuenow") == "1.5"
    assert "isolation ×1 " in summary.inner_text()  # not applied until Reset
    button(page, "Step").click()
    wait_week(page, "w >= 1")
    old = src(page, "network")
    button(page, "Reset").click()
    page.wait_for_function(
        "() => (document.querySelector('[data-testid=run-summary]')?.innerText || '').includes('isolation ×1.5')"
    )
    wait_src_change(page, "network", old)
    assert week(page) == 0
    screenshot(page, "explore-after-reset")
    watch.assert_clean()


def test_inspector_follows_a_clicked_person(page: Any, server: Server, watch: Any) -> None:
    open_explore(page, server)
    net = page.locator("[data-testid=network]")
    box = net.bounding_box()
    old = src(page, "network")
    stage = page.locator("[data-testid=inspector-stage]")
    for fx, fy in [(0.5, 0.5), (0.45, 0.55), (0.55, 0.45), (0.4, 0.4), (0.6, 0.6)]:
        net.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
        try:
            stage.wait_for(timeout=5_000)
            break
        except Exception:  # noqa: BLE001 - no one close enough to that spot; try the next
            continue
    assert stage.get_attribute("data-stage") in STAGES
    first_id = page.locator("[data-testid=inspector-id]").inner_text()
    assert first_id.isdigit()
    wait_src_change(page, "network", old)  # the chosen person is ringed in the drawing

    button(page, "Someone with OUD").click()
    page.wait_for_function(
        "(old) => { const e = document.querySelector('[data-testid=inspector-id]'); return e && e.innerText !== old; }",
        arg=first_id,
    )
    assert stage.get_attribute("data-stage") in {"oud", "treatment"}
    table = page.locator("[data-testid=inspector-table]").inner_text()
    for row in ("Opioid-use stage", "Mental health", "Care", "Stigma", "History"):
        assert row in table
    page.locator("[data-testid=inspector-table]").scroll_into_view_if_needed()
    screenshot(page, "explore-inspector")

    # Typing an id chooses that person.
    box_input = page.get_by_label("Person id (or click someone in the network)")
    box_input.fill("7")
    box_input.press("Enter")
    page.wait_for_function("() => document.querySelector('[data-testid=inspector-id]')?.innerText === '7'")
    assert stage.get_attribute("data-stage") in STAGES
    watch.assert_clean()


def test_large_population_shows_charts_only(page: Any, server: Server, watch: Any) -> None:
    open_explore(page, server)
    choose(page, "Population (people)", "5000")
    button(page, "Reset").click()
    page.get_by_text("so the page shows the charts only", exact=False).wait_for()
    assert page.locator("[data-testid=network]").count() == 0
    assert "5,000 people" in page.locator("[data-testid=run-summary]").inner_text()
    old = src(page, "chart-oud_prevalence")
    button(page, "Step").click()
    wait_src_change(page, "chart-oud_prevalence", old)
    screenshot(page, "explore-5000-charts-only")
    watch.assert_clean()


def test_comparison_runs_in_the_background_and_downloads(page: Any, server: Server, watch: Any, tmp_path: Any) -> None:
    page.goto(server.url + "/")
    page.locator("[data-testid=network]").wait_for()
    page.locator("[data-testid=nav-Compare]").click()
    button(page, "Run comparison").wait_for()

    # A long run (10 replicates x 2 scenarios x 2 years, 1,000 people) goes on in the background:
    # the page still answers (hiding and showing the sidebar is a server round trip), and Cancel
    # stops it.
    set_int_slider(page, "Replicates per scenario (runs)", 10)
    button(page, "Run comparison").click()
    progress = page.locator("[data-testid=progress-text]")
    progress.wait_for()
    assert re.match(r"Running: \d+ of 20 runs done", progress.inner_text())
    menu = page.get_by_role("button", name="Show or hide the controls")
    menu.click()
    page.locator(".oud-side").wait_for(state="hidden")
    menu.click()
    page.locator(".oud-side").wait_for(state="visible")
    assert progress.is_visible(), "no progress shown after the probe: " + page.locator(".oud-main").inner_text()[:400]
    button(page, "Cancel").click()
    page.locator("[data-testid=notice-warning]", has_text="Cancelled").wait_for()
    assert progress.count() == 0

    # A small run to completion: 2 replicates x 2 scenarios, 1 year, 300 people.
    set_int_slider(page, "Replicates per scenario (runs)", 2)
    set_int_slider(page, "Horizon (years after burn-in)", 1)
    choose(page, "Population (people)", "300")
    button(page, "Run comparison").click()
    table = page.locator("[data-testid=summary-table]")
    table.wait_for(timeout=300_000)
    header = table.locator("tr").first.inner_text()
    assert "baseline" in header and "expand_moud" in header
    assert "OUD prevalence (in care or not)" in table.inner_text()
    assert (
        page.locator("[data-testid=notice-success]")
        .inner_text()
        .startswith("Finished: baseline (2 runs), expand_moud (2 runs)")
    )
    before = src(page, "compare-chart")
    assert "OUD prevalence" in page.locator("[data-testid=compare-chart]").get_attribute("alt")
    choose(page, "Metric", "Any mental illness (depression, anxiety, PTSD or other)")
    wait_src_change(page, "compare-chart", before)
    assert "Any mental illness (depression, anxiety, PTSD or other)" in page.locator(
        "[data-testid=compare-chart]"
    ).get_attribute("alt")
    screenshot(page, "compare")

    with page.expect_download() as info:
        page.locator("[data-testid=download-runs]").click()
    path = tmp_path / "runs.csv"
    info.value.save_as(path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("scenario,replicate,seed,step,year,oud_prevalence")
    assert {line.split(",")[0] for line in lines[1:]} == {"baseline", "expand_moud"}
    assert len(lines) == 1 + 2 * 2 * 53  # scenarios x replicates x (weeks 0..52)
    watch.assert_clean()
