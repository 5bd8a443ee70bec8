"""Decision analysis (model/economics.py) against cases computed by hand: discounting, discounted
life-years, QALYs of a life course, the efficiency frontier with strong and extended dominance, net
monetary benefit, acceptability curves, EVPI, the cost-effectiveness plane, and the refusals."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure  # the object API: no pyplot state, renders with Agg

from oudsim.model.economics import (
    DOMINATED,
    EXTENDEDLY_DOMINATED,
    FRONTIER,
    OKABE_ITO,
    REFERENCE,
    annuity_years,
    ce_plane,
    ceac,
    discount_factors,
    evpi,
    icer_table,
    incremental_draws,
    incremental_nmb,
    net_monetary_benefit,
    present_value,
    qalys,
)

R = 0.03

# --- discounting ------------------------------------------------------------------------------


def test_present_value_of_a_known_stream():
    # 100 a year at the start of years 0, 1, 2: 100 + 100/1.03 + 100/1.03^2
    #   = 100 + 97.0873786408 + 94.2595909134 = 291.3469695542
    years = np.array([0.0, 1.0, 2.0])
    assert present_value(np.full(3, 100.0), years, R) == pytest.approx(291.3469695542, abs=1e-9)
    assert present_value(np.full(3, 100.0), years, 0.0) == 300.0


def test_discount_factors_at_weekly_times():
    # Week 26 is half a year (1.03^-0.5 = 0.98533), week 52 one year (1/1.03), week 104 two.
    weeks = np.array([0, 26, 52, 104])
    factors = discount_factors(weeks / 52, R)
    assert factors == pytest.approx([1.0, 0.9853292781642932, 0.9708737864077670, 0.9425959091337543], abs=1e-12)
    # 52 weekly payments of 1 cost less than 52 today but more than 52 a year from now.
    pv = present_value(np.ones(52), np.arange(52) / 52, R)
    assert 52 / 1.03 < pv < 52


def test_discounting_refuses_a_negative_rate_or_time():
    with pytest.raises(ValueError, match="rate"):
        discount_factors(np.array([1.0]), -0.01)
    with pytest.raises(ValueError, match="rate"):
        annuity_years(3.0, np.nan)
    with pytest.raises(ValueError, match="years"):
        discount_factors(np.array([-1.0]), R)


# --- discounted life-years and QALYs ----------------------------------------------------------


def test_annuity_years_by_hand():
    # L = 3: 1 + 1/1.03 + 1/1.03^2 = 1 + 0.9708738 + 0.9425959 = 2.9134697
    assert annuity_years(3.0, R) == pytest.approx(2.9134696955, abs=1e-9)
    # L = 2.5: 1 + 1/1.03 + 0.5/1.03^2 = 2.4421717
    assert annuity_years(2.5, R) == pytest.approx(2.4421717410, abs=1e-9)
    # Under a year: the fraction, undiscounted; vectorised; rate 0 gives L back.
    assert annuity_years(np.array([0.0, 0.4, 3.0, 2.5]), R) == pytest.approx([0.0, 0.4, 2.9134696955, 2.4421717410])
    assert annuity_years(np.array([0.0, 2.5, 41.7]), 0.0) == pytest.approx([0.0, 2.5, 41.7])


def test_qalys_of_a_known_life_course():
    # Two years at utility 0.6 from year 0, then one year at 0.8 from year 2. Undiscounted:
    # 0.6*2 + 0.8*1 = 2.0. At 3%, each spell discounted at its start: 0.6*2*1 + 0.8*1/1.03^2
    #   = 1.2 + 0.7540767 = 1.9540767 (the 2-year spell takes no discount for its second year).
    u, d, start = np.array([0.6, 0.8]), np.array([2.0, 1.0]), np.array([0.0, 2.0])
    assert qalys(u, d, start, 0.0) == pytest.approx(2.0)
    assert qalys(u, d, start, R) == pytest.approx(1.2 + 0.8 / 1.03**2, abs=1e-12)
    assert qalys(u, d, start, R) == pytest.approx(1.9540767273, abs=1e-9)


def test_weekly_spells_fall_between_start_and_end_of_year_discounting():
    # Three years at full health in weekly spells: discounting each week at its start lies between
    # counting each whole year at its start (annuity_years) and at its end.
    weeks = np.arange(3 * 52)
    weekly = qalys(np.ones(weeks.size), np.full(weeks.size, 1 / 52), weeks / 52, R)
    end_of_year = sum(1.03**-k for k in (1, 2, 3))
    assert end_of_year < weekly < annuity_years(3.0, R)
    assert qalys(np.ones(weeks.size), np.full(weeks.size, 1 / 52), weeks / 52, 0.0) == pytest.approx(3.0)


def test_qalys_refuse_negative_durations():
    with pytest.raises(ValueError, match="durations_years"):
        qalys(np.array([0.5]), np.array([-1.0]), np.array([0.0]), R)


# --- efficiency frontier ----------------------------------------------------------------------


def toy() -> pd.DataFrame:
    """A: cost 0, 0 QALY; B: 10,000, 0.1; C: 40,000, 0.5; D: 50,000, 0.4 (dominated by C)."""
    return pd.DataFrame(
        {"scenario": ["D", "B", "A", "C"], "cost": [50_000.0, 10_000.0, 0.0, 40_000.0], "qaly": [0.4, 0.1, 0.0, 0.5]}
    )


def test_icer_table_of_the_four_strategy_toy():
    # By hand. D costs more than C and gives less: strongly dominated. Then A -> B: 10,000 / 0.1 =
    # 100,000 per QALY, B -> C: 30,000 / 0.4 = 75,000: B's ICER exceeds the next one's, so B is
    # extendedly dominated. The frontier is A -> C: 40,000 / 0.5 = 80,000 per QALY.
    table = icer_table(toy()).set_index("scenario")
    assert list(table.index) == ["A", "B", "C", "D"]  # sorted by cost
    assert table["status"].to_dict() == {"A": REFERENCE, "B": EXTENDEDLY_DOMINATED, "C": FRONTIER, "D": DOMINATED}
    assert table.loc["C", "incremental_cost"] == pytest.approx(40_000)
    assert table.loc["C", "incremental_effect"] == pytest.approx(0.5)
    assert table.loc["C", "icer"] == pytest.approx(80_000)
    for s in ("A", "B", "D"):
        assert np.isnan(table.loc[s, ["incremental_cost", "incremental_effect", "icer"]].astype(float)).all()


def test_nmb_of_the_toy_at_100000():
    # effect * 100,000 - cost: A 0, B 10,000 - 10,000 = 0, C 50,000 - 40,000 = 10,000, D 40,000 - 50,000.
    t = toy().set_index("scenario").loc[["A", "B", "C", "D"]]
    nmb = net_monetary_benefit(t["cost"].to_numpy(), t["qaly"].to_numpy(), 100_000)
    assert nmb == pytest.approx([0.0, 0.0, 10_000.0, -10_000.0])
    # Over several WTPs: one row per WTP. At 50,000: A 0, B -5,000, C -15,000, D -30,000.
    grid = net_monetary_benefit(t["cost"].to_numpy(), t["qaly"].to_numpy(), np.array([50_000.0, 100_000.0]))
    assert grid.shape == (2, 4)
    assert grid[0] == pytest.approx([0.0, -5_000.0, -15_000.0, -30_000.0])
    # C vs A at 100,000: 0.5 * 100,000 - 40,000 = 10,000; scalar in, float out.
    assert incremental_nmb(40_000.0, 0.5, 0.0, 0.0, 100_000.0) == pytest.approx(10_000.0)
    assert isinstance(incremental_nmb(40_000.0, 0.5, 0.0, 0.0, 100_000.0), float)


def test_extended_dominance_is_applied_until_icers_increase():
    # A(0, 0), B(100, 1), C(150, 1.2), D(180, 2). First pass: A->B 100, B->C 250, C->D 37.5, so only C
    # goes. Second pass: A->B 100, B->D 80 / 1 = 80: now B goes. Frontier A->D: 180 / 2 = 90.
    df = pd.DataFrame({"scenario": list("ABCD"), "cost": [0.0, 100.0, 150.0, 180.0], "qaly": [0.0, 1.0, 1.2, 2.0]})
    table = icer_table(df).set_index("scenario")
    assert table["status"].tolist() == [REFERENCE, EXTENDEDLY_DOMINATED, EXTENDEDLY_DOMINATED, FRONTIER]
    assert table.loc["D", "icer"] == pytest.approx(90.0)


def test_icer_table_ties_and_row_order():
    # E is A's exact twin (later by name: dominated); F costs as much as B with less effect
    # (dominated); G, H are collinear with A (both ICERs 100,000: both stay). Row order is irrelevant.
    df = pd.DataFrame(
        {
            "scenario": ["H", "E", "F", "G", "A", "B"],
            "cost": [20_000.0, 0.0, 10_000.0, 15_000.0, 0.0, 10_000.0],
            "qaly": [0.2, 0.0, 0.05, 0.15, 0.0, 0.1],
            "note": list("hefgab"),
        }
    )
    table = icer_table(df)
    assert table["scenario"].tolist() == ["A", "E", "B", "F", "G", "H"]
    assert table["status"].tolist() == [REFERENCE, DOMINATED, FRONTIER, DOMINATED, FRONTIER, FRONTIER]
    assert table.loc[table["status"] == FRONTIER, "icer"].to_numpy() == pytest.approx([100_000.0] * 3)
    assert table["note"].tolist() == list("aebfgh")  # other columns travel with their rows
    shuffled = icer_table(df.sample(frac=1.0, random_state=3))
    pd.testing.assert_frame_equal(shuffled, table)
    # A single strategy is the reference.
    assert icer_table(df.iloc[[0]])["status"].tolist() == [REFERENCE]


# --- acceptability curves and EVPI ------------------------------------------------------------


def four_draws() -> pd.DataFrame:
    """X: nothing (cost 0, QALY 0). Y and Z vary by draw (cost, QALY):
    draw 1: Y (10,000, 0.1),  Z (40,000, 0.5)
    draw 2: Y (10,000, 0.3),  Z (40,000, 0.2)
    draw 3: Y (30,000, 0.1),  Z (40,000, 0.2)
    draw 4: Y ( 2,000, 0.02), Z (40,000, 0.1)"""
    y = [(10_000, 0.1), (10_000, 0.3), (30_000, 0.1), (2_000, 0.02)]
    z = [(40_000, 0.5), (40_000, 0.2), (40_000, 0.2), (40_000, 0.1)]
    rows = []
    for d in range(4):
        rows += [(d + 1, "X", 0.0, 0.0), (d + 1, "Y", *y[d]), (d + 1, "Z", *z[d])]
    return pd.DataFrame(rows, columns=["draw", "scenario", "cost", "qaly"])


def test_ceac_matches_the_four_draw_example():
    # NMB at 50,000 (X, Y, Z): d1 (0, -5,000, -15,000), d2 (0, 5,000, -30,000), d3 (0, -25,000, -30,000),
    # d4 (0, -1,000, -35,000): X wins 3 of 4, Y 1.
    # At 150,000: d1 (0, 5,000, 35,000) Z; d2 (0, 35,000, -10,000) Y; d3 (0, -15,000, -10,000) X;
    # d4 (0, 1,000, -25,000) Y: X 1/4, Y 2/4, Z 1/4.
    curves = ceac(four_draws(), np.array([50_000.0, 150_000.0]))
    assert list(curves.columns) == ["wtp", "scenario", "probability"]
    got = curves.set_index(["wtp", "scenario"])["probability"]
    assert got.loc[50_000.0].to_dict() == {"X": 0.75, "Y": 0.25, "Z": 0.0}
    assert got.loc[150_000.0].to_dict() == {"X": 0.25, "Y": 0.5, "Z": 0.25}


def test_ceac_sums_to_one_at_every_wtp_and_splits_ties():
    rng = np.random.default_rng(5)
    n = 200
    draws = pd.DataFrame(
        {
            "draw": np.repeat(np.arange(n), 3),
            "scenario": np.tile(["a", "b", "c"], n),
            "cost": rng.normal(20_000, 8_000, 3 * n),
            "qaly": rng.normal(0.3, 0.1, 3 * n),
        }
    )
    curves = ceac(draws, np.linspace(1_000, 300_000, 25))
    assert curves.groupby("wtp")["probability"].sum().to_numpy() == pytest.approx(np.ones(25))
    # Two identical strategies share every draw's win.
    twin = four_draws().query("scenario == 'X'").assign(scenario="W")
    tied = ceac(pd.concat([four_draws(), twin]), 50_000.0).set_index("scenario")["probability"]
    assert tied.to_dict() == {"X": 0.375, "Y": 0.25, "Z": 0.0, "W": 0.375}


def two_draws() -> pd.DataFrame:
    """P: nothing. Q: cost 10,000 in both draws; 0.3 QALY in draw 1, 0.14 in draw 2."""
    return pd.DataFrame(
        {"draw": [1, 1, 2, 2], "scenario": ["P", "Q"] * 2, "cost": [0.0, 10_000.0] * 2, "qaly": [0.0, 0.3, 0.0, 0.14]}
    )


def test_evpi_on_a_two_draw_example():
    # At 50,000 Q's NMB is 15,000 - 10,000 = 5,000 in draw 1 and 7,000 - 10,000 = -3,000 in draw 2;
    # P's is 0. On expectations Q is chosen (mean 1,000 > 0). With perfect information: Q in draw 1,
    # P in draw 2, mean (5,000 + 0) / 2 = 2,500. EVPI = 2,500 - 1,000 = 1,500.
    # At 100,000 Q wins both draws (20,000 and 4,000): nothing to learn, EVPI 0.
    out = evpi(two_draws(), np.array([50_000.0, 100_000.0]))
    assert list(out.columns) == ["wtp", "evpi"]
    assert out["evpi"].to_numpy() == pytest.approx([1_500.0, 0.0], abs=1e-9)
    assert out["evpi"].iloc[1] == 0.0


def test_evpi_is_never_negative():
    rng = np.random.default_rng(9)
    n = 100
    draws = pd.DataFrame(
        {
            "draw": np.repeat(np.arange(n), 2),
            "scenario": np.tile(["a", "b"], n),
            "cost": rng.normal(10_000, 3_000, 2 * n),
            "qaly": rng.normal(0.2, 0.1, 2 * n),
        }
    )
    assert (evpi(draws, np.linspace(1_000, 200_000, 30))["evpi"] >= 0).all()


def test_incremental_draws_subtract_the_comparator_in_each_draw():
    diffs = incremental_draws(two_draws(), "P")
    assert diffs["scenario"].tolist() == ["Q", "Q"]
    assert diffs["cost"].tolist() == [10_000.0, 10_000.0]
    assert diffs["qaly"].to_numpy() == pytest.approx([0.3, 0.14])
    with pytest.raises(ValueError, match="comparator"):
        incremental_draws(two_draws(), "nobody")


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("func", [icer_table, lambda df: ceac(df, 50_000.0), lambda df: evpi(df, 50_000.0)])
def test_tables_are_refused_with_the_field_named(func):
    good = two_draws() if func is not icer_table else toy()
    with pytest.raises(ValueError, match="'qaly'"):
        func(good.drop(columns="qaly"))
    with pytest.raises(ValueError, match="'cost'.*NaN"):
        func(good.assign(cost=good["cost"].where(good.index != 1)))
    with pytest.raises(ValueError, match="'qaly'.*NaN"):
        func(good.assign(qaly=np.nan))
    with pytest.raises(ValueError, match="empty"):
        func(good.iloc[:0])


def test_icer_table_refuses_duplicate_names():
    with pytest.raises(ValueError, match="'scenario'.*duplicated.*'B'"):
        icer_table(pd.concat([toy(), toy().iloc[[1]]]))


def test_draw_tables_must_be_complete():
    with pytest.raises(ValueError, match="'draw'"):
        ceac(two_draws().iloc[:3], 50_000.0)
    with pytest.raises(ValueError, match="more than once"):
        evpi(pd.concat([two_draws(), two_draws().iloc[[0]]]), 50_000.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf, [50_000.0, 0.0], []])
def test_wtp_must_be_positive_and_finite(bad):
    with pytest.raises(ValueError, match="wtp"):
        ceac(two_draws(), bad)
    with pytest.raises(ValueError, match="wtp"):
        evpi(two_draws(), bad)
    with pytest.raises(ValueError, match="wtp"):
        net_monetary_benefit(1.0, 1.0, bad)


# --- cost-effectiveness plane -----------------------------------------------------------------


def test_ce_plane_draws_each_scenario_and_the_threshold():
    diffs = incremental_draws(four_draws(), "X")
    fig = Figure()
    ax = ce_plane(fig.add_subplot(), diffs, wtp=100_000.0)
    assert ax.get_xlabel() == "Incremental QALYs"
    assert ax.get_ylabel() == "Incremental cost (US$)"
    # One translucent scatter per scenario in the Okabe-Ito order, with its four draws.
    assert len(ax.collections) == 2
    for collection, colour in zip(ax.collections, OKABE_ITO, strict=False):
        assert len(collection.get_offsets()) == 4
        assert collection.get_alpha() < 1
        assert collection.get_facecolor()[0][:3] == pytest.approx(to_rgb(colour))
    # The means: Y (mean QALY 0.13, mean cost 13,000), Z (0.25, 40,000).
    markers = [line for line in ax.lines if line.get_marker() == "o"]
    means = {line.get_label(): (line.get_xdata()[0], line.get_ydata()[0]) for line in markers}
    assert means["Y"] == pytest.approx((0.13, 13_000.0))
    assert means["Z"] == pytest.approx((0.25, 40_000.0))
    # One dashed threshold through the origin with slope WTP; legend: the scenarios and the threshold.
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_slope() == 100_000.0
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Y", "Z", "WTP US$100,000 per QALY"]
    fig.savefig(io.BytesIO(), format="png")  # renders with no display


def test_ce_plane_without_a_threshold_and_refusals():
    fig = Figure()
    ax = ce_plane(fig.add_subplot(), incremental_draws(four_draws(), "X"))
    assert not [line for line in ax.lines if line.get_linestyle() == "--"]
    with pytest.raises(ValueError, match="wtp"):
        ce_plane(fig.add_subplot(), incremental_draws(four_draws(), "X"), wtp=-5.0)
    with pytest.raises(ValueError, match="'cost'"):
        ce_plane(fig.add_subplot(), incremental_draws(four_draws(), "X").drop(columns="cost"))


def test_ce_plane_tells_apart_more_strategies_than_the_palette_has_colours():
    """Nine scenarios against a comparator (every shipped one): past eight, the colours come round
    again with another marker shape, so no two strategies look alike."""
    diffs = pd.DataFrame(
        [{"draw": d, "scenario": f"s{j}", "cost": 100.0 * j + d, "qaly": 0.1 * j} for j in range(11) for d in range(3)]
    )
    fig = Figure()
    ax = ce_plane(fig.add_subplot(), diffs, wtp=50_000.0)
    means = [line for line in ax.lines if line.get_linestyle() == "None"]
    looks = [(line.get_marker(), to_rgb(line.get_color())) for line in means]
    assert len(means) == 11 and len(set(looks)) == 11
    assert [m for m, _ in looks] == ["o"] * 8 + ["s"] * 3
    fig.savefig(io.BytesIO(), format="png")
