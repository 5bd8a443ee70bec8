"""Explore's paired what-if (model/dashboard/whatif.py): the pair shares its history, a setting acts
from the week it is applied, and the pair is exactly the scenario pair `oudsim compare` runs."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from oudsim.model.cli import app as cli
from oudsim.model.dashboard.paired_charts import QUANTITIES, PairedCharts, PairedFigure, horizon_for, yearly_table
from oudsim.model.dashboard.whatif import Effect, PairedRun, Setup, effect_sentence, scenario_toml
from oudsim.scenarios import load_scenario

SMALL = Setup(population=1_500, seed=7, burn_in_years=1.0)


@pytest.fixture(scope="module")
def week0() -> PairedRun:
    return PairedRun(SMALL)


@pytest.fixture()
def run(week0: PairedRun) -> PairedRun:
    return copy.deepcopy(week0)


def all_series(model) -> pd.DataFrame:
    return pd.DataFrame(model.datacollector.model_vars)


def test_without_a_change_the_two_runs_are_the_same_run(run: PairedRun) -> None:
    run.step(30)
    pd.testing.assert_frame_equal(all_series(run.baseline), all_series(run.arm))
    assert run.items == [] and run.version == 0


def test_a_setting_applied_now_acts_from_the_next_week_only(run: PairedRun) -> None:
    run.step(20)
    run.apply({"isolation": 3.0}, now=True)
    assert run.items[0].start_year == pytest.approx(20.5 / 52)
    run.step(30)
    b, a = run.series("lonely_share")
    np.testing.assert_array_equal(b[:21], a[:21])  # weeks 0–20: one shared history
    assert a[-1] - b[-1] > 0.05  # isolation ×3 makes people lonelier within 30 weeks
    assert run.applied == {"isolation": 3.0}


def test_the_pair_is_the_scenario_pair_oudsim_compare_runs(run: PairedRun) -> None:
    run.step(10)
    run.apply({"isolation": 2.5, "capacity": 2.0}, now=True)
    run.step(15)
    run.apply({"capacity": run.baseline_value("capacity")}, now=True)  # set back: a second item
    run.step(10)
    assert len(run.items) == 2
    scenario_run = run.arm_scenario().build_model(rng=SMALL.seed)
    base_run = run.scenario.build_model(rng=SMALL.seed)
    for _ in range(run.week):
        scenario_run.step()
        base_run.step()
    pd.testing.assert_frame_equal(all_series(run.arm), all_series(scenario_run))
    pd.testing.assert_frame_equal(all_series(run.baseline), all_series(base_run))


def test_apply_from_week_0_starts_both_runs_again(run: PairedRun) -> None:
    run.step(26)
    run.apply({"naloxone_coverage": 0.9}, now=False)
    assert run.week == 0 and run.items[0].start_year == 0.0
    run.step(26)
    fresh = run.arm_scenario().build_model(rng=SMALL.seed)
    for _ in range(26):
        fresh.step()
    pd.testing.assert_frame_equal(all_series(run.arm), all_series(fresh))


def test_applying_the_same_values_again_changes_nothing(run: PairedRun) -> None:
    run.apply({"isolation": 2.0})
    run.apply({"isolation": 2.0})
    assert len(run.items) == 1 and run.version == 1


def test_an_unknown_setting_is_refused(run: PairedRun) -> None:
    with pytest.raises(ValueError, match="not a setting of the what-if: isolaton"):
        run.apply({"isolaton": 2.0})


def test_scenario_files_load_back_as_the_same_scenarios(run: PairedRun, tmp_path: Path) -> None:
    run.step(5)
    run.apply({"isolation": 3.0, "integrated_share": 0.5})
    arm = run.arm_scenario()
    path = tmp_path / "your_settings.toml"
    path.write_text(scenario_toml(arm))
    loaded = load_scenario(path)
    assert loaded.name == "your_settings"
    # Everything but the population, which the command line sets (-p), round-trips.
    population = {"simulation.population": SMALL.population}
    assert loaded.with_overrides(population).params == arm.params
    assert [i.model_dump() for i in loaded.interventions] == [i.model_dump() for i in arm.interventions]
    base_path = tmp_path / "explore_baseline.toml"
    base_path.write_text(scenario_toml(run.scenario))
    assert load_scenario(base_path).with_overrides(population).params == run.scenario.params


def test_the_repeat_gives_the_numbers_of_oudsim_compare_on_the_same_seeds(
    run: PairedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run.step(4)
    run.apply({"isolation": 4.0})
    run.step(22)
    effects = run.repeat(3, workers=1)
    lonely = effects.effect("lonely_share")
    assert lonely.n == 3 and lonely.beyond_chance and lonely.diff > 0
    (tmp_path / "explore_baseline.toml").write_text(scenario_toml(run.scenario))
    (tmp_path / "your_settings.toml").write_text(scenario_toml(run.arm_scenario()))
    monkeypatch.chdir(tmp_path)
    args = effects.command().split()[1:] + ["-w", "1", "-o", "out"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    cli_table = pd.read_csv(tmp_path / "out" / "comparison.csv")
    for metric in ("oud_prevalence", "lonely_share", "cumulative_overdose_deaths"):
        row = cli_table[cli_table["metric"] == metric].iloc[0]
        mine = effects.effect(metric)
        assert (row["diff"], row["lo"], row["hi"]) == pytest.approx((mine.diff, mine.lo, mine.hi), nan_ok=True)


def test_the_sentence_says_whether_the_interval_leaves_out_zero() -> None:
    beyond = effect_sentence(Effect("oud_prevalence", 0.0012, 0.0004, 0.0020, 0.022, 10), 10, 3.0)
    assert "raised OUD prevalence" in beyond and "by 0.12 percentage points" in beyond
    assert "(95% interval +0.04 to +0.20)" in beyond and "beyond chance" in beyond
    chance = effect_sentence(Effect("oud_prevalence", -0.0003, -0.0010, 0.0004, 0.022, 10), 10, 3.0)
    assert "lowered" in chance and "includes zero" in chance and "beyond chance" not in chance
    deaths = effect_sentence(Effect("cumulative_overdose_deaths", -12.0, -20.0, -4.0, 90.0, 10), 10, 3.0)
    assert "lowered overdose deaths since week 0 by 12.0 per 100,000" in deaths


def test_chart_axes_never_shrink(run: PairedRun) -> None:
    fig = PairedFigure(QUANTITIES[0])
    run.apply({"isolation": 4.0, "capacity": 0.0})
    run.step(40)
    fig.render(run, 3.0)
    top, dlim = fig.top, fig.dlim
    assert top > 0 and dlim > 0
    trimmed = copy.deepcopy(run)
    for name in trimmed.baseline.datacollector.model_vars:  # the lines fall back to a lower level
        for m in (trimmed.baseline, trimmed.arm):
            m.datacollector.model_vars[name] = m.datacollector.model_vars[name][:2]
    fig.render(trimmed, 3.0)
    assert (fig.top, fig.dlim) == (top, dlim)


def test_the_time_axis_grows_in_round_steps_and_never_back() -> None:
    assert horizon_for(0.5) == 3.0
    assert horizon_for(3.2) == 5.0
    assert horizon_for(11.0, 5.0) == 20.0
    assert horizon_for(1.0, 20.0) == 20.0


def test_every_chart_has_its_values_as_a_table(run: PairedRun) -> None:
    run.apply({"isolation": 3.0})
    run.step(60)
    pngs = PairedCharts().render(run)
    assert len(pngs) == len(QUANTITIES) and all(p.startswith(b"\x89PNG") for p in pngs)
    rows = yearly_table(run, QUANTITIES[-1])  # lonely share
    assert [r[0] for r in rows] == pytest.approx([0.0, 1.0, 60 / 52])
    year, base, yours, diff = rows[-1]
    assert diff == pytest.approx(yours - base) and math.isfinite(base)
