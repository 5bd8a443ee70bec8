"""Access to care beyond slot counts (model.processes.treatment, overdose): the delay to admission,
weekly intake, seeking by SES and from mental-health care, referral after a non-fatal overdose."""

from __future__ import annotations

import numpy as np

from oudsim.agents.states import Stage
from oudsim.model.processes import overdose, treatment
from tests.helpers import assert_count_matches, bare_model, two_proportion_z
from tests.test_rates import NEUTRAL_TREATMENT

N = 40_000
NEUTRAL = NEUTRAL_TREATMENT  # every seeking and dropout ratio at 1 (tests/test_rates.py)


def _queue(m, rows, since):
    pop = m.population
    pop.stage[rows] = Stage.OUD
    pop.waiting[rows] = True
    pop.wait_since[rows] = since


def test_no_one_is_admitted_before_the_delay_and_intake_caps_a_step():
    m = bare_model(10_000, **{"treatment.admission_delay_weeks": 3, "treatment.weekly_intake_share": 0.05})
    pop = m.population
    m.week = 10
    fresh, ready = np.arange(0, 200), np.arange(200, 400)
    _queue(m, fresh, 9)  # a week in the queue
    _queue(m, ready, 7)  # three weeks
    treatment._admit(m)
    cap_med, cap_int, _ = treatment.slots(m)
    intake = treatment.intake_per_step(0.05, 1, cap_med + cap_int)
    admitted = pop.stage == Stage.TREATMENT.value
    assert not admitted[fresh].any()
    assert admitted[ready].sum() == min(intake, cap_med + cap_int) == m.flows["admissions"]


def test_seeking_follows_ses_and_referral_from_mental_health_care():
    m = bare_model(N, **{**NEUTRAL, "treatment.seek_rate": 1.5, "treatment.ses_seek_hr": [0.5, 1.0, 2.0]})
    pop = m.population
    pop.stage[:] = Stage.OUD
    treatment._leave_care_and_seek(m)
    for level, hr in enumerate((0.5, 1.0, 2.0)):
        group = pop.ses == level
        assert_count_matches(int(pop.waiting[group].sum()), int(group.sum()), 1.5 * hr, m.dt_years)
    m = bare_model(N, **{**NEUTRAL, "treatment.seek_rate": 1.5, "treatment.mh_care_referral_hr": 3.0})
    pop = m.population
    pop.stage[:] = Stage.OUD
    pop.in_mh_care[:] = np.arange(N) % 2 == 0
    treatment._leave_care_and_seek(m)
    inside = pop.in_mh_care
    assert_count_matches(int(pop.waiting[inside].sum()), int(inside.sum()), 4.5, m.dt_years)
    assert_count_matches(int(pop.waiting[~inside].sum()), int((~inside).sum()), 1.5, m.dt_years)


def _overdose_once(referral: float):
    m = bare_model(
        N,
        **{
            "overdose.rate_oud": 5.0,
            "overdose.fatality": 0.0,
            "overdose.tie_presence": 0.0,
            "overdose.alone_stigma": 0,
            "treatment.overdose_referral": referral,
        },
    )
    m.population.stage[:] = Stage.OUD
    m.week += 1
    overdose.step(m)
    pop = m.population
    survivors = pop.last_overdose == m.week
    return int(survivors.sum()), int(pop.waiting[survivors].sum()), int(pop.waiting[~survivors].sum())


def test_a_non_fatal_overdose_refers_to_care_with_its_probability():
    n_od, referred, others = _overdose_once(0.3)
    assert n_od > 500 and others == 0
    assert abs(referred - 0.3 * n_od) <= 4.5 * np.sqrt(n_od * 0.3 * 0.7)
    assert _overdose_once(0.0)[1] == 0  # no referral: nobody queues from an overdose
    n_all, all_referred, _ = _overdose_once(1.0)
    assert all_referred == n_all


def test_expanding_capacity_raises_coverage_when_the_queue_is_long():
    """With seekers beyond the slots, doubling capacity (and intake with it) raises coverage."""
    out, slots = [], []
    for capacity in (300.0, 600.0):
        m = bare_model(20_000, **{"treatment.capacity_per_100k": capacity, "treatment.admission_delay_weeks": 0})
        m.population.stage[:1_000] = Stage.OUD
        m.population.waiting[:1_000] = True
        m.population.wait_since[:1_000] = 0
        for _ in range(30):
            m.week += 1
            treatment._admit(m)
        out.append(int((m.population.stage == Stage.TREATMENT.value).sum()))
        slots.append(sum(treatment.slots(m)[:2]))
    assert out == slots and slots[1] == 2 * slots[0]  # every slot filled from the queue, twice as many
    assert two_proportion_z(out[1], 1_000, out[0], 1_000) > 3
