"""Metrics that follow people over time: remission by its length, retention in care at 180 days,
overdose deaths with someone present and since week 0; each checked against a count made another way
(the transition log, the flows)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oudsim.agents.states import Stage
from oudsim.model import OUDModel
from oudsim.model.metrics import RETENTION_WEEKS, YEAR_WEEKS


@pytest.fixture(scope="module")
def run() -> tuple[OUDModel, pd.DataFrame, list[dict]]:
    m = OUDModel(population=20_000, rng=11, burn_in_years=2, capacity=400)
    flows = []
    for _ in range(90):
        m.step()
        flows.append(dict(m.flows))
    return m, m.metrics_frame(), flows


def test_early_and_sustained_remission_split_remission_by_its_length(run):
    m, df, _ = run
    pop = m.population
    remission = pop.stage == Stage.REMISSION.value
    long = remission & (pop.stage_since <= m.week - YEAR_WEEKS)
    last = df.iloc[-1]
    assert last["sustained_remission_prevalence"] == pytest.approx(long.mean())
    assert last["early_remission_prevalence"] == pytest.approx((remission & ~long).mean())
    assert long.any() and (remission & ~long).any()


def test_retention_at_180_days_matches_the_transition_log(run):
    """Each admission 26 to 38 weeks before the last week is retained if its person left treatment
    no sooner than 26 weeks after: counted from the log, the metric's figures come out the same."""
    m, df, _ = run
    log = m.transitions.frame()
    week = m.week
    lag, cohorts = m.cohorts.lag, m.cohorts.window_size
    admitted = log[(log["to"] == Stage.TREATMENT) & log["week"].between(week - lag - cohorts + 1, week - lag)]
    left = log[log["from"] == Stage.TREATMENT]
    kept = 0
    for person, start in zip(admitted["person"], admitted["week"], strict=True):
        out = left[(left["person"] == person) & (left["week"] > start)]["week"]
        kept += out.empty or out.min() > start + lag
    assert len(admitted) > 15
    assert lag == RETENTION_WEEKS
    assert df.iloc[-1]["retention_180d"] == pytest.approx(kept / len(admitted))
    assert 0 < kept < len(admitted)


def test_overdose_deaths_since_week_0_and_with_someone_present(run):
    m, df, flows = run
    deaths = sum(f["overdose_deaths"] for f in flows)
    alone = sum(f["alone_overdose_deaths"] for f in flows)
    assert deaths > 0
    last = df.iloc[-1]
    assert last["cumulative_overdose_deaths"] == pytest.approx(deaths / m.population.n * 1e5)
    assert last["witnessed_overdose_death_share"] == pytest.approx((deaths - alone) / deaths)
    assert np.all(np.diff(df["cumulative_overdose_deaths"].to_numpy()) >= 0)
    # Deaths of people with OUD from any cause: the flows' count, at least the overdose deaths of OUD
    oud_deaths = sum(f["oud_deaths"] for f in flows)
    assert last["cumulative_oud_deaths"] == pytest.approx(oud_deaths / m.population.n * 1e5)
    log = m.transitions.frame()
    from_oud = log[(log["to"] == Stage.DECEASED.value) & log["from"].isin([Stage.OUD.value, Stage.TREATMENT.value])]
    assert len(from_oud) == oud_deaths > 0


def test_lonely_share_and_depression_among_oud_count_the_state(run):
    m, df, _ = run
    pop = m.population
    last = df.iloc[-1]
    lonely = pop.loneliness >= np.float32(m.params.social.lonely_threshold)
    assert last["lonely_share"] == pytest.approx(lonely.mean())
    assert 0 < last["lonely_share"] < 1
    oud = np.isin(pop.stage, [Stage.OUD.value, Stage.TREATMENT.value])
    assert last["depression_among_oud"] == pytest.approx((pop.mh[0] & oud).sum() / oud.sum())


def test_log_measures_count_relapse_remission_and_deaths_by_care():
    """log_measures on a hand-made log: two left care into remission (one relapsed within 26 weeks,
    one after), a natural remission, deaths in and out of care, over known person-years."""
    from types import SimpleNamespace

    from oudsim.model.calibration import log_measures
    from oudsim.model.parameters import Parameters

    T, R, U, D = Stage.TREATMENT.value, Stage.REMISSION.value, Stage.OUD.value, Stage.DECEASED.value
    log = pd.DataFrame(
        [(1, 10, T, R), (2, 10, T, R), (1, 20, R, U), (2, 60, R, U), (3, 5, U, R), (4, 7, U, D), (5, 8, T, D),
         (6, 9, U, D), (7, 80, T, R)],  # the last left care too late to be followed 26 weeks
        columns=["person", "week", "from", "to"],
    )  # fmt: skip
    model = SimpleNamespace(
        transitions=SimpleNamespace(frame=lambda: log),
        params=Parameters(),
        population=SimpleNamespace(n=1000),
        week=100,
    )
    frame = pd.DataFrame(
        {"step": np.arange(101), "oud_prevalence": 0.03, "untreated_oud_prevalence": 0.02}
    )  # 100 steps after week 0: 20 untreated and 10 in care for 100 weeks
    out = log_measures(model, frame)
    assert out["relapse_after_care_26w"] == pytest.approx(0.5)
    py_out, py_in = 20 * 100 / 52, 10 * 100 / 52
    assert out["natural_remission_rate"] == pytest.approx(1 / py_out)
    assert out["out_of_care_mortality_ratio"] == pytest.approx((2 / py_out) / (1 / py_in))
