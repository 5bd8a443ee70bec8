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
    assert len(admitted) > 30
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
