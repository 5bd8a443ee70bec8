"""1. Life events: stressful events (trauma, job loss, bereavement) by SES and ACE group.

Rate = rate * SES_HR[ses] * ACE_HR[ace]. A recent event (within ``life_events.recent_weeks``) raises
mental-health onset, initiation and relapse. Bereavement after an overdose death is added by the
overdose process.
"""

from __future__ import annotations

import numpy as np

from model.rates import events, log_by_group, log_hr


def step(m) -> None:
    p, pop = m.params.life_events, m.population
    log_rate = log_by_group(pop.group, ses=p.ses_hr, ace=p.ace_hr)
    log_rate += log_hr(p.rate)
    pop.last_event[events(m.rng, log_rate, m.dt_years)] = m.week


def recent(m) -> np.ndarray:
    """Whether each person had an event within the recent window."""
    return (m.week - m.population.last_event) < m.params.life_events.recent_weeks
