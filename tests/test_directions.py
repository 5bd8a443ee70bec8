"""Each mechanism of the seed moves its outcome in the seed's direction in the full model.

Replicated runs of two arms with paired seeds; a one-sided Welch t-test must reject "no effect" at
p < 0.01. Runs are small (thousands of people, a few years) but long enough for the dynamics to act.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from agents.states import Stage
from model import OUDModel

pytestmark = pytest.mark.slow

REPS = 8


def outcome(
    metric: str, years: float = 4, n: int = 5_000, burn_in: float = 3, last_years: float = 2, reps: int = REPS, **kw
) -> np.ndarray:
    """Mean of a metric over the last years of each replicate."""
    out = []
    for seed in range(reps):
        m = OUDModel(population=n, rng=1000 + seed, burn_in_years=burn_in, **kw)
        m.run_for(int(years * 52))
        df = m.metrics_frame()
        out.append(df[metric].iloc[-int(last_years * 52) :].mean())
    return np.array(out)


def assert_greater(a: np.ndarray, b: np.ndarray, what: str) -> None:
    t = stats.ttest_ind(a, b, equal_var=False, alternative="greater")
    assert t.pvalue < 0.01, f"{what}: {a.mean():.4g} vs {b.mean():.4g}, p = {t.pvalue:.3g}"


def test_more_isolation_more_oud_and_worse_mental_health():
    # Isolation acts for years (loneliness -> disorders and use -> OUD), so it runs through burn-in too.
    # 16 replicates: the effect on misuse is ~+9%, about two replicate standard deviations.
    hi = dict(isolation=4.0, burn_in=8, reps=16)
    lo = dict(burn_in=8, reps=16)
    assert_greater(outcome("mean_loneliness", **hi), outcome("mean_loneliness", **lo), "loneliness")
    assert_greater(outcome("mh_prevalence", **hi), outcome("mh_prevalence", **lo), "mental-health prevalence")
    assert_greater(outcome("misuse_prevalence", **hi), outcome("misuse_prevalence", **lo), "misuse")
    big = dict(n=12_000)
    assert_greater(outcome("oud_prevalence", **big, **hi), outcome("oud_prevalence", **big, **lo), "OUD prevalence")


def test_more_stigma_less_treatment():
    assert_greater(
        outcome("treatment_coverage", stigma=0.2, capacity=5_000),
        outcome("treatment_coverage", stigma=0.95, capacity=5_000),
        "coverage, low vs high stigma",
    )


def test_stigma_campaign_lowers_stigma_and_raises_treatment():
    assert_greater(outcome("mean_stigma"), outcome("mean_stigma", campaign=0.6), "stigma")
    assert_greater(
        outcome("treatment_coverage", campaign=0.6, capacity=5_000),
        outcome("treatment_coverage", capacity=5_000),
        "coverage",
    )


def test_more_capacity_more_treatment_fewer_deaths():
    lo, hi = dict(capacity=150), dict(capacity=3_000)
    assert_greater(outcome("treatment_coverage", **hi), outcome("treatment_coverage", **lo), "coverage")
    # Deaths are rare: a larger population, six recorded years and more replicates.
    big = dict(n=40_000, years=6, last_years=6, reps=12)
    deaths_lo = outcome("overdose_death_rate", **big, **lo)
    deaths_hi = outcome("overdose_death_rate", **big, **hi)
    assert_greater(deaths_lo, deaths_hi, "overdose deaths, low vs high capacity")


def test_mental_health_disorder_raises_initiation():
    """Within runs: people with an active disorder start misuse at a higher rate than others."""
    ratios = []
    for seed in range(REPS):
        m = OUDModel(population=10_000, rng=2000 + seed, burn_in_years=1)
        start, at_risk = np.zeros(2), np.zeros(2)
        for _ in range(104):
            pop = m.population
            before, mh = pop.stage.copy(), pop.any_mh.copy()
            m.step()
            new = (before == Stage.NONE) & (pop.stage == Stage.MISUSE)
            for g in (0, 1):
                sel = (before == Stage.NONE) & (mh == bool(g))
                start[g] += np.count_nonzero(new & sel)
                at_risk[g] += np.count_nonzero(sel)
        ratios.append((start[1] / at_risk[1]) / (start[0] / at_risk[0]))
    assert stats.ttest_1samp(np.log(ratios), 0.0, alternative="greater").pvalue < 0.01
    assert np.exp(np.mean(np.log(ratios))) > 1.5
