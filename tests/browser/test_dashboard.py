"""The Explore page in a real browser: load, step, play, the student's paired what-if, the inspector.

Timings are written to test-output/timings.jsonl. The budgets asserted by default are generous so a
busy shared CI machine does not fail them by chance; OUDSIM_LOAD_BUDGET_S=3, OUDSIM_STEP_BUDGET_MS=100
and OUDSIM_PLAY_YEAR_BUDGET_S=5 hold the page to the issue's targets (docs/dashboard.md: how to measure).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from browser_support import Server, record_timing, screenshot

pytestmark = pytest.mark.browser

QUANTITIES = [
    "oud_prevalence",
    "untreated_oud_prevalence",
    "treatment_coverage",
    "waitlist_per_100k",
    "cumulative_overdose_deaths",
    "lonely_share",
]
STAGES = {"none", "misuse", "oud", "treatment", "remission"}
LOAD_BUDGET_S = float(os.environ.get("OUDSIM_LOAD_BUDGET_S", "30"))
STEP_BUDGET_MS = float(os.environ.get("OUDSIM_STEP_BUDGET_MS", "3000"))
PLAY_YEAR_BUDGET_S = float(os.environ.get("OUDSIM_PLAY_YEAR_BUDGET_S", "60"))
OUDSIM = str(Path(sys.executable).with_name("oudsim"))
ISOLATION = "Social isolation (× baseline rate of losing ties)"
CAPACITY = "OUD treatment slots (× the baseline's number)"


def open_explore(page: Any, server: Server) -> float:
    """Load the Explore page; seconds until the network, every chart and the numbers are shown."""
    t0 = time.perf_counter()
    page.goto(server.url + "/")
    page.locator("[data-testid=network]").wait_for()
    for key in QUANTITIES:
        page.locator(f"[data-testid=chart-{key}]").wait_for()
    page.locator("[data-testid=numbers]").wait_for()
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


def wait_week(page: Any, predicate: str, timeout: float = 60_000) -> None:
    """Wait until the week shown satisfies a JS predicate on ``w``, e.g. 'w >= 3'."""
    page.wait_for_function(
        "() => { const t = document.querySelector('[data-testid=run-summary]')?.innerText || '';"
        " const m = t.match(/Week (\\d+)/); if (!m) return false; const w = +m[1]; return " + predicate + "; }",
        timeout=timeout,
    )


def button(page: Any, name: str) -> Any:
    return page.get_by_role("button", name=name, exact=True)


def set_slider(page: Any, label: str, value: float) -> None:
    """Move a slider with the keyboard until it rests at ``value``.

    Each key press goes to the server and back; a quick series of presses can be answered by an
    echo of an earlier value, so the value is checked again after things have settled.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    thumb = page.locator(".v-slider", has_text=label).locator("[role=slider]")
    thumb.focus()
    for _ in range(120):
        now = float(thumb.get_attribute("aria-valuenow"))
        if abs(now - value) < 1e-6:
            time.sleep(0.8)
            if abs(float(thumb.get_attribute("aria-valuenow")) - value) < 1e-6:
                return
            continue
        try:
            thumb.press("ArrowRight" if now < value else "ArrowLeft", timeout=5_000)
        except PlaywrightTimeout:  # the slider was re-rendered under the key: find it again
            thumb.focus()
        time.sleep(0.1)
    raise AssertionError(f"slider {label!r} did not settle at {value}")


def numbers_row(page: Any, title: str) -> list[str]:
    """One row of the numbers strip: baseline, your settings, difference (as shown)."""
    row = page.locator("[data-testid=numbers] tr", has_text=title).first
    return [c.inner_text() for c in row.locator("td").all()]


def test_explore_loads_offline_with_both_runs(page: Any, server: Server, watch: Any) -> None:
    since_up = time.monotonic() - server.up_at
    seconds = open_explore(page, server)
    record_timing("first_page_load_s", seconds, since_server_up_s=round(since_up, 2))
    screenshot(page, "explore")
    for key in QUANTITIES:
        assert src(page, f"chart-{key}").startswith("data:image/png")
    for label in [ISOLATION, CAPACITY, "Naloxone kits (share of people who use carrying one)"]:
        assert page.get_by_text(label, exact=True).count() >= 1, label
    assert week(page) == 0
    assert "20,000 people" in page.locator("[data-testid=run-summary]").inner_text()
    base, yours, diff = numbers_row(page, "OUD prevalence")
    assert base == yours and float(diff) == 0.0  # one shared history until a setting is applied
    watch.assert_clean()
    assert seconds < LOAD_BUDGET_S, f"first page load took {seconds:.2f} s"


# Click to new image, timed inside the page: from the click event to the animation frame that first
# shows the chart's new picture. (Timed from Python, Playwright's own checks before a click and its
# polling add ~50 ms that a student never waits for; that figure is recorded too.)
ARM_CLICK_TIMER = """([sel]) => {
  window.__clickAt = null; window.__shownAt = null;
  const old = document.querySelector(sel).getAttribute('src');
  document.addEventListener('click', () => { window.__clickAt = performance.now(); }, {capture: true, once: true});
  const watch = new MutationObserver(() => {
    const e = document.querySelector(sel);
    if (e && e.getAttribute('src') !== old && window.__shownAt === null) {
      window.__shownAt = -1;
      watch.disconnect();
      requestAnimationFrame(() => { window.__shownAt = performance.now(); });
    }
  });
  watch.observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}"""


def click_to_new_image_ms(page: Any, name: str, testid: str) -> tuple[float, float]:
    """(in the page, from Python) milliseconds from clicking a button to the image's next picture."""
    page.evaluate(ARM_CLICK_TIMER, [f"[data-testid={testid}]"])
    t0 = time.perf_counter()
    button(page, name).click()
    page.wait_for_function("() => window.__shownAt > 0")
    outside = (time.perf_counter() - t0) * 1000
    return page.evaluate("() => window.__shownAt - window.__clickAt"), outside


def test_step_and_play_redraw_quickly(page: Any, server: Server, watch: Any) -> None:
    open_explore(page, server)
    times, outside = [], []
    for i in range(1, 12):
        in_page, from_python = click_to_new_image_ms(page, "Step one week", "chart-oud_prevalence")
        times.append(in_page)
        outside.append(from_python)
        wait_week(page, f"w >= {i}")
    median = statistics.median(times)
    record_timing("browser_step_redraw_ms", median, samples=[round(t) for t in times])
    record_timing("browser_step_redraw_ms_from_playwright", statistics.median(outside))
    assert week(page) == 11

    # Play: a simulated year, however long each redraw takes (it steps several weeks a frame if needed).
    start = week(page)
    t0 = time.perf_counter()
    button(page, "Play").click()
    wait_week(page, f"w >= {start + 52}")
    year_s = time.perf_counter() - t0
    record_timing("browser_play_year_s", year_s)
    button(page, "Pause").click()
    time.sleep(1.0)
    paused = week(page)
    time.sleep(1.0)
    assert week(page) == paused
    watch.assert_clean()
    assert median < STEP_BUDGET_MS, f"step + redraw took {median:.0f} ms (median)"
    assert year_s < PLAY_YEAR_BUDGET_S, f"a year of Play took {year_s:.1f} s"


def student_task(page: Any, server: Server, label: str, value: float, tmp: Path) -> dict[str, Any]:
    """What the issue's student does: run a year, set a value to apply now, run to year 3, read the
    difference, repeat over 5 seeds and read the sentence; the scenario files are downloaded."""
    open_explore(page, server)
    button(page, "Run one year").click()
    wait_week(page, "w >= 52")
    set_slider(page, label, value)
    page.get_by_text("not applied yet").wait_for()
    button(page, "Apply now (week 52)").click()
    page.wait_for_function(
        "() => (document.querySelector('[data-testid=run-summary]')?.innerText || '').includes('applied at year 1.01')"
    )
    for target in (104, 156):
        button(page, "Run one year").click()
        wait_week(page, f"w >= {target}")
    screenshot(page, f"explore-student-{label.split()[0].lower()}")
    shown = numbers_row(page, "OUD prevalence")
    page.locator(".v-select", has_text="Seeds").click()
    page.locator(".v-overlay--active .v-list-item-title").get_by_text("5", exact=True).click()
    button(page, "Repeat over 5 seeds").click()
    verdict = page.locator("[data-testid=repeat-verdict]")
    verdict.wait_for(timeout=900_000)
    files = {}
    for testid in ("download-baseline", "download-settings"):
        with page.expect_download() as d:
            page.locator(f"[data-testid={testid}]").click()
        path = tmp / d.value.suggested_filename
        d.value.save_as(path)
        files[testid] = path
    verdict.scroll_into_view_if_needed()
    screenshot(page, f"explore-repeat-{label.split()[0].lower()}")
    return {
        "numbers": shown,
        "sentence": verdict.inner_text(),
        "beyond": verdict.get_attribute("data-beyond-chance") == "true",
        "diff": float(verdict.get_attribute("data-diff")),
        "lo": float(verdict.get_attribute("data-lo")),
        "hi": float(verdict.get_attribute("data-hi")),
        "command": page.locator("[data-testid=repeat-command]").inner_text(),
        "files": files,
    }


@pytest.mark.parametrize(("label", "value"), [(ISOLATION, 3.0), (CAPACITY, 2.0)], ids=["isolation_x3", "capacity_x2"])
def test_the_students_what_if_agrees_with_oudsim_compare(
    page: Any, server: Server, watch: Any, tmp_path: Path, label: str, value: float
) -> None:
    got = student_task(page, server, label, value, tmp_path)
    base, yours, diff = got["numbers"]
    assert float(diff) == pytest.approx(float(yours) - float(base), abs=0.011)
    assert "Over 5 seeds, in year 3.0, your settings" in got["sentence"]
    assert ("beyond chance" in got["sentence"]) == got["beyond"]
    # The command the page shows, on the files it gave, in a clean folder.
    command = got["command"].split()
    assert command[:2] == ["oudsim", "compare"]
    run = subprocess.run(
        [OUDSIM, *command[1:], "-w", "2", "-o", str(tmp_path / "out")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(tmp_path / "out" / "comparison.csv")
    row = table[table["metric"] == "oud_prevalence"].iloc[0]
    assert (row["diff"], row["lo"], row["hi"]) == pytest.approx((got["diff"], got["lo"], got["hi"]))
    assert (row["lo"] > 0 or row["hi"] < 0) == got["beyond"]
    record_timing("student_task", 0.0, setting=label, sentence=got["sentence"])
    watch.assert_clean()


def test_inspector_follows_a_clicked_person(page: Any, server: Server, watch: Any) -> None:
    open_explore(page, server)
    net = page.locator("[data-testid=network]")
    box = net.bounding_box()
    old = src(page, "network")
    stage = page.locator("[data-testid=inspector-stage]")
    for fx, fy in [(0.5, 0.5), (0.45, 0.55), (0.55, 0.45), (0.4, 0.4), (0.6, 0.6), (0.3, 0.5), (0.5, 0.3)]:
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

    box_input = page.get_by_label("Person id (or click someone in the network)")
    box_input.fill("7")
    box_input.press("Enter")
    page.wait_for_function("() => document.querySelector('[data-testid=inspector-id]')?.innerText === '7'")
    assert stage.get_attribute("data-stage") in STAGES
    watch.assert_clean()
