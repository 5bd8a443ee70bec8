"""Decision outputs of a comparison (model.decision): paired differences, ICERs and net monetary
benefit on hand-made outcomes, and `oudsim compare` writing them from a real run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from oudsim.model import decision
from oudsim.model.cli import app


def outcomes(rows: dict[str, list[tuple[float, float]]]) -> pd.DataFrame:
    """(cost, QALYs) per replicate for each scenario, the other outcomes from them."""
    out = []
    for scenario, values in rows.items():
        for i, (cost, q) in enumerate(values):
            out.append(
                {
                    "scenario": scenario,
                    "replicate": i,
                    "seed": 100 + i,
                    "cost": cost,
                    "qalys": q,
                    "life_years_lost": 50 - q,
                    "deaths": 10 - q,
                    "overdoses": 100 - q,
                }
            )
    return pd.DataFrame(out)


TOY = outcomes(
    {
        "A": [(0.0, 0.0), (10.0, 1.0), (-10.0, -1.0)],
        "B": [(10_000.0, 0.1), (10_010.0, 1.1), (9_990.0, -0.9)],  # extendedly dominated (A->B 100k > B->C 75k)
        "C": [(40_000.0, 0.5), (40_010.0, 1.5), (39_990.0, -0.5)],
        "D": [(50_000.0, 0.4), (50_010.0, 1.4), (49_990.0, -0.6)],  # dominated by C
    }
)


def test_paired_differences_icer_and_net_benefit_by_hand():
    t = decision.decision_table(TOY, "A", wtp=[100_000]).set_index("scenario")
    c = t.loc["C"]
    assert c["incremental_cost"] == pytest.approx(40_000) and c["incremental_qalys"] == pytest.approx(0.5)
    # Every pair differs by the same amount: the interval is the point.
    assert c["incremental_cost_lo"] == pytest.approx(40_000) and c["incremental_cost_hi"] == pytest.approx(40_000)
    assert c["icer"] == pytest.approx(80_000)
    assert c["inmb_100000"] == pytest.approx(10_000)  # 100,000 x 0.5 - 40,000
    assert t.loc["B", "inmb_100000"] == pytest.approx(0.0, abs=1e-6)
    assert t.loc["D", "inmb_100000"] == pytest.approx(-10_000)
    assert t.loc["C", "overdose_deaths_averted"] == pytest.approx(0.5)  # deaths fall as QALYs rise here
    assert dict(t["frontier"]) == {
        "A": "reference",
        "B": "extendedly dominated",
        "C": "frontier",
        "D": "dominated",
    }


def test_a_cheaper_and_better_scenario_is_dominant_and_the_reverse_dominated():
    df = outcomes(
        {"base": [(100.0, 1.0), (110.0, 2.0)], "good": [(50.0, 2.0), (60.0, 3.0)], "bad": [(150.0, 0.5), (160.0, 1.5)]}
    )
    t = decision.decision_table(df, "base").set_index("scenario")
    assert decision.describe_icer(t.loc["good", "icer"]) == "cost-saving (dominant)"
    assert decision.describe_icer(t.loc["bad", "icer"]) == "dominated"
    cheaper = outcomes({"base": [(100.0, 2.0), (110.0, 3.0)], "cut": [(50.0, 1.0), (60.0, 2.0)]})
    c = decision.decision_table(cheaper, "base").set_index("scenario").loc["cut"]
    assert c["quadrant"] == "saves money, loses health"
    assert decision.describe_icer(c["icer"], c["quadrant"]) == "saves 50 per QALY lost"


def test_icer_interval_is_left_empty_when_the_qaly_difference_changes_sign():
    noisy = outcomes(
        {
            "base": [(0.0, 0.0)] * 6,
            "x": [(100.0, 1.0), (100.0, -1.0), (100.0, 0.5), (100.0, -0.5), (100.0, 0.2), (100.0, -0.3)],
        }
    )
    t = decision.decision_table(noisy, "base").set_index("scenario")
    assert np.isnan(t.loc["x", "icer_lo"]) and np.isnan(t.loc["x", "icer_hi"])
    steady = outcomes({"base": [(0.0, 0.0)] * 6, "x": [(100.0 + i, 1.0 + 0.1 * i) for i in range(6)]})
    s = decision.decision_table(steady, "base").set_index("scenario")
    assert s.loc["x", "icer_lo"] <= s.loc["x", "icer"] <= s.loc["x", "icer_hi"]


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="willingness to pay"):
        decision.decision_table(TOY, "A", wtp=[-1])
    with pytest.raises(ValueError, match="comparator 'Z'"):
        decision.decision_table(TOY, "Z")
    mixed = TOY.copy()
    mixed.loc[mixed["scenario"] == "B", "seed"] += 1
    with pytest.raises(ValueError, match="different seeds"):
        decision.decision_table(mixed, "A")


@pytest.mark.slow
def test_compare_writes_the_cost_effectiveness_table_and_plane(tmp_path):
    out = tmp_path / "run"
    args = ["compare", "baseline", "expand_moud", "-p", "2000", "-n", "3", "-y", "2", "-o", str(out), "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "cost_effectiveness.csv").set_index("scenario")
    assert set(table.index) == {"baseline", "expand_moud"}
    assert table.loc["expand_moud", "pairs"] == 3
    # More slots: more spent on medication, fewer people untreated.
    ts = pd.read_parquet(out / "timeseries.parquet")
    med = ts.groupby("scenario")["cost_medication"].sum()
    assert med["expand_moud"] > med["baseline"]
    assert (out / "ce_plane.png").stat().st_size > 10_000
    assert "ICER" in result.output
    again = CliRunner().invoke(app, ["compare", "baseline", "expand_moud", "--from", str(out), "--wtp", "30000"])
    assert again.exit_code == 0, again.output
    assert "inmb_30000" in pd.read_csv(out / "cost_effectiveness.csv").columns
    bad = CliRunner().invoke(app, ["compare", "baseline", "expand_moud", "--from", str(out), "--wtp", "0"])
    assert bad.exit_code == 2 and "willingness to pay" in bad.output
    report = CliRunner().invoke(app, ["report", str(out), "--metric", "oud_prevalence"])
    assert report.exit_code == 0, report.output
    page = (out / "report.html").read_text()
    assert "Costs and health against baseline" in page and "net benefit at 30,000/QALY" in page
    assert "ce_plane.png" in page
