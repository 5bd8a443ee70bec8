"""The Compare page's numbers without a browser: paired differences over time, derived rates, the
table, the figure and the page's results component (solara.render)."""

from __future__ import annotations

import re
from typing import Any

import ipyvue
import numpy as np
import pandas as pd
import pytest
import solara

from oudsim.model.dashboard import compare as page
from oudsim.model.metrics import METRIC_NAMES

T_975_2DF = 4.302652729749464  # scipy.stats.t.ppf(0.975, 2), from tables: 4.303


def frame(rows: list[tuple[str, int, int, float]], metric: str = "x", seed_of: Any = None) -> pd.DataFrame:
    """A run_replicates-like frame from (scenario, replicate, step, value) rows, weekly steps."""
    df = pd.DataFrame(rows, columns=["scenario", "replicate", "step", metric])
    df["seed"] = df["replicate"].map(seed_of or (lambda r: 100 + r))
    df["year"] = df["step"] / 52.0
    return df


def test_paired_over_time_reproduces_hand_computed_differences_and_t_intervals() -> None:
    # Replicate r of each scenario shares a seed; the comparator's values differ by replicate, so an
    # unpaired comparison would see far more spread than the paired one.
    base = {0: 10.0, 1: 20.0, 2: 30.0}
    rows = []
    for r, b in base.items():
        rows += [("base", r, 0, b), ("base", r, 1, b)]
        rows += [("alt", r, 0, b), ("alt", r, 1, b + (1.0, 2.0, 3.0)[r])]  # differences 1, 2, 3 at step 1
        rows += [("other", r, 0, b), ("other", r, 1, b - 4.0)]  # the same difference every time
    df = frame(rows)
    out = page.paired_over_time(df, "x", "base")
    assert list(out.columns) == ["scenario", "year", "diff", "lo", "hi", "n"]
    assert list(dict.fromkeys(out["scenario"])) == ["alt", "other"]  # the frame's order, comparator left out
    alt = out[out["scenario"] == "alt"].reset_index(drop=True)
    assert alt["year"].tolist() == [0.0, 1 / 52]
    assert alt.loc[0, ["diff", "lo", "hi"]].tolist() == [0.0, 0.0, 0.0]
    half = T_975_2DF * 1.0 / np.sqrt(3)  # sd of (1, 2, 3) is 1
    assert alt.loc[1, "diff"] == pytest.approx(2.0)
    assert alt.loc[1, "lo"] == pytest.approx(2.0 - half)
    assert alt.loc[1, "hi"] == pytest.approx(2.0 + half)
    assert alt.loc[1, "n"] == 3
    other = out[out["scenario"] == "other"].iloc[1]
    assert (other["diff"], other["lo"], other["hi"]) == pytest.approx((-4.0, -4.0, -4.0))


def test_paired_over_time_pairs_by_replicate_and_refuses_unpaired_seeds() -> None:
    rows = [("base", r, 1, float(r)) for r in range(3)] + [("alt", r, 1, float(r) + 1.0) for r in (0, 2)]
    out = page.paired_over_time(frame(rows), "x", "base")  # replicate 1 of alt is missing: 2 pairs
    assert out.iloc[0]["n"] == 2 and out.iloc[0]["diff"] == pytest.approx(1.0)
    assert out.iloc[0]["lo"] == pytest.approx(1.0) and out.iloc[0]["hi"] == pytest.approx(1.0)
    one = page.paired_over_time(frame([("base", 0, 1, 1.0), ("alt", 0, 1, 3.0)]), "x", "base")
    assert one.iloc[0]["diff"] == 2.0 and np.isnan(one.iloc[0]["lo"])  # no interval from one pair
    unpaired = frame(rows)
    unpaired.loc[unpaired["scenario"] == "alt", "seed"] += 1
    with pytest.raises(page.ScenarioError, match="different seeds"):
        page.paired_over_time(unpaired, "x", "base")
    with pytest.raises(page.ScenarioError, match="comparator"):
        page.paired_over_time(frame(rows), "x", "nobody")


def test_display_frame_derives_totals_since_week_0_and_rates_over_the_past_year() -> None:
    # Four steps a year (year = step / 4), 1,000 people: one death = 100 per 100,000.
    deaths = [5.0, 1.0, 0.0, 2.0, 1.0, 0.0, 3.0]  # step 0 holds the last burn-in step's flows
    df = pd.DataFrame(
        {
            "scenario": "s",
            "replicate": 0,
            "seed": 1,
            "step": range(7),
            "year": [k / 4 for k in range(7)],
            "overdose_deaths": deaths,
            "overdoses": [2 * d for d in deaths],
            "incidence": [40.0, 80.0, 0.0, 40.0, 0.0, 0.0, 120.0],
            "oud_death_rate": [1.0] * 7,
        }
    )
    out = page.display_frame(df.iloc[::-1], population=1_000)  # any row order
    out = out.sort_values("step")
    assert page.steps_per_year(df) == 4
    assert out["overdose_deaths_since_week0"].tolist() == pytest.approx([0, 100, 100, 300, 400, 400, 700])
    assert out["overdoses_since_week0"].tolist() == pytest.approx([0, 200, 200, 600, 800, 800, 1400])
    # Trailing year = the last 4 steps (fewer at first), as a count per 100,000 per year.
    window = [[5], [5, 1], [5, 1, 0], [5, 1, 0, 2], [1, 0, 2, 1], [0, 2, 1, 0], [2, 1, 0, 3]]
    expected = [np.mean(w) * 4 * 100 for w in window]
    assert out["overdose_deaths_past_year"].tolist() == pytest.approx(expected)
    assert out["overdose_deaths_past_year"].iloc[-1] == pytest.approx(600.0)  # 6 deaths in the final year
    # A per-step rate already scaled to a year: its trailing-year mean.
    assert out["new_oud_past_year"].tolist() == pytest.approx([40, 60, 40, 40, 30, 10, 40])
    assert out["oud_deaths_past_year"].tolist() == pytest.approx([1.0] * 7)


def test_display_frame_keeps_runs_apart() -> None:
    rows = []
    for scenario, d in (("a", 1.0), ("b", 2.0)):
        for r in range(2):
            rows += [(scenario, r, k, d * (r + 1)) for k in range(3)]
    df = frame(rows, metric="overdose_deaths")
    df["overdoses"], df["incidence"], df["oud_death_rate"] = 0.0, 0.0, 0.0
    out = page.display_frame(df, population=100_000)
    last = out[out["step"] == 2].set_index(["scenario", "replicate"])["overdose_deaths_since_week0"]
    assert last.to_dict() == {("a", 0): 2.0, ("a", 1): 4.0, ("b", 0): 4.0, ("b", 1): 8.0}


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    from oudsim.model.experiments import run_replicates

    # Two years: naloxone starts at year 1, so its effect shows in the final year.
    return run_replicates(["baseline", "naloxone"], replicates=3, years=2, population=1_000, seed=1)


def test_final_step_agrees_with_experiments_compare_on_final_year_means(runs: pd.DataFrame) -> None:
    from oudsim.model.experiments import compare, final_year_means

    cmp = compare(final_year_means(runs), "baseline", ["naloxone"]).set_index("metric")
    # Each metric's trailing-year mean at the last step of a run of whole years is its final-year mean, so
    # the paired difference over time ends where experiments.compare's does, interval and all.
    trailing = runs.copy()
    groups = runs.groupby(["scenario", "replicate"], sort=False)
    for metric in METRIC_NAMES:
        trailing[metric] = groups[metric].transform(lambda s: s.rolling(52, min_periods=1).mean())
    checked = 0
    for metric in METRIC_NAMES:
        last = page.paired_over_time(trailing, metric, "baseline").iloc[-1]
        want = cmp.loc[metric]
        assert last["n"] == want["n"] == 3
        assert last["diff"] == pytest.approx(want["diff"], abs=1e-12), metric
        for bound in ("lo", "hi"):
            assert last[bound] == pytest.approx(want[bound], abs=1e-12, nan_ok=True), (metric, bound)
        checked += last["hi"] > last["lo"]
    assert checked >= 5  # real intervals, not only metrics that never differ


def test_derived_measures_end_where_the_table_and_the_model_do(runs: pd.DataFrame) -> None:
    shown = page.display_frame(runs, population=1_000)
    # The running total from per-step counts is the model's own, at every step.
    assert shown["overdose_deaths_since_week0"].to_numpy() == pytest.approx(
        runs["cumulative_overdose_deaths"].to_numpy()
    )
    table = page.difference_table(runs, "baseline", population=1_000).set_index("key")
    for key in ("overdose_deaths_since_week0", "overdose_deaths_past_year", "new_oud_past_year", "oud_prevalence"):
        last = page.paired_over_time(shown, key, "baseline").iloc[-1]
        k = page.MEASURE_BY_KEY[key].scale
        row = table.loc[key]
        assert row["difference"] == pytest.approx(last["diff"] * k, abs=1e-9), key
        assert row["lo"] == pytest.approx(last["lo"] * k, abs=1e-9, nan_ok=True), key
    assert set(table["scenario"]) == {"naloxone"} and (table["pairs"] == 3).all()
    overdoses = table.loc["overdoses_past_year"]  # a per-step count, shown per 100,000 per year
    finals = page.table_finals(runs)
    base = finals[finals["scenario"] == "baseline"]["overdoses"].mean()
    assert overdoses["comparator_value"] == pytest.approx(base * 52 * 1e5 / 1_000)


def test_difference_table_verdicts_in_words() -> None:
    v = page.verdict("naloxone", "Overdose deaths since week 0", -12.34, -19.5, -5.1, "per 100,000 people", "baseline")
    assert v == (
        "naloxone lowers “overdose deaths since week 0” by 12.3 per 100,000 people compared with baseline "
        "(95% CI of the difference −19.5 to −5.10): beyond chance."
    )
    v = page.verdict("x", "OUD prevalence (in care or not)", 0.2, -0.1, 0.5, "percentage points", "baseline")
    assert v.startswith("x raises “OUD prevalence (in care or not)” by 0.20 percentage points")
    assert v.endswith("(95% CI of the difference −0.10 to 0.50): within chance.")
    assert page.verdict("x", "Deaths", -7e-17, 0.0, 0.0, "per 100,000 people", "b").endswith(": no difference.")
    assert page.verdict("x", "Deaths", 4.0, 4.0, 4.0, "per 100,000 people", "b").endswith("beyond chance.")
    assert [page.reading(*ci) for ci in ((0, 0), (-1, 2), (0.5, 2), (np.nan, np.nan))] == [
        "no difference",
        "within chance",
        "beyond chance",
        "n/a",
    ]
    assert [page.num(x, signed=True) for x in (-0.000091, 0.0054, 12.345, -1234.5, 0.0)] == [
        "−0.000091",
        "+0.0054",
        "+12.3",
        "−1,234",
        "0.00",
    ]


def test_every_measure_is_named_in_words() -> None:
    parameter_like = re.compile(r"[a-z0-9]+[_.][a-z]")
    for m in page.MEASURES:
        for text in (m.label, m.unit, m.diff_unit, m.table_label):
            assert not parameter_like.search(text), text
        assert "per step" not in m.unit
    keys = {m.key for m in page.MEASURES}
    assert len(keys) == len(page.MEASURES)
    assert len({m.label for m in page.MEASURES}) == len(page.MEASURES)  # the select lists them by label
    assert {"overdose_deaths", "overdoses", "overdose_death_rate"}.isdisjoint(keys)  # per-step values replaced
    assert page.DEFAULT_MEASURE in keys


def test_intervention_starts_and_explore_settings_scenario() -> None:
    from oudsim.scenarios import load_scenario

    assert page.intervention_starts(load_scenario("naloxone")) == [1.0]
    assert page.intervention_starts(load_scenario("baseline")) == []
    mine = page.scenario_from_explore({"population": 500, "rng": "7", "naloxone_coverage": 0.9, "stigma": 0.2})
    assert mine.name == page.EXPLORE_NAME
    assert page.intervention_starts(mine) == [1.0]
    assert mine.interventions[-1].changes["overdose.naloxone_coverage"].amount == 0.9
    assert mine.params.stigma.initial_mean == 0.2  # shapes the population: from the start
    assert "simulation.population" not in mine.overrides
    assert "Naloxone kits" in mine.description and "_" not in mine.description
    assert page.intervention_starts(page.scenario_from_explore({"naloxone_coverage": 0.9}, start_year=None)) == []


def test_figure_is_a_png_with_a_panel_per_scenario(runs: pd.DataFrame) -> None:
    from oudsim.model.dashboard.ui import figure_png

    shown = page.display_frame(runs, population=1_000)
    m = page.MEASURE_BY_KEY["oud_prevalence"]
    paired = page.paired_over_time(shown, m.key, "baseline")
    fig = page.differences_figure(paired, m, "baseline", {"naloxone": [1.0]})
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1
    png = figure_png(fig)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    alt = page.figure_alt(paired, m, "baseline", {"naloxone": [1.0]})
    assert "naloxone:" in alt and "95% CI" in alt and "OUD prevalence" in alt
    table = page.series_table_html(paired, m, "baseline")
    assert "<caption>" in table and "<details>" in table and "naloxone − baseline" in table
    many = pd.concat([paired.assign(scenario=f"s{i}") for i in range(5)], ignore_index=True)
    fig = page.differences_figure(many, m, "baseline", {})
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 5


def test_results_component_shows_differences_and_follows_the_measure(runs: pd.DataFrame) -> None:
    import ipyvuetify as v

    from oudsim.model.dashboard.ui import DownloadButton

    run = page.ComparisonRun(runs, "baseline", 1_000, {"naloxone": [1.0]}, {})
    measure = solara.reactive(page.DEFAULT_MEASURE)
    _, rc = solara.render(page.ComparisonResults(run, measure), handle_error=False)

    def widgets() -> list[Any]:
        return rc.find(ipyvue.Html, meta_oud_element=True).widgets

    def text() -> str:
        return "\n".join(w.attributes.get("innerHTML", "") for w in widgets())

    html_now = text()
    assert 'data-testid="difference-table-naloxone"' in html_now
    assert "Difference (95% CI)" in html_now and "Overdose deaths since week 0" in html_now
    verdict = next(w for w in widgets() if w.attributes.get("data-testid") == "verdict-naloxone")
    assert verdict.attributes["innerHTML"].startswith("naloxone ")
    chart = next(w for w in widgets() if w.attributes.get("data-testid") == "compare-chart")
    before = chart.attributes["src"]
    rc.find(v.Select, label="Measure shown over time").widget.v_model = "Untreated OUD prevalence"
    assert measure.value == "untreated_oud_prevalence"
    chart = next(w for w in widgets() if w.attributes.get("data-testid") == "compare-chart")
    assert chart.attributes["src"] != before and "untreated OUD prevalence" in chart.attributes["alt"]
    series = rc.find(DownloadButton, testid="download-series").widget.make().decode().splitlines()
    assert series[0] == "measure,unit,comparator,scenario,year,diff,lo,hi,n"
    table = rc.find(DownloadButton, testid="download-table").widget.make().decode().splitlines()
    assert table[0].startswith("scenario,comparator,measure,unit,comparator_value,scenario_value,difference,lo,hi")


def test_explore_settings_are_offered_with_the_pages_own_run_settings() -> None:
    import ipyvuetify as v

    from oudsim.model.dashboard.ui import Layout
    from oudsim.scenarios import load_scenario

    # As the Explore page holds it: its own population and short burn-in, a change from week 26.
    explored = load_scenario("baseline").with_overrides(
        {"simulation.population": 1_000, "simulation.burn_in_years": 2.0, "network.mean_degree": 8},
        name="your_settings",
    )
    change = page.parse_intervention({"kind": "naloxone", "start_year": 0.5, "amount": 0.9})
    explored = page.dataclasses.replace(explored, interventions=(change,), description="Your settings.")
    choice = page.as_explore_choice(explored)
    assert choice.name == page.EXPLORE_NAME and choice.description == "Your settings."
    assert choice.params.simulation.burn_in_years == load_scenario("baseline").params.simulation.burn_in_years
    assert choice.params.network.mean_degree == 8
    assert page.intervention_starts(choice) == [0.5]

    _, rc = solara.render(Layout(children=[page.Compare()]), handle_error=False)
    names = {w.label for w in rc.find(v.Checkbox).widgets}
    assert page.EXPLORE_NAME not in names and {"naloxone", "expand_moud"} <= names and "baseline" not in names
    page.explore_scenario.set(explored)
    try:
        names = {w.label for w in rc.find(v.Checkbox).widgets}
        assert page.EXPLORE_NAME in names
        comparator = rc.find(v.Select, label="Comparator (every scenario is compared with it)").widget
        assert page.EXPLORE_NAME in comparator.items
    finally:
        page.explore_scenario.set(None)
