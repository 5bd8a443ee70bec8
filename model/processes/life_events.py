"""1. Life events: stressful events (trauma, job loss, bereavement) by SES and ACE group.

Rate = rate * SES_HR[ses] * ACE_HR[ace]. A recent event (within ``life_events.recent_weeks``) raises
mental-health onset, initiation and relapse; ``m.recent`` holds it for the rest of the step.
Bereavement after an overdose death is added by the overdose process.
"""

from __future__ import annotations

import math

from oudsim.model.jit import gap, log_skip, njit, prob, uniform
from oudsim.model.rates import log_hr, per_parameters


def step(m) -> None:
    _life_events(*_arguments(m), m.week)


@per_parameters
def _arguments(m) -> tuple:
    p, pop = m.params.life_events, m.population
    static, top = m.factors.get("life_events", pop.group, ses=p.ses_hr, ace=p.ace_hr)
    return (
        m.streams["life_events"], pop.last_event, m.recent, static, float(log_hr(p.rate)), top, m.dt_years,
        p.recent_weeks,
    )  # fmt: skip


@njit
def _life_events(s, last_event, recent, static, base, top, dt, recent_weeks, week):
    n = last_event.size
    p_max = prob(math.exp(min(base + top, 50.0)), dt)  # thinning at the highest group's rate
    if p_max > 0.0:
        lq = log_skip(p_max)
        i = gap(s, lq)
        while i < n:
            if uniform(s) * p_max < prob(math.exp(base + static[i]), dt):
                last_event[i] = week
            i += 1 + gap(s, lq)
    for i in range(n):
        recent[i] = (week - last_event[i]) < recent_weeks
