"""Life table, mortality in care and newcomers' ties (model.processes.demography, social)."""

from __future__ import annotations

import numpy as np
import pytest

from oudsim.agents.population import stationary_ages
from oudsim.agents.states import Care, Stage
from oudsim.model import OUDModel
from oudsim.model.processes import demography, social
from tests.helpers import assert_count_matches, bare_model, two_proportion_z

N = 40_000
LIFE_TABLE = [1.1, 1.6, 3.0, 8.0, 40.0]


def _survival_share_65(entry: float, max_age: float, per_1000: list[float]) -> float:
    """The stationary share aged 65+ worked out by hand: person-years lived above 65 over all."""
    edges = [entry, 26.0, 35.0, 50.0, 65.0, max_age]
    alive, years = 1.0, []
    for k in range(5):
        mu, width = per_1000[k] / 1000, edges[k + 1] - edges[k]
        years.append(alive * (1 - np.exp(-mu * width)) / mu)
        alive *= np.exp(-mu * width)
    return years[4] / sum(years)


def test_stationary_ages_follow_the_life_table():
    ages = stationary_ages(200_000, 18.0, 100.0, LIFE_TABLE, np.random.default_rng(3))
    assert ages.min() >= 18.0 and ages.max() < 100.0
    expected = _survival_share_65(18.0, 100.0, LIFE_TABLE)
    assert abs((ages >= 65).mean() - expected) < 0.005, ((ages >= 65).mean(), expected)


def test_everyone_dies_at_the_closing_age():
    m = bare_model(2_000, **{"demography.mortality_per_1000": [0.0] * 5, "demography.max_age": 70.0})
    pop = m.population
    old = np.arange(0, 2_000, 10)
    pop.age[old] = 69.99  # a step from the closing age
    pop.set_age_band(old)
    for _ in range(3):
        m.week += 1
        demography.step(m)
    assert np.all(pop.age[pop.stage != Stage.DECEASED.value] < 70.0)
    assert np.all(pop.entry_week[old] >= 1) and np.all(pop.age[old] < 19)  # every one of them was replaced


def test_care_lowers_non_overdose_mortality_by_its_ratio():
    over = {"demography.mortality_per_1000": [400.0] * 5, "demography.oud_mortality_hr": 1.0}
    counts = {}
    for hr in (1.0, 0.25):
        m = bare_model(N, **over, **{"demography.care_mortality_hr": hr})
        pop = m.population
        half = np.arange(N) < N // 2
        pop.stage[:] = Stage.OUD
        pop.stage[half] = Stage.TREATMENT
        pop.care[half] = Care.MEDICATION
        m.week += 1
        demography._deaths_and_ageing(*demography._arguments(m), m.log_table(), m.week)
        dead = pop.stage == Stage.DECEASED.value
        counts[hr] = (int(dead[half].sum()), int(dead[~half].sum()))
    in_care, out = counts[0.25]
    assert_count_matches(out, N // 2, 0.4, 1 / 52)
    assert_count_matches(in_care, N // 2, 0.4 * 0.25, 1 / 52)
    # A ratio of 1 is neutral: in care and out of it die alike.
    assert abs(two_proportion_z(*counts[1.0][:1], N // 2, counts[1.0][1], N // 2)) < 4


def test_newcomers_start_with_fresh_ties():
    m = bare_model(5_000, **{"demography.mortality_per_1000": [0.0] * 5})
    pop, net = m.population, m.network
    share = social.newcomer_tie_share(m.params.social.reconnect_rate, m.params.social.tie_loss_rate)
    # The rows' old ties are all active; the newcomers keep each with the steady share, whoever is there.
    rows = np.arange(0, 5_000, 2)
    pop.stage[1::2] = Stage.OUD  # their neighbours in odd rows use opioids
    m.newcomer_rows = rows
    social.step(m)
    ends = [(net.entry_row_tie[x, 1], r) for r in rows for x in range(net.indptr[r], net.indptr[r + 1])]
    ties = np.array([t for t, _ in ends])
    known = ties[~net.latent[ties]]
    kept = net.active[known].mean()
    assert abs(kept - share) < 4 * np.sqrt(share * (1 - share) / known.size) + 0.02
    assert m.newcomer_rows.size == 0
    other = np.where(net.u[known] % 2 == 0, net.v[known], net.u[known])
    with_users = net.active[known][other % 2 == 1].mean()
    assert abs(with_users - share) < 0.05  # ties to people who use are no likelier than any other


@pytest.mark.slow
def test_age_structure_holds_over_fifty_years_with_invariants():
    m = OUDModel(population=3_000, rng=5, burn_in_years=0, check_invariants=True)
    start = float((m.population.age >= 65).mean())
    shares = []
    for _ in range(5):
        m.run_for(520)
        shares.append(float((m.population.age >= 65).mean()))
    assert max(abs(s - start) for s in shares) < 0.03, (start, shares)
    assert m.population.age.max() < m.params.demography.max_age
