"""Health economics of a run (model.accounting): each step's costs and QALYs reproduce the parameters
and the people behind them, the economics change no dynamics, and a horizon's present values are the
hand-computed sums."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oudsim.agents.states import Care, Stage
from oudsim.model import accounting
from oudsim.model.economics import annuity_years
from oudsim.model.metrics import ECONOMIC_NAMES, METRIC_NAMES
from oudsim.model.oud_model import OUDModel
from oudsim.model.parameters import ParameterError, Parameters


def stepped(steps: int = 30, **overrides: object) -> OUDModel:
    m = OUDModel(population=3_000, rng=11, burn_in_years=2.0, **overrides)
    m.run_for(steps)
    return m


def test_every_economic_metric_is_in_the_catalogue():
    assert set(ECONOMIC_NAMES) <= set(METRIC_NAMES)


def test_service_costs_are_people_in_care_times_their_weekly_cost():
    m = stepped()
    e, pop, n = m.params.economics, m.population, m.population.n
    v = accounting.step_values(m)
    assert v["cost_medication"] == pytest.approx(np.sum(pop.care == Care.MEDICATION) * e.medication_care_per_week / n)
    assert v["cost_integrated"] == pytest.approx(np.sum(pop.care == Care.INTEGRATED) * e.integrated_care_per_week / n)
    mh_only = pop.in_mh_care & (pop.care != Care.INTEGRATED)
    assert v["cost_mh_care"] == pytest.approx(mh_only.sum() * e.mh_care_per_week / n)
    with_oud = np.isin(pop.stage, (Stage.OUD, Stage.TREATMENT)).sum()
    assert v["cost_oud_health_care"] == pytest.approx(with_oud * e.oud_health_care_per_week / n)
    assert v["cost_medication"] > 0 and v["cost_oud_health_care"] > 0


def test_qalys_lived_weigh_each_person_by_state_and_disorder():
    m = stepped()
    e, pop = m.params.economics, m.population
    sustained_since = m.week - 52
    u = np.select(
        [
            pop.stage == Stage.NONE,
            pop.stage == Stage.MISUSE,
            pop.stage == Stage.OUD,
            pop.stage == Stage.TREATMENT,
            (pop.stage == Stage.REMISSION) & (pop.stage_since > sustained_since),
            pop.stage == Stage.REMISSION,
        ],
        [
            e.utility_no_oud,
            e.utility_misuse,
            e.utility_untreated_oud,
            e.utility_in_care,
            e.utility_early_remission,
            e.utility_sustained_remission,
        ],
    )
    u = u * np.where(pop.any_mh, e.mh_utility_factor, 1.0)
    assert accounting.step_values(m)["qalys_lived"] == pytest.approx(u.sum() / pop.n / 52.0)
    # A year of such steps is about a year of life at the population's mean utility.
    assert 0.6 < u.mean() < e.utility_no_oud


def test_overdose_and_naloxone_costs_follow_the_steps_events():
    m = stepped(52)
    e = m.params.economics
    df = m.metrics_frame()
    per_event = e.ems_share * e.ems_per_call + e.ed_share * e.ed_per_visit + e.hospital_share * e.hospital_per_stay
    fatal, events = df["overdose_deaths"].to_numpy(), df["overdoses"].to_numpy()
    expected = ((events - fatal) * per_event + fatal * e.fatal_ems_share * e.ems_per_call) / m.population.n
    assert df["cost_overdose"].to_numpy() == pytest.approx(expected)
    assert events.sum() > 0
    assert df["cost_naloxone"].sum() > 0  # kits are handed out at the default coverage
    none = stepped(52, naloxone_coverage=0.0)
    assert none.metrics_frame()["cost_naloxone"].iloc[1:].sum() == 0.0  # no distribution, no kits bought


def test_a_death_loses_the_discounted_remaining_life_of_its_age():
    e = Parameters().economics
    years, qalys = accounting.life_lost(e, np.array([40.0, 65.0]))
    expected = annuity_years(np.array([40.9, (23.5 + 15.9) / 2]), 0.03).sum()
    assert years == pytest.approx(expected)
    assert qalys == pytest.approx(expected * e.utility_no_oud)
    assert accounting.life_lost(e, np.array([])) == (0.0, 0.0)
    m = stepped(52)
    df = m.metrics_frame()
    assert (df["life_years_lost"].iloc[1:] > 0).mean() > 0.5  # most weeks someone dies


def test_economics_change_no_dynamics():
    dear = {
        "economics.medication_care_per_week": 900.0,
        "economics.utility_untreated_oud": 0.2,
        "economics.discount_rate": 0.1,
        "economics.perspective": "societal",
    }
    a, b = stepped(40), stepped(40, **dear)
    dynamics = [n for n in METRIC_NAMES if n not in ECONOMIC_NAMES]
    pd.testing.assert_frame_equal(a.metrics_frame()[dynamics], b.metrics_frame()[dynamics])
    assert not a.metrics_frame()["cost_total"].equals(b.metrics_frame()["cost_total"])


def test_the_societal_perspective_adds_productivity_and_justice():
    m = stepped(10, **{"economics.perspective": "societal"})
    v = accounting.step_values(m)
    health = sum(v[k] for k in accounting.COST_SERVICES)
    assert v["cost_total"] == pytest.approx(health + v["cost_societal"]) and v["cost_societal"] > 0
    h = stepped(10)
    assert accounting.step_values(h)["cost_total"] == pytest.approx(health)


def test_horizon_outcomes_are_the_discounted_sums():
    steps = np.arange(0, 105)
    frame = pd.DataFrame({"scenario": "s", "replicate": 0, "seed": 7, "step": steps, "year": steps / 52.0})
    for name in ECONOMIC_NAMES:
        frame[name] = 0.0
    frame["cost_total"] = 1.0  # US$1 per person a week
    frame["qalys_lived"] = 1 / 52
    frame.loc[52, "qalys_lost"] = 2.0  # one large loss at year 1
    frame["cumulative_overdose_deaths"] = np.linspace(0, 30, steps.size)
    out = accounting.horizon_outcomes(frame, 0.03).iloc[0]
    years = steps[1:] / 52.0
    factors = 1 / 1.03**years
    assert out["cost"] == pytest.approx(factors.sum() * 1e5)  # week 0 is the shared start: not counted
    assert out["qalys"] == pytest.approx((factors.sum() / 52 - 2.0 / 1.03) * 1e5)
    assert out["deaths"] == pytest.approx(30.0)
    undiscounted = accounting.horizon_outcomes(frame, 0.0).iloc[0]
    assert undiscounted["cost"] == pytest.approx(104 * 1e5)


def test_horizon_outcomes_refuse_a_time_series_without_economics():
    frame = pd.DataFrame({"scenario": ["s"], "replicate": [0], "year": [0.0], "oud_prevalence": [0.02]})
    with pytest.raises(ValueError, match="predates the economics"):
        accounting.horizon_outcomes(frame, 0.03)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("economics.naloxone_kit", -5.0, "economics.naloxone_kit"),
        ("economics.utility_in_care", 1.2, "economics.utility_in_care"),
        ("economics.discount_rate", -0.01, "economics.discount_rate"),
        ("economics.perspective", "patient", "economics.perspective"),
        ("economics.life_expectancy", [50, 60, 40, 30, 20, 15, 9, 4], "must not rise with age"),
    ],
)
def test_bad_economics_are_refused_naming_the_field(field, value, message):
    with pytest.raises(ParameterError, match=message):
        Parameters.build(**{field: value})
